"""The site holds together: every page is in the nav, every link and anchor resolves (the
generator checks links between pages too, in ``make docs``; this also covers the README,
which GitHub shows, and the nav, which the generator does not check)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.docs.pages import (
    DOCS,
    README,
    ROOT,
    anchors,
    documents,
    github_anchors,
    links,
    mkdocs,
    name,
    nav_pages,
    pages,
)


def test_the_configuration_is_plain_and_points_at_docs() -> None:
    config = mkdocs()
    assert config["docs_dir"] == "docs"
    assert config["site_dir"] == "site"
    assert config["theme"]["name"] == "material"
    assert not config.get("plugins"), "plugins would tie the site to one generator"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "site/" in ignored


def test_every_page_is_in_the_nav_once_and_every_nav_entry_is_a_page() -> None:
    named = list(nav_pages(mkdocs()["nav"]))
    assert len(named) == len(set(named)), "a page is in the nav twice"
    on_disk = {str(path.relative_to(DOCS)) for path in pages()}
    assert set(named) - on_disk == set(), "the nav names pages that do not exist"
    assert on_disk - set(named) == set(), "pages left out of the nav"
    assert named[0] == "index.md"


def test_the_readme_stays_short() -> None:
    assert len(README.read_text().splitlines()) <= 250


def _targets() -> list[tuple[Path, str, bool]]:
    return [(path, target, image) for path in documents() for target, image in links(path)]


@pytest.mark.parametrize(
    ("path", "target", "image"),
    _targets(),
    ids=[f"{name(path)}->{target}" for path, target, _ in _targets()],
)
def test_every_relative_link_and_anchor_resolves(path: Path, target: str, image: bool) -> None:
    if target.startswith(("http://", "https://", "mailto:")):
        return
    assert "://" not in target, target
    file, _, anchor = target.partition("#")
    resolved = (path.parent / unquote(file)).resolve() if file else path
    assert resolved.exists(), f"{name(path)}: {target}: no such file"
    if path != README:
        assert resolved.is_relative_to(DOCS), f"{name(path)}: {target} is not on the site"
    if image:
        assert resolved.is_file()
        assert not anchor
        return
    if anchor:
        assert resolved.suffix == ".md", f"{name(path)}: {target}: an anchor in a non-page"
        assert anchor in anchors(resolved), f"{name(path)}: {target}: no such heading"
        if path == README:  # followed on GitHub as well as on the site
            assert anchor in github_anchors(resolved), f"{target}: GitHub names it otherwise"


def test_the_link_reader_finds_links_and_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Your code: `--code`, `--wheels`\n\n## Dup\n\n## Dup\n\n"
        "See [a `b`](other.md#x) and ![pic\nof it](p.png).\n\n"
        "```console\n[not](a-link.md)\n```\n\n`[no](link.md)` but [yes](y.md)\n"
    )
    assert list(links(page)) == [("other.md#x", False), ("p.png", True), ("y.md", False)]
    assert anchors(page) == {"your-code-code-wheels", "dup", "dup_1"}
    assert github_anchors(page) == {"your-code---code---wheels", "dup", "dup-1"}
