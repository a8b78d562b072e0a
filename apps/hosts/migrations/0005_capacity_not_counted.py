from django.db import migrations, models


def uncount_old_defaults(apps, schema_editor):
    # 0003's defaults (8 CPUs, 16 GiB) held the site's own engine to 16 half-CPU labs.
    Host = apps.get_model("hosts", "Host")
    Host.objects.filter(max_cpus=8.0, max_memory_mib=16384).update(max_cpus=0, max_memory_mib=0)


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0004_host_samples"),
    ]

    operations = [
        migrations.AlterField(
            model_name="host",
            name="max_cpus",
            field=models.FloatField(
                default=0,
                help_text="The sum of the labs' CPU limits; 0: not counted.",
                verbose_name="CPUs for sandboxes",
            ),
        ),
        migrations.AlterField(
            model_name="host",
            name="max_memory_mib",
            field=models.PositiveIntegerField(
                default=0,
                help_text="The sum of the labs' memory limits; 0: not counted.",
                verbose_name="memory for sandboxes (MiB)",
            ),
        ),
        migrations.RunPython(uncount_old_defaults, migrations.RunPython.noop),
    ]
