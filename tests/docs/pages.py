"""Reading the documentation as its readers and its generator do: the pages, their fenced
blocks (with the output marker before each), their prose, links and headings."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify  # type: ignore[import-untyped]
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
MARKER = re.compile(r"^<!--\s*output:\s*(\S+)\s*-->$")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def pages() -> list[Path]:
    """The site's pages: every Markdown file under docs/."""
    return sorted(DOCS.glob("**/*.md"))


def documents() -> list[Path]:
    """What readers read: the README and the site's pages."""
    return [README, *pages()]


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based, the opening fence's
    info: str  # the language, "" when none
    lines: tuple[str, ...]
    marker: str | None  # the ID of <!-- output: ID --> right before the fence

    @property
    def where(self) -> str:
        return f"{name(self.path)}:{self.line}"


def split(path: Path, text: str | None = None) -> tuple[list[Block], str]:
    """The fenced blocks of a page, and its prose (every other line; block lines blank,
    so that positions in the prose stay those of the page). ``text``, if given, is read
    as the page's instead of the file's (another version of it)."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            prose.append(lines[i])
            i += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        before = lines[i - 1].strip() if i else ""
        marker = MARKER.match(before)
        body = tuple(
            line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]
        )
        blocks.append(
            Block(path, i + 1, opening.group("info"), body, marker.group(1) if marker else None)
        )
        prose += [""] * (min(end, len(lines) - 1) - i + 1)
        i = end + 1
    return blocks, "\n".join(prose)


def blocks(path: Path) -> list[Block]:
    return split(path)[0]


def prose(path: Path) -> str:
    return split(path)[1]


def code_spans(text: str) -> Iterator[str]:
    """The inline code of some prose, a span's line breaks read as spaces."""
    for match in CODE_SPAN.finditer(text):
        yield " ".join(match.group(2).split())


def links(path: Path) -> Iterator[tuple[str, bool]]:
    """Every link target of a page's prose (outside code), and whether it is an image."""
    text = CODE_SPAN.sub(lambda match: " " * len(match.group(0)), prose(path))
    for match in LINK.finditer(text):
        yield match.group(3), match.group(1) == "!"


def _heading_text(raw: str) -> str:
    """A heading's text as the reader sees it: no code marks, links reduced to their text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    return text.replace("`", "").replace("*", "")


def _unique(slug: str, seen: set[str], separator: str) -> str:
    candidate, n = slug, 0
    while candidate in seen:
        n += 1
        candidate = f"{slug}{separator}{n}"
    seen.add(candidate)
    return candidate


def anchors(path: Path) -> set[str]:
    """The ids the generator gives the page's headings: Python-Markdown's toc slugs (a
    second "Dup" is dup_1), or an explicit ``{#id}``."""
    seen: set[str] = set()
    for line in prose(path).splitlines():
        heading = HEADING.match(line)
        if heading is None:
            continue
        explicit = re.search(r"\{\s*#([\w-]+)[^}]*\}\s*$", heading.group(2))
        if explicit:
            seen.add(explicit.group(1))
            continue
        _unique(slugify(_heading_text(heading.group(2)), "-"), seen, "_")
    return seen


def github_anchors(path: Path) -> set[str]:
    """The ids GitHub gives the same headings, where the README's links are followed."""
    seen: set[str] = set()
    for line in prose(path).splitlines():
        heading = HEADING.match(line)
        if heading is None:
            continue
        text = unicodedata.normalize("NFC", _heading_text(heading.group(2))).lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        _unique(slug, seen, "-")
    return seen


def mkdocs() -> dict[str, Any]:
    document = YAML(typ="safe").load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def nav_pages(entry: Any) -> Iterator[str]:
    """Every page the nav names, in order."""
    if isinstance(entry, str):
        yield entry
    elif isinstance(entry, list):
        for item in entry:
            yield from nav_pages(item)
    elif isinstance(entry, dict):
        for value in entry.values():
            yield from nav_pages(value)
