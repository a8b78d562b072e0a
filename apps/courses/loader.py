"""Read a course from its files into plain dataclasses, checking every file on the way.

Nothing here touches the database: ``read_course`` either returns a whole, valid course
or raises ``ContentError`` naming the file and line. ``apps.courses.sync`` writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from apps.courses.rendering import render_markdown

NUMBERED = re.compile(r"^(\d+)-([a-z0-9][a-z0-9-]*)$")
LAB_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
KINDS = {"container", "vm"}
STATUSES = {"ready", "planned"}
NETWORKS = {"none", "isolated"}
CAPABILITY = re.compile(r"^[A-Z_]+$")


class ContentError(Exception):
    """A content file is malformed. ``str()`` reads ``path:line: what is wrong``."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass
class StepData:
    number: int
    slug: str
    title: str
    body_html: str
    check_script: str
    solve_script: str


@dataclass
class LabData:
    slug: str
    order: int
    title: str
    summary: str
    plan: str
    kind: str
    status: str
    environment: str
    dockerfile: str
    cpus: float
    memory_mib: int
    pids: int
    capabilities: list[str]
    network: str
    runtime: str
    time_limit_minutes: int
    setup_script: str
    source_dir: str
    steps: list[StepData] = field(default_factory=list)


@dataclass
class ModuleData:
    number: int
    slug: str
    title: str
    title_en: str
    summary: str
    body_html: str
    toc: list[tuple[str, str]]
    source_dir: str
    labs: list[LabData] = field(default_factory=list)


@dataclass
class CourseData:
    slug: str
    title: str
    title_en: str
    summary: str
    summary_en: str
    modules: list[ModuleData] = field(default_factory=list)


class _Yaml:
    """A YAML mapping that remembers the line of each key, for error messages."""

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[str, int]) -> None:
        self.path, self.data, self.lines = path, data, lines

    @classmethod
    def read(cls, path: Path) -> _Yaml:
        if not path.is_file():
            raise ContentError(path, None, "file is missing")
        text = path.read_text(encoding="utf-8")
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ContentError(path, line, f"invalid YAML: {problem}") from None
        if not isinstance(data, dict) or node is None:
            raise ContentError(path, 1, "expected a mapping of keys to values")
        return cls(path, data, _key_lines(node))

    def error(self, key: str, message: str) -> ContentError:
        return ContentError(self.path, self.lines.get(key, 1), message)

    def text(self, key: str, required: bool = True, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, f"'{key}' is required")
            return default
        if not isinstance(value, str | int | float):
            raise self.error(key, f"'{key}' must be text")
        return str(value).strip()

    def choice(self, key: str, allowed: set[str], default: str | None = None) -> str:
        value = self.text(key, required=default is None, default=default or "")
        if value not in allowed:
            raise self.error(key, f"'{key}' must be one of {sorted(allowed)}, not {value!r}")
        return value

    def number(self, key: str, default: float, kind: type = int, low: float = 0) -> Any:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"'{key}' must be a number, not {value!r}")
        if value <= low:
            raise self.error(key, f"'{key}' must be greater than {low}")
        return kind(value)

    def section(self, key: str) -> _Yaml:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"'{key}' must be a mapping")
        line = self.lines.get(key, 1)
        return _Yaml(self.path, value, {k: self.lines.get(f"{key}.{k}", line) for k in value})


def _key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key + "."))
    return lines


def read_course(course_dir: Path) -> CourseData:
    meta = _Yaml.read(course_dir / "course.yaml")
    course = CourseData(
        slug=course_dir.name,
        title=meta.text("title"),
        title_en=meta.text("title_en", required=False),
        summary=meta.text("summary", required=False),
        summary_en=meta.text("summary_en", required=False),
    )
    for number, slug, path in _numbered_dirs(course_dir):
        course.modules.append(_read_module(course.slug, number, slug, path))
    if not course.modules:
        raise ContentError(course_dir, None, "a course needs at least one NN-slug module folder")
    return course


