"""Loading the course files: idempotent, keeps progress, refuses bad files whole, and lets
no lab file reach beyond what the site allows (capabilities, resources, files)."""

from __future__ import annotations

import shutil

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from apps.courses.models import Course, Lab, Module, Step, StepProgress
from tests.conftest import FIXTURE_CONTENT, PASSWORD

pytestmark = pytest.mark.django_db
HELLO = "testcourse/01-basics/labs/hello"


def load(path):
    call_command("load_content", dir=path, stdout=open("/dev/null", "w"))


def refused(path) -> str:
    """Load ``path``, expecting a refusal; nothing may have been loaded."""
    with pytest.raises(CommandError) as error:
        load(path)
    assert Course.objects.count() == 0
    return str(error.value)


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture
def content(tmp_path):
    target = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, target)
    return target


@pytest.fixture
def hello_yaml(content):
    return content / HELLO / "lab.yaml"


def test_loading_twice_changes_nothing(content):
    load(content)
    before = list(Step.objects.values_list("pk", "title"))
    load(content)
    assert list(Step.objects.values_list("pk", "title")) == before
    assert Module.objects.count() == 2
    assert Lab.objects.get(slug="later").status == "planned"


def test_edit_updates_page_and_keeps_progress(content, alice):
    load(content)
    step = Step.objects.get(slug="write")
    StepProgress.objects.create(user=alice, step=step)
    lesson = content / "testcourse" / "01-basics" / "lesson.md"
    lesson.write_text(lesson.read_text() + "\n## 新的一节\n\n新内容。\n")
    step_md = content / "testcourse/01-basics/labs/hello/steps/01-write.md"
    step_md.write_text(step_md.read_text().replace("写一个文件", "写一个新文件"))
    load(content)
    module = Module.objects.get(slug="basics")
    assert "新内容" in module.body_html
    assert [heading for _, heading in module.toc] == ["什么是容器", "下一步", "新的一节"]
    assert Step.objects.get(slug="write").title == "写一个新文件"
    assert StepProgress.objects.filter(user=alice, step__slug="write").exists()


def test_lesson_html_is_sanitised_and_highlighted(content):
    load(content)
    html = Module.objects.get(slug="basics").body_html
    assert "<script" not in html
    assert "javascript:" not in html
    assert 'class="codehilite"' in html
    assert 'src="/assets/testcourse/01-basics/diagrams/layers.svg"' in html


def test_malformed_lab_yaml_names_file_and_line_and_loads_nothing(content):
    lab_yaml = content / "testcourse/01-basics/labs/hello/lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace("  kind: container", "  kind: [oops"))
    with pytest.raises(CommandError) as error:
        load(content)
    assert "hello/lab.yaml:" in str(error.value)
    assert "invalid YAML" in str(error.value)
    assert Course.objects.count() == 0  # the valid module before it was not loaded either


def test_wrong_value_names_key_and_line(content):
    lab_yaml = content / "testcourse/01-basics/labs/hello/lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace("network: none", "network: host"))
    with pytest.raises(CommandError) as error:
        load(content)
    assert str(error.value).endswith(
        "lab.yaml:12: 'network' must be one of ['isolated', 'none'], not 'host'"
    )


def test_missing_lesson_is_reported(content):
    (content / "testcourse/02-more/lesson.md").unlink()
    with pytest.raises(CommandError, match=r"02-more/lesson.md: file is missing"):
        load(content)


def test_bad_file_during_reload_keeps_previous_content(content):
    load(content)
    (content / "testcourse/01-basics/module.yaml").write_text("title: [unclosed\n")
    with pytest.raises(CommandError, match=r"01-basics/module.yaml:\d+: invalid YAML"):
        load(content)
    assert Module.objects.get(slug="basics").title == "基础"


def test_removed_step_disappears(content):
    load(content)
    for suffix in (".md", ".check"):
        (content / f"testcourse/01-basics/labs/hello/steps/02-slow{suffix}").unlink()
    load(content)
    assert list(Step.objects.filter(lab__slug="hello").values_list("slug", flat=True)) == ["write"]


# -- capabilities come from the site's allowlist ----------------------------------------------


def test_sys_admin_is_refused_with_path_and_line(content, hello_yaml):
    edit(hello_yaml, "capabilities: []", "capabilities:\n  - NET_ADMIN\n  - SYS_ADMIN")
    message = refused(content)
    assert f"{hello_yaml}:13: capabilities: capability SYS_ADMIN is not allowed" in message
    assert "allowed: AUDIT_WRITE, CHOWN," in message


def test_all_is_refused(content, hello_yaml):
    edit(hello_yaml, "capabilities: []", "capabilities: [all]")
    assert "lab.yaml:11: capabilities: ALL would grant every capability" in refused(content)


def test_unknown_capability_is_refused(content, hello_yaml):
    edit(hello_yaml, "capabilities: []", "capabilities: [NET_ADMIN, FLY]")
    assert "lab.yaml:11: capabilities: capability FLY is not allowed" in refused(content)


def test_capability_names_are_normalised(content, hello_yaml):
    edit(hello_yaml, "capabilities: []", "capabilities: [CAP_net_admin, net_raw, NET_ADMIN]")
    load(content)
    assert Lab.objects.get(slug="hello").capabilities == ["NET_ADMIN", "NET_RAW"]


def test_allowlist_is_the_sites(content, hello_yaml, settings):
    settings.LABSITE_ALLOWED_CAPABILITIES = ["cap_net_raw"]
    edit(hello_yaml, "capabilities: []", "capabilities: [NET_ADMIN]")
    assert "capability NET_ADMIN is not allowed on this site; allowed: NET_RAW" in refused(content)


def test_refused_capability_on_reload_keeps_the_previous_lab(content, hello_yaml):
    load(content)
    edit(hello_yaml, "capabilities: []", "capabilities: [SYS_ADMIN]")
    with pytest.raises(CommandError, match="SYS_ADMIN is not allowed"):
        load(content)
    assert Lab.objects.get(slug="hello").capabilities == []


# -- resources stay within the site's limits --------------------------------------------------


def test_memory_over_the_limit_is_refused(content, hello_yaml):
    edit(hello_yaml, "memory: 128", "memory: 65536")
    assert (
        "lab.yaml:9: resources.memory: 65536 MiB is more than a lab may ask for on this site: "
        "at most 4096 MiB (LABSITE_LAB_LIMITS['memory_mib'])"
    ) in refused(content)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "must be a number greater than 0, not 0"),
        ("-1", "must be a number greater than 0, not -1"),
        (".nan", "must be a number greater than 0, not nan"),
        ("lots", "must be a number, not 'lots'"),
        ("true", "must be a number, not True"),
        ("1.5", "must be a whole number, not 1.5"),
    ],
)
def test_bad_resource_values_are_refused(content, hello_yaml, value, problem):
    edit(hello_yaml, "pids: 64", f"pids: {value}")
    assert f"lab.yaml:10: resources.pids: {problem}" in refused(content)


