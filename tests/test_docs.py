"""The documentation: README as a short front door, docs/ as a site whose build (MkDocs,
--strict) fails on a broken link or anchor between its pages."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from markdown.extensions.toc import slugify

from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
RELATIVE_LINK = re.compile(r"\]\((?!https?://)([^)#\s]+)(?:#([^)\s]+))?\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


def _anchors(page_text: str) -> set[str]:
    return {slugify(title.strip(), "-") for title in HEADING.findall(page_text)}


def test_the_site_builds_with_no_broken_link(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "world" / "index.html").is_file()


def test_every_page_is_in_the_site_navigation():
    config = yaml.safe_load((PROJECT_ROOT / "mkdocs.yml").read_text())
    in_nav = {page for entry in config["nav"] for page in entry.values()}
    assert in_nav == {p.name for p in DOCS.glob("*.md")}


def test_the_readme_is_a_front_door_whose_links_all_arrive():
    text = README.read_text()
    assert len(text.encode()) <= 25_000, "README.md over 25 KB: move detail into docs/"
    links = RELATIVE_LINK.findall(text)
    assert links, "the README links into docs/"
    for target, anchor in links:
        page = PROJECT_ROOT / target
        assert page.exists(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(page.read_text()), f"README: no #{anchor} in {target}"