def _numbered_dirs(parent: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(parent.iterdir()):
        if path.is_dir() and (match := NUMBERED.match(path.name)):
            found.append((int(match[1]), match[2], path))
    return found


def _read_module(course_slug: str, number: int, slug: str, path: Path) -> ModuleData:
    meta = _Yaml.read(path / "module.yaml")
    lesson = path / "lesson.md"
    if not lesson.is_file():
        raise ContentError(lesson, None, "file is missing")
    rendered = render_markdown(
        _without_title(lesson.read_text(encoding="utf-8")),
        asset_base_url=f"/assets/{course_slug}/{path.name}/",
    )
    module = ModuleData(
        number=number,
        slug=slug,
        title=meta.text("title"),
        title_en=meta.text("title_en", required=False),
        summary=meta.text("summary", required=False),
        body_html=rendered.html,
        toc=rendered.toc,
        source_dir=str(path),
    )
    labs_dir = path / "labs"
    if labs_dir.is_dir():
        for order, lab_dir in enumerate(sorted(p for p in labs_dir.iterdir() if p.is_dir())):
            module.labs.append(_read_lab(lab_dir, order))
    return module


def _without_title(text: str) -> str:
    """The page shows the module's title already; drop a leading ``# title`` line."""
    stripped = text.lstrip()
    if stripped.startswith("# "):
        return stripped.partition("\n")[2]
    return text


def _read_lab(path: Path, order: int) -> LabData:
    if not LAB_SLUG.match(path.name):
        raise ContentError(path, None, "a lab folder name must be lowercase letters, digits, '-'")
    meta = _Yaml.read(path / "lab.yaml")
    env = meta.section("environment")
    res = meta.section("resources")
    kind = env.choice("kind", KINDS)
    environment = env.text("image" if kind == "container" else "template")
    capabilities = meta.data.get("capabilities") or []
    if not isinstance(capabilities, list) or not all(
        isinstance(c, str) and CAPABILITY.match(c) for c in capabilities
    ):
        raise meta.error("capabilities", "'capabilities' must be a list like [NET_ADMIN]")
    dockerfile = path / "Dockerfile"
    lab = LabData(
        slug=path.name,
        order=meta.number("order", order + 1, int) if "order" in meta.data else order + 1,
        title=meta.text("title"),
        summary=meta.text("summary", required=False),
        plan=meta.text("plan", required=False),
        kind=kind,
        status=meta.choice("status", STATUSES),
        environment=environment,
        dockerfile=dockerfile.read_text(encoding="utf-8") if dockerfile.is_file() else "",
        cpus=res.number("cpus", 0.5, float),
        memory_mib=res.number("memory", 256, int),
        pids=res.number("pids", 128, int),
        capabilities=[c.upper() for c in capabilities],
        network=meta.choice("network", NETWORKS, default="none"),
        runtime=env.text("runtime", required=False),
        time_limit_minutes=meta.number("time_limit", 45, int),
        setup_script=_optional(path / "setup.sh"),
        source_dir=str(path),
    )
    lab.steps = _read_steps(path / "steps", lab.status == "ready")
    return lab


def _read_steps(steps_dir: Path, required: bool) -> list[StepData]:
    if not steps_dir.is_dir():
        if required:
            raise ContentError(steps_dir, None, "a ready lab needs a steps/ folder")
        return []
    steps = []
    for md in sorted(steps_dir.glob("*.md")):
        match = NUMBERED.match(md.stem)
        if not match:
            raise ContentError(md, None, "step files are named NN-slug.md")
        text = md.read_text(encoding="utf-8")
        first, _, body = text.partition("\n")
        if not first.startswith("# "):
            raise ContentError(md, 1, "the first line must be the step's title: '# 标题'")
        steps.append(
            StepData(
                number=int(match[1]),
                slug=match[2],
                title=first[2:].strip(),
                body_html=render_markdown(body).html,
                check_script=_optional(md.with_suffix(".check")),
                solve_script=_optional(md.with_suffix(".solve")),
            )
        )
    numbers = [s.number for s in steps]
    if len(set(numbers)) != len(numbers):
        raise ContentError(steps_dir, None, f"two steps share a number: {numbers}")
    if required and not steps:
        raise ContentError(steps_dir, None, "a ready lab needs at least one step")
    return steps


def _optional(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""
