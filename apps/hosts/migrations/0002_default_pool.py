from django.db import migrations


def create_default_pool(apps, schema_editor):
    Pool = apps.get_model("hosts", "Pool")
    Host = apps.get_model("hosts", "Host")
    pool, _ = Pool.objects.get_or_create(
        name="default", defaults={"description": "Engines on this machine"}
    )
    Host.objects.get_or_create(
        name="local-docker", defaults={"pool": pool, "engine": "docker", "backend": "docker"}
    )
    Host.objects.get_or_create(
        name="local-libvirt", defaults={"pool": pool, "engine": "libvirt", "backend": "libvirt"}
    )


class Migration(migrations.Migration):
    dependencies = [("hosts", "0001_initial")]
    operations = [migrations.RunPython(create_default_pool, migrations.RunPython.noop)]
