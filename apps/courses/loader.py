"""Read a course from its files into plain dataclasses, checking every file on the way.

Nothing here touches the database: ``read_course`` either returns a whole, valid course
or raises ``ContentError`` naming the file and line. ``apps.courses.sync`` writes it.

Every title and summary has an English twin (``title_en``, ``summary_en``; a step's on the
line after its ``# 标题``) for the English interface: the lessons stay in Chinese, but no
page of the English site is half Chinese. A file without one is refused like any other.

A lab file is written by a course author, not by the host's operator, so nothing it says
may reach beyond what the operator allows (``LabPolicy``): capabilities come from
``LABSITE_ALLOWED_CAPABILITIES``, resources stay within ``LABSITE_LAB_LIMITS``, and every
file read must resolve inside the content folder (symlinks out of it are refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.courses.rendering import render_markdown

NUMBERED = re.compile(r"^(\d+)-([a-z0-9][a-z0-9-]*)$")
LAB_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: The names provisioning.libvirt accepts: a template is a folder, so no '/' or '..'.
TEMPLATE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
KINDS = {"container", "vm"}
STATUSES = {"ready", "planned"}
NETWORKS = {"none", "isolated"}
CAPABILITY = re.compile(r"^[A-Z][A-Z_]*$")
HOST_LABEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
#: A step's English title: the line after its ``# 标题``, a comment the page never shows.
STEP_TITLE_EN = re.compile(r"^<!--\s*title_en:\s*(?P<title>.*?)\s*-->\s*$")
#: An optional third line: how many failed checks a step allows (quizzes).
STEP_ATTEMPTS = re.compile(r"^<!--\s*attempts:\s*(?P<n>\S*)\s*-->\s*$")
MAX_ATTEMPTS = 20
#: lab.yaml's name under ``resources:`` -> (the Lab field and limit key, its default).
RESOURCES: dict[str, tuple[str, float]] = {
    "cpus": ("cpus", 0.5),
    "memory": ("memory_mib", 256),
    "pids": ("pids", 128),
    "disk": ("disk_mib", 1024),
}
UNITS = {"memory_mib": " MiB", "disk_mib": " MiB"}


class PolicyError(ValueError):
    """A value a lab asks for is outside what the host allows (plain English)."""


def capability_name(value: str) -> str:
    """``cap_net_admin``, ``CAP_NET_ADMIN`` and ``net_admin`` are all ``NET_ADMIN``."""
    return value.strip().upper().removeprefix("CAP_")


@dataclass(frozen=True)
class LabPolicy:
    """What one lab may ask of the host. ``from_settings()`` is the site's policy; tests
    and other callers may pass their own."""

    #: The most a lab may ask for, keyed by Lab field: cpus, memory_mib, pids, disk_mib.
    limits: Mapping[str, float]
    #: Capability names as stored (upper case, no CAP_ prefix). ALL is never one of them.
    capabilities: frozenset[str]

    @classmethod
    def from_settings(cls) -> LabPolicy:
        limits = dict(settings.LABSITE_LAB_LIMITS)
        if missing := {name for name, _ in RESOURCES.values()} - set(limits):
            raise ImproperlyConfigured(f"LABSITE_LAB_LIMITS has no {', '.join(sorted(missing))}")
        return cls(
            limits=limits,
            capabilities=frozenset(
                capability_name(c) for c in settings.LABSITE_ALLOWED_CAPABILITIES
            )
            - {"ALL"},
        )

    def capability(self, value: object) -> str:
        """The stored name of ``value``, or PolicyError if the allowlist does not have it."""
        allowed = ", ".join(sorted(self.capabilities)) or "none"
        if not isinstance(value, str) or not CAPABILITY.match(name := capability_name(value)):
            raise PolicyError(f"{value!r} is not a capability name like NET_ADMIN")
        if name == "ALL":
            raise PolicyError(
                f"ALL would grant every capability; name the ones needed from: {allowed}"
            )
        if name not in self.capabilities:
            raise PolicyError(f"capability {name} is not allowed on this site; allowed: {allowed}")
        return name

    def resource(self, field: str, value: object) -> float | int:
        """``value`` as the Lab field ``field`` stores it, or PolicyError if it is not a
        positive number within the limit (memory, pids and disk are whole numbers)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(f"must be a number, not {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise PolicyError(f"must be a number greater than 0, not {value}")
        if field != "cpus" and value != int(value):
            raise PolicyError(f"must be a whole number, not {value}")
        limit, unit = self.limits[field], UNITS.get(field, "")
        if value > limit:
            raise PolicyError(
                f"{value:g}{unit} is more than a lab may ask for on this site: at most "
                f"{limit:g}{unit} (LABSITE_LAB_LIMITS['{field}'])"
            )
        return float(value) if field == "cpus" else int(value)


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
    title_en: str
    body_html: str
    check_script: str
    solve_script: str
    #: Failed checks a student may have on this step (0: no limit). A quiz sets it, so
    #: changing one answer at a time until the check passes does not work.
    attempts: int = 0


@dataclass
class LabData:
    slug: str
    order: int
    title: str
    title_en: str
    summary: str
    summary_en: str
    plan: str
    kind: str
    status: str
    environment: str
    dockerfile: str
    cpus: float
    memory_mib: int
    pids: int
    disk_mib: int
    capabilities: list[str]
    network: str
    runtime: str
    time_limit_minutes: int
    setup_script: str
    source_dir: str
    #: Where it runs: the pool's name, and labels a host must have (``placement:``).
    pool: str = "default"
    host_labels: list[str] = field(default_factory=list)
    #: Sandboxes kept started ahead of demand (``warm_pool:``; container labs only).
    warm_pool: int = 0
    steps: list[StepData] = field(default_factory=list)


@dataclass
class ModuleData:
    number: int
    slug: str
    title: str
    title_en: str
    summary: str
    summary_en: str
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


class _Files:
    """Reads the files of one content folder, refusing any path that resolves outside it
    (a symlink to /etc/passwd, or to a folder elsewhere). Symlinks within it are fine."""

    def __init__(self, root: Path) -> None:
        self.root = _resolve(root)

    def inside(self, path: Path) -> Path:
        target = _resolve(path)
        if not target.is_relative_to(self.root):
            raise ContentError(
                path, None, f"leads outside the content folder {self.root} (to {target})"
            )
        return path

    def text(self, path: Path) -> str:
        if not self.inside(path).is_file():
            raise ContentError(path, None, "file is missing")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ContentError(path, None, "not UTF-8 text") from None
        except OSError as exc:
            raise ContentError(path, None, f"cannot be read: {exc.strerror}") from None

    def optional(self, path: Path) -> str:
        return self.text(path) if self.inside(path).is_file() else ""

    def folder(self, path: Path) -> bool:
        """``path`` is a folder inside the content folder (False if it is not there)."""
        return self.inside(path).is_dir()


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ContentError(path, None, f"cannot be followed: {exc}") from None


class _Yaml:
    """A YAML mapping that remembers the line of each key, for error messages. Lines of
    list items are kept too, as ``key.0``, ``key.1``..."""

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[str, int]) -> None:
        self.path, self.data, self.lines = path, data, lines

    @classmethod
    def read(cls, files: _Files, path: Path) -> _Yaml:
        text = files.text(path)
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            lines = _key_lines(node, "", set())
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ContentError(path, line, f"invalid YAML: {problem}") from None
        if not isinstance(data, dict) or node is None:
            raise ContentError(path, 1, "expected a mapping of keys to values")
        return cls(path, data, lines)

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

    def english(self, key: str, chinese: str) -> str:
        """The English twin ``key`` of the text ``chinese``: required where that is not
        empty, for the English interface."""
        value = self.text(key, required=False)
        if chinese and not value:
            raise self.error(
                key, f"'{key}' is required: the English text shown on the English pages"
            )
        return value

    def choice(self, key: str, allowed: set[str], default: str | None = None) -> str:
        value = self.text(key, required=default is None, default=default or "")
        if value not in allowed:
            raise self.error(key, f"'{key}' must be one of {sorted(allowed)}, not {value!r}")
        return value

    def number(self, key: str, default: float, kind: type = int, low: float = 0) -> Any:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"'{key}' must be a number, not {value!r}")
        if not math.isfinite(value) or value <= low:
            raise self.error(key, f"'{key}' must be a number greater than {low}")
        if kind is int and value != int(value):
            raise self.error(key, f"'{key}' must be a whole number, not {value}")
        return kind(value)

    def section(self, key: str) -> _Yaml:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"'{key}' must be a mapping")
        line = self.lines.get(key, 1)
        lines = {k[len(key) + 1 :]: n for k, n in self.lines.items() if k.startswith(f"{key}.")}
        return _Yaml(self.path, value, {k: lines.get(k, line) for k in value} | lines)


