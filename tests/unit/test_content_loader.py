"""Loading the course files: idempotent, keeps progress, refuses bad files whole."""

from __future__ import annotations

import shutil

import pytest
from django.core.management import CommandError, call_command

from apps.courses.models import Course, Lab, Module, Step, StepProgress
from tests.conftest import FIXTURE_CONTENT


def load(path):
    call_command("load_content", dir=path, stdout=open("/dev/null", "w"))


@pytest.fixture
def content(tmp_path):
    target = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, target)
    return target


def test_loading_twice_changes_nothing(db, content):
    load(content)
    before = list(Step.objects.values_list("pk", "title"))
    load(content)
    assert list(Step.objects.values_list("pk", "title")) == before
    assert Module.objects.count() == 2
    assert Lab.objects.get(slug="later").status == "planned"


def test_edit_updates_page_and_keeps_progress(db, content, alice):
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


def test_lesson_html_is_sanitised_and_highlighted(db, content):
    load(content)
    html = Module.objects.get(slug="basics").body_html
    assert "<script" not in html
    assert "javascript:" not in html
    assert 'class="codehilite"' in html
    assert 'src="/assets/testcourse/01-basics/diagrams/layers.svg"' in html


def test_malformed_lab_yaml_names_file_and_line_and_loads_nothing(db, content):
    lab_yaml = content / "testcourse/01-basics/labs/hello/lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace("  kind: container", "  kind: [oops"))
    with pytest.raises(CommandError) as error:
        load(content)
    assert "hello/lab.yaml:" in str(error.value)
    assert "invalid YAML" in str(error.value)
    assert Course.objects.count() == 0  # the valid module before it was not loaded either


def test_wrong_value_names_key_and_line(db, content):
    lab_yaml = content / "testcourse/01-basics/labs/hello/lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace("network: none", "network: host"))
    with pytest.raises(CommandError) as error:
        load(content)
    assert str(error.value).endswith(
        "lab.yaml:12: 'network' must be one of ['isolated', 'none'], not 'host'"
    )


def test_missing_lesson_is_reported(db, content):
    (content / "testcourse/02-more/lesson.md").unlink()
    with pytest.raises(CommandError, match=r"02-more/lesson.md: file is missing"):
        load(content)


def test_bad_file_during_reload_keeps_previous_content(db, content):
    load(content)
    (content / "testcourse/01-basics/module.yaml").write_text("title: [unclosed\n")
    with pytest.raises(CommandError, match=r"01-basics/module.yaml:\d+: invalid YAML"):
        load(content)
    assert Module.objects.get(slug="basics").title == "基础"


def test_removed_step_disappears(db, content):
    load(content)
    for suffix in (".md", ".check"):
        (content / f"testcourse/01-basics/labs/hello/steps/02-slow{suffix}").unlink()
    load(content)
    assert list(Step.objects.filter(lab__slug="hello").values_list("slug", flat=True)) == ["write"]