def test_cpus_over_the_limit_is_refused(content, hello_yaml):
    edit(hello_yaml, "cpus: 0.5", "cpus: 64")
    assert "lab.yaml:8: resources.cpus: 64 is more than" in refused(content)


def test_unknown_resource_is_refused(content, hello_yaml):
    edit(hello_yaml, "pids: 64", "pids: 64\n  disk_mib: 10")
    assert "lab.yaml:11: unknown resource 'disk_mib'; known: cpus, memory, pids, disk" in refused(
        content
    )


def test_disk_is_parsed_and_stored(content, hello_yaml):
    edit(hello_yaml, "pids: 64", "pids: 64\n  disk: 2048")
    load(content)
    assert Lab.objects.get(slug="hello").disk_mib == 2048
    assert Lab.objects.get(slug="tiny-vm").disk_mib == 1024  # the default


def test_disk_over_the_limit_is_refused(content, hello_yaml, settings):
    settings.LABSITE_LAB_LIMITS = {**settings.LABSITE_LAB_LIMITS, "disk_mib": 4096}
    edit(hello_yaml, "pids: 64", "pids: 64\n  disk: 5000")
    assert "lab.yaml:11: resources.disk: 5000 MiB is more than" in refused(content)


def test_defaults_are_capped_by_lower_limits(content, settings):
    settings.LABSITE_LAB_LIMITS = {**settings.LABSITE_LAB_LIMITS, "disk_mib": 512}
    load(content)
    assert Lab.objects.get(slug="tiny-vm").disk_mib == 512


# -- environment and network -----------------------------------------------------------------


def test_vm_lab_with_a_dockerfile_is_refused(content):
    dockerfile = content / "testcourse/02-more/labs/tiny-vm/Dockerfile"
    dockerfile.write_text("FROM labsite/base\n")
    assert f"{dockerfile}: a vm lab boots a template; only container labs" in refused(content)


def test_vm_template_must_be_a_plain_name(content):
    lab_yaml = content / "testcourse/02-more/labs/tiny-vm/lab.yaml"
    edit(lab_yaml, "template: tiny", "template: ../../../etc")
    assert "tiny-vm/lab.yaml:6: 'template' must be a template name" in refused(content)


def test_unknown_network_names_the_allowed_values(content, hello_yaml):
    edit(hello_yaml, "network: none", "network: host")
    assert "lab.yaml:12: 'network' must be one of ['isolated', 'none'], not 'host'" in refused(
        content
    )


