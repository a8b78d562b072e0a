"""Markdown to safe HTML: highlighted code, a table of contents, sanitised output."""

from __future__ import annotations

from dataclasses import dataclass

import markdown
import nh3
from pygments.formatters import HtmlFormatter

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan"},
    "th": {"align", "colspan"},
}


class _LanguageClassFormatter(HtmlFormatter):
    """Keeps the fence's language as ``<code class="language-bash">``, so the lab page can
    offer "run in the terminal" on shell blocks only."""

    def __init__(self, lang_str: str = "", **options) -> None:
        super().__init__(**options)
        self.lang_str = lang_str

    def _wrap_code(self, source):
        yield 0, f'<code class="{self.lang_str}">' if self.lang_str else "<code>"
        yield from source
        yield 0, "</code>"


@dataclass(frozen=True)
class Rendered:
    html: str
    #: Second-level headings as (anchor, text), for the page's table of contents.
    toc: list[tuple[str, str]]


def render_markdown(text: str, asset_base_url: str = "") -> Rendered:
    """Render ``text``; relative image paths are resolved against ``asset_base_url``."""
    md = markdown.Markdown(
        extensions=["fenced_code", "codehilite", "tables", "toc", "sane_lists"],
        extension_configs={
            "codehilite": {
                "css_class": "codehilite",
                "guess_lang": False,
                "pygments_formatter": _LanguageClassFormatter,
            },
            "toc": {"slugify": _slugify},
        },
    )
    raw = md.convert(text)

    def resolve(tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src" and not _is_absolute(value):
            return asset_base_url + value.removeprefix("./")
        return value

    html = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=resolve,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    return Rendered(html=html, toc=_second_level(md.toc_tokens))  # type: ignore[attr-defined]


def _is_absolute(url: str) -> bool:
    return url.startswith(("/", "http://", "https://", "data:"))


def _slugify(value: str, separator: str) -> str:
    # Chinese headings would slugify to nothing with the default; keep the characters.
    kept = "".join(ch if ch.isalnum() else " " for ch in value.lower())
    return separator.join(kept.split()) or "section"


def _second_level(tokens: list[dict]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for token in tokens:
        if token["level"] == 2:
            found.append((token["id"], token["name"]))
        found.extend(_second_level(token.get("children", [])))
    return found
