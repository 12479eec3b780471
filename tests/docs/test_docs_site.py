"""The docs site (mkdocs.yml, docs/) builds with --strict, its internal links resolve, the API
reference is the served OpenAPI document, and the README stays a landing page that links into it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import mkdocs_hooks  # noqa: E402


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if tag in ("a", "img", "link", "script") and attrs.get(name):
                self.hrefs.append(attrs[name])


def _target(page: Path, href: str, site: Path) -> tuple[Path, str] | None:
    """The file and anchor an internal link points at; None for external links."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
        return None
    if not parts.path:
        return page, unquote(parts.fragment)
    target = (site / parts.path.lstrip("/")) if parts.path.startswith("/") else (page.parent / unquote(parts.path))
    target = target.resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def broken_links(site: Path) -> list[str]:
    """Every internal link or image of the built site whose file, or whose #anchor, does not exist."""
    pages = {}
    for page in site.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        pages[page.resolve()] = parser
    broken = []
    for page, parser in pages.items():
        for href in parser.hrefs:
            target = _target(page, href, site)
            if target is None:
                continue
            path, anchor = target
            if not path.exists():
                broken.append(f"{page.relative_to(site)}: {href} (no {path.name})")
            elif anchor and path in pages and anchor not in pages[path].ids:
                broken.append(f"{page.relative_to(site)}: {href} (no #{anchor})")
    return broken


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_strict_and_every_internal_link_resolves(site):
    assert (site / "index.html").exists()
    assert broken_links(site) == []


def test_the_link_check_finds_a_missing_page_and_a_missing_anchor(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text('<h2 id="here">x</h2><a href="a/">a</a><a href="#here">ok</a>'
                                         '<a href="gone/">gone</a><a href="a/#nowhere">anchor</a>'
                                         '<a href="https://example.com/x">external</a>')
    (tmp_path / "a" / "index.html").write_text('<a href="../index.html#here">back</a>')
    assert broken_links(tmp_path) == ["index.html: gone/ (no gone)", "index.html: a/#nowhere (no #nowhere)"]


def test_the_api_reference_is_the_served_openapi_document(site):
    document = mkdocs_hooks.served_openapi()
    page = (site / "api" / "index.html").read_text()
    assert document["paths"], "the API serves no routes?"
    for path, operations in document["paths"].items():
        shown = re.sub(r"\{(\w+)\}", r'<span class="route-param">{\1}</span>', path)
        assert shown in page, f"{path} is served but not in the API reference"
        for method in operations:
            assert f'<span class="http-{method}">{method.upper()}</span>' in page
    assert mkdocs_hooks.OPENAPI_MARKER not in page


def test_no_copy_of_the_openapi_document_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert not [f for f in tracked if re.search(r"(openapi|swagger)[^/]*\.(json|ya?ml)$", f)]


def test_the_readme_is_a_landing_page_whose_doc_links_resolve():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for command in ("make run", "make test"):
        assert command in readme
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert links, "the README links into docs/"
    assert [link for link in links if not (REPO / link).exists()] == []


def test_every_docs_page_is_in_the_nav():
    """A page left out of the nav is unreachable on the site (mkdocs only warns at INFO level for it)."""
    nav = (REPO / "mkdocs.yml").read_text()
    pages = [p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")]
    assert [p for p in pages if p not in nav] == []