def test_yaml_aliases_are_refused(content, hello_yaml):
    edit(hello_yaml, "title: 你好，容器", "title: &t 你好，容器\nsummary2: *t")
    assert "aliases (*name) are not supported" in refused(content)


# -- every file read stays inside the content folder ------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "testcourse/course.yaml",
        "testcourse/01-basics/module.yaml",
        "testcourse/01-basics/lesson.md",
        "testcourse/01-basics/diagrams/layers.svg",
        f"{HELLO}/lab.yaml",
        f"{HELLO}/steps/01-write.md",
        f"{HELLO}/steps/01-write.check",
        f"{HELLO}/steps/01-write.solve",
        f"{HELLO}/setup.sh",
        "testcourse/02-more/labs/custom-image/Dockerfile",
    ],
)
def test_file_symlinked_to_etc_passwd_is_refused(content, name):
    path = content / name
    path.unlink(missing_ok=True)
    path.symlink_to("/etc/passwd")
    assert f"{path}: leads outside the content folder" in refused(content)


def test_setup_script_symlinked_outside_is_refused(content, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("echo from elsewhere\n")
    setup = content / HELLO / "setup.sh"
    setup.symlink_to(outside)
    assert f"{setup}: leads outside the content folder {content} (to {outside})" in refused(content)


def test_dangling_symlink_outside_is_refused(content, tmp_path):
    setup = content / HELLO / "setup.sh"
    setup.symlink_to(tmp_path / "not-there.sh")
    assert f"{setup}: leads outside the content folder" in refused(content)


def test_folder_symlinked_outside_is_refused(content, tmp_path):
    steps = content / HELLO / "steps"
    shutil.move(steps, tmp_path / "steps")
    steps.symlink_to(tmp_path / "steps")
    assert f"{steps}: leads outside the content folder" in refused(content)


def test_symlinks_within_the_content_folder_are_allowed(content):
    check = content / HELLO / "steps/02-slow.check"
    check.unlink()
    check.symlink_to("01-write.check")
    load(content)
    assert Step.objects.get(slug="slow").check_script == Step.objects.get(slug="write").check_script


# -- the admin is no way around the loader -----------------------------------------------------


def test_admin_cannot_change_what_a_sandbox_may_do(client, erin, hello_lab):
    lab_admin = admin.site._registry[Lab]
    request = RequestFactory().get("/")
    request.user = erin
    editable = lab_admin.get_form(request, hello_lab).base_fields
    for name in ("capabilities", "cpus", "memory_mib", "pids", "disk_mib", "network"):
        assert name not in editable
    for name in ("dockerfile", "runtime", "environment", "kind", "setup_script"):
        assert name not in editable
    assert not lab_admin.has_add_permission(request)
    client.login(username="erin", password=PASSWORD)
    assert client.get(f"/admin/courses/lab/{hello_lab.pk}/change/").status_code == 200


def test_a_step_may_limit_its_failed_checks(content):
    step_md = content / HELLO / "steps" / "01-write.md"
    edit(
        step_md,
        "<!-- title_en: Write a file -->\n",
        "<!-- title_en: Write a file -->\n<!-- attempts: 3 -->\n",
    )
    load(content)
    step = Step.objects.get(lab__slug="hello", number=1)
    assert step.attempts == 3
    assert "attempts" not in step.body_html  # the line is the loader's, not the page's
    assert Step.objects.get(lab__slug="hello", number=2).attempts == 0


@pytest.mark.parametrize("value", ["0", "many", "21", ""])
def test_a_bad_attempts_line_is_refused_with_its_line(content, value):
    step_md = content / HELLO / "steps" / "01-write.md"
    edit(
        step_md,
        "<!-- title_en: Write a file -->\n",
        f"<!-- title_en: Write a file -->\n<!-- attempts: {value} -->\n",
    )
    message = refused(content)
    assert "01-write.md:3" in message and "attempts must be a whole number from 1 to 20" in message


@pytest.mark.parametrize(
    ("path", "old", "new", "problem"),
    [
        ("testcourse/01-basics/module.yaml", "title_en: Basics\n", "", "'title_en' is required"),
        (
            "testcourse/01-basics/module.yaml",
            "summary_en: The first module.",
            "",
            "'summary_en' is required",
        ),
        (f"{HELLO}/lab.yaml", "title_en: Hello, container\n", "", "'title_en' is required"),
        (f"{HELLO}/steps/01-write.md", "<!-- title_en: Write a file -->\n", "", "English title"),
    ],
    ids=["module-title", "module-summary", "lab-title", "step-title"],
)
def test_a_module_lab_or_step_without_its_english_title_is_refused(
    content, path, old, new, problem
):
    """The English interface never falls back to Chinese titles: the loader refuses the file."""
    edit(content / path, old, new)
    message = refused(content)
    assert path.split("/")[-1] in message and problem in message
