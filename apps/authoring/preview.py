"""The editor's live preview: Markdown rendered exactly as the loader renders it for the
student's pages (the same functions, the same asset URLs, the same title rules)."""

from __future__ import annotations

from pathlib import Path

# The loader's own rules for a lesson's title line and a step's two title lines.
from apps.courses.loader import ContentError, _step_titles, _without_title
from apps.courses.rendering import render_markdown


def lesson_html(text: str, course_slug: str, module_dir: str) -> str:
    """A module's lesson.md as the module page shows it (its ``# title`` line dropped)."""
    return render_markdown(
        _without_title(text), asset_base_url=f"/assets/{course_slug}/{module_dir}/"
    ).html


def step_preview(text: str) -> dict:
    """A step's .md as the lab page shows it: {title, title_en, html, problem}. A draft the
    loader would refuse still previews (its first line as the title), with the loader's
    words as ``problem``."""
    try:
        title, title_en, body = _step_titles(Path("step.md"), text)
        problem = ""
    except ContentError as exc:
        first, _sep, body = text.partition("\n")
        title, title_en = first.removeprefix("# ").strip(), ""
        problem = f"line {exc.line}: {exc.message}" if exc.line else exc.message
    return {
        "title": title,
        "title_en": title_en,
        "html": render_markdown(body).html,
        "problem": problem,
    }