def _key_lines(node: yaml.Node | None, prefix: str, seen: set[int]) -> dict[str, int]:
    """The line of every key and list item under ``node``. Aliases (``*name``) are refused:
    content has no use for them, and a few nested ones would make this walk endless."""
    if id(node) in seen:
        raise yaml.YAMLError("aliases (*name) are not supported in content files")
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        children = [(str(k.value), k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [(str(i), v, v) for i, v in enumerate(node.value)]
    else:
        return {}
    lines: dict[str, int] = {}
    for name, mark_node, value_node in children:
        key = f"{prefix}{name}"
        lines[key] = mark_node.start_mark.line + 1
        lines.update(_key_lines(value_node, key + ".", seen))
    return lines


def read_course(
    course_dir: Path, policy: LabPolicy | None = None, root: Path | None = None
) -> CourseData:
    """Read ``course_dir``. Every file must resolve inside ``root`` (the content folder,
    by default the course's parent); labs are held to ``policy`` (by default the site's)."""
    files = _Files(course_dir.parent if root is None else root)
    policy = policy or LabPolicy.from_settings()
    files.inside(course_dir)
    meta = _Yaml.read(files, course_dir / "course.yaml")
    title, summary = meta.text("title"), meta.text("summary", required=False)
    course = CourseData(
        slug=course_dir.name,
        title=title,
        title_en=meta.english("title_en", title),
        summary=summary,
        summary_en=meta.english("summary_en", summary),
    )
    for number, slug, path in _numbered_dirs(files, course_dir):
        course.modules.append(_read_module(files, policy, course.slug, number, slug, path))
    if not course.modules:
        raise ContentError(course_dir, None, "a course needs at least one NN-slug module folder")
    return course


def _numbered_dirs(files: _Files, parent: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(parent.iterdir()):
        if (match := NUMBERED.match(path.name)) and files.folder(path):
            found.append((int(match[1]), match[2], path))
    return found


def _read_module(
    files: _Files, policy: LabPolicy, course_slug: str, number: int, slug: str, path: Path
) -> ModuleData:
    meta = _Yaml.read(files, path / "module.yaml")
    rendered = render_markdown(
        _without_title(files.text(path / "lesson.md")),
        asset_base_url=f"/assets/{course_slug}/{path.name}/",
    )
    _check_diagrams(files, path / "diagrams")
    title, summary = meta.text("title"), meta.text("summary", required=False)
    module = ModuleData(
        number=number,
        slug=slug,
        title=title,
        title_en=meta.english("title_en", title),
        summary=summary,
        summary_en=meta.english("summary_en", summary),
        body_html=rendered.html,
        toc=rendered.toc,
        source_dir=str(path),
    )
    labs_dir = path / "labs"
    if files.folder(labs_dir):
        lab_dirs = sorted(p for p in labs_dir.iterdir() if files.folder(p))
        for order, lab_dir in enumerate(lab_dirs):
            module.labs.append(_read_lab(files, policy, lab_dir, order))
    return module


def _check_diagrams(files: _Files, diagrams_dir: Path) -> None:
    """The site serves these to browsers: none may lead outside the content folder."""
    if files.folder(diagrams_dir):
        for path in diagrams_dir.iterdir():
            files.inside(path)


def _without_title(text: str) -> str:
    """The page shows the module's title already; drop a leading ``# title`` line."""
    stripped = text.lstrip()
    if stripped.startswith("# "):
        return stripped.partition("\n")[2]
    return text


def _read_lab(files: _Files, policy: LabPolicy, path: Path, order: int) -> LabData:
    if not LAB_SLUG.match(path.name):
        raise ContentError(path, None, "a lab folder name must be lowercase letters, digits, '-'")
    meta = _Yaml.read(files, path / "lab.yaml")
    env = meta.section("environment")
    kind = env.choice("kind", KINDS)
    environment = env.text("image" if kind == "container" else "template")
    if kind == "vm" and not TEMPLATE.match(environment):
        raise env.error(
            "template", f"'template' must be a template name like tiny, not {environment!r}"
        )
    dockerfile = files.optional(path / "Dockerfile")
    if dockerfile and kind == "vm":
        raise ContentError(
            path / "Dockerfile",
            None,
            "a vm lab boots a template; only container labs have a Dockerfile",
        )
    title, summary = meta.text("title"), meta.text("summary", required=False)
    lab = LabData(
        slug=path.name,
        order=meta.number("order", order + 1, int) if "order" in meta.data else order + 1,
        title=title,
        title_en=meta.english("title_en", title),
        summary=summary,
        summary_en=meta.english("summary_en", summary),
        plan=meta.text("plan", required=False),
        kind=kind,
        status=meta.choice("status", STATUSES),
        environment=environment,
        dockerfile=dockerfile,
        **_resources(meta.section("resources"), policy),
        capabilities=_capabilities(meta, policy),
        network=meta.choice("network", NETWORKS, default="none"),
        runtime=env.text("runtime", required=False),
        time_limit_minutes=meta.number("time_limit", 45, int),
        setup_script=files.optional(path / "setup.sh"),
        source_dir=str(path),
        **_placement(meta.section("placement")),
        warm_pool=_warm_pool(meta, kind),
    )
    lab.steps = _read_steps(files, path / "steps", lab.status == "ready")
    return lab


def _resources(res: _Yaml, policy: LabPolicy) -> dict[str, Any]:
    """``resources:`` as Lab fields. A resource left out gets its default, or the site's
    limit where that is lower."""
    for key in res.data:
        if key not in RESOURCES:
            raise res.error(key, f"unknown resource {key!r}; known: {', '.join(RESOURCES)}")
    values = {}
    for key, (name, default) in RESOURCES.items():
        value = res.data.get(key, min(default, policy.limits[name]))
        try:
            values[name] = policy.resource(name, value)
        except PolicyError as exc:
            raise res.error(key, f"resources.{key}: {exc}") from None
    return values


def _placement(place: _Yaml) -> dict[str, Any]:
    """``placement:`` — ``pool`` (a pool's name, default "default") and ``labels``, what a
    host must offer (``[kvm]``, ``[runsc]``…)."""
    for key in place.data:
        if key not in ("pool", "labels"):
            raise place.error(key, f"unknown placement key {key!r}; known: pool, labels")
    pool = place.text("pool", required=False, default="default")
    labels = place.data.get("labels", [])
    if not isinstance(labels, list) or not all(
        isinstance(x, str) and HOST_LABEL.match(x) for x in labels
    ):
        raise place.error(
            "labels", "'labels' must be a list of short lowercase names like [kvm, runsc]"
        )
    return {"pool": pool, "host_labels": sorted(set(labels))}


#: A lab file may ask for at most this many pool sandboxes (an admin may set more).
MAX_WARM_POOL = 200


def _warm_pool(meta: _Yaml, kind: str) -> int:
    """``warm_pool:`` — how many sandboxes to keep started so that Start is instant."""
    size = meta.number("warm_pool", 0, int, low=-1)
    if size and kind != "container":
        raise meta.error("warm_pool", "only container labs have warm pools (a vm lab boots)")
    if size > MAX_WARM_POOL:
        raise meta.error("warm_pool", f"'warm_pool' must be at most {MAX_WARM_POOL}")
    return size


def _capabilities(meta: _Yaml, policy: LabPolicy) -> list[str]:
    """``capabilities:`` as stored: allowed names only, upper case, no CAP_, no repeats."""
    values = meta.data.get("capabilities")
    if values is None:
        return []
    if not isinstance(values, list):
        raise meta.error("capabilities", "'capabilities' must be a list like [NET_ADMIN]")
    names: list[str] = []
    for index, value in enumerate(values):
        try:
            name = policy.capability(value)
        except PolicyError as exc:
            raise meta.error(f"capabilities.{index}", f"capabilities: {exc}") from None
        if name not in names:
            names.append(name)
    return names


def _read_steps(files: _Files, steps_dir: Path, required: bool) -> list[StepData]:
    if not files.folder(steps_dir):
        if required:
            raise ContentError(steps_dir, None, "a ready lab needs a steps/ folder")
        return []
    steps = []
    for md in sorted(steps_dir.glob("*.md")):
        match = NUMBERED.match(md.stem)
        if not match:
            raise ContentError(md, None, "step files are named NN-slug.md")
        title, title_en, body = _step_titles(md, files.text(md))
        attempts, body = _step_attempts(md, body)
        steps.append(
            StepData(
                number=int(match[1]),
                slug=match[2],
                title=title,
                title_en=title_en,
                body_html=render_markdown(body).html,
                check_script=files.optional(md.with_suffix(".check")),
                solve_script=files.optional(md.with_suffix(".solve")),
                attempts=attempts,
            )
        )
    numbers = [s.number for s in steps]
    if len(set(numbers)) != len(numbers):
        raise ContentError(steps_dir, None, f"two steps share a number: {numbers}")
    if required and not steps:
        raise ContentError(steps_dir, None, "a ready lab needs at least one step")
    return steps


def _step_titles(md: Path, text: str) -> tuple[str, str, str]:
    """A step file's (title, English title, body): ``# 标题`` on the first line, then
    ``<!-- title_en: Title -->``, then the body."""
    first, _, rest = text.partition("\n")
    if not first.startswith("# ") or not first[2:].strip():
        raise ContentError(md, 1, "the first line must be the step's title: '# 标题'")
    second, _, body = rest.partition("\n")
    english = STEP_TITLE_EN.match(second)
    if not english or not english["title"]:
        raise ContentError(
            md, 2, "the second line must be the step's English title: '<!-- title_en: Title -->'"
        )
    return first[2:].strip(), english["title"], body


def _step_attempts(md: Path, body: str) -> tuple[int, str]:
    """The optional ``<!-- attempts: N -->`` on the third line, and the body after it."""
    third, _, rest = body.partition("\n")
    found = STEP_ATTEMPTS.match(third)
    if not found:
        return 0, body
    n = found["n"]
    if not n.isdigit() or not 1 <= int(n) <= MAX_ATTEMPTS:
        raise ContentError(
            md, 3, f"attempts must be a whole number from 1 to {MAX_ATTEMPTS}, not {n!r}"
        )
    if not md.with_suffix(".check").is_file():
        raise ContentError(md, 3, "attempts limit the failed checks of a step that has a .check")
    return int(n), rest
