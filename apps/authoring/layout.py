"""How an editor page lays out a unit's files: which editor each file gets, and a lab's
steps as cards of three files (``NN-slug.md`` beside its ``.check`` and ``.solve``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apps.authoring.units import COURSE, LAB, MODULE

STEP_FILE = re.compile(r"^steps/(\d+-[a-z0-9][a-z0-9-]*)\.(md|check|solve)$")
#: The files each kind of unit shows first, in this order, even when they do not exist yet.
MAIN_FILES = {
    COURSE: ["course.yaml"],
    MODULE: ["module.yaml", "lesson.md"],
    LAB: ["lab.yaml", "setup.sh", "Dockerfile"],
}


def language(relpath: str) -> str:
    """The CodeMirror language of a file (see frontend/src/editor/languages.js)."""
    name = relpath.rsplit("/", 1)[-1]
    if name == "Dockerfile":
        return "dockerfile"
    if name.endswith(".md"):
        return "markdown"
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith((".sh", ".check", ".solve")):
        return "shell"
    return "text"


@dataclass
class FileSlot:
    path: str
    lang: str
    exists: bool


@dataclass
class StepCard:
    stem: str
    number: int
    md: FileSlot
    check: FileSlot
    solve: FileSlot


@dataclass
class Layout:
    main: list[FileSlot] = field(default_factory=list)
    steps: list[StepCard] = field(default_factory=list)
    other: list[FileSlot] = field(default_factory=list)


def layout(kind: str, files: dict[str, str]) -> Layout:
    result = Layout()
    shown: set[str] = set()
    for path in MAIN_FILES[kind]:
        result.main.append(FileSlot(path, language(path), path in files))
        shown.add(path)
    if kind == LAB:
        stems = sorted(
            {m[1] for p in files if (m := STEP_FILE.match(p)) and f"steps/{m[1]}.md" in files}
        )
        for stem in stems:
            paths = {ext: f"steps/{stem}.{ext}" for ext in ("md", "check", "solve")}
            slots = {ext: FileSlot(p, language(p), p in files) for ext, p in paths.items()}
            shown.update(slot.path for slot in slots.values())
            result.steps.append(
                StepCard(
                    stem, int(stem.split("-", 1)[0]), slots["md"], slots["check"], slots["solve"]
                )
            )
    result.other = [FileSlot(p, language(p), True) for p in sorted(files) if p not in shown]
    return result
