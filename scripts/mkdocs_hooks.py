"""MkDocs hooks (mkdocs.yml ``hooks:``): pages built from the code and the committed reports, so the
site never holds a second copy of either.

- ``api.md``: ``<!-- openapi -->`` is replaced by the API reference rendered (essentials-openapi)
  from the document the API serves at ``/openapi.json``, made by the same function
  (``swordfish.api.routes.openapi_json``) at build time.
- ``reports/*.md``: the committed load-test reports (``loadtests/example-*.md`` and the chart) are
  added to the site as they are, under ``reports/``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
OPENAPI_MARKER = "<!-- openapi -->"
# site path -> committed file
REPORTS = {
    "reports/load-standard.md": "loadtests/example-summary.md",
    "reports/load-soak.md": "loadtests/example-soak-summary.md",
    "reports/load-faults.md": "loadtests/example-faults-summary.md",
    "reports/load-chart.png": "loadtests/example-chart.png",
}


def served_openapi() -> dict:
    """The OpenAPI document exactly as ``GET /openapi.json`` returns it."""
    if str(REPO / "functions") not in sys.path:
        sys.path.insert(0, str(REPO / "functions"))
    from swordfish.api.routes import build_app, openapi_json

    def no_dependencies():  # building the document never calls a route
        raise RuntimeError("the OpenAPI document needs no dependencies")

    return json.loads(openapi_json(build_app(no_dependencies)))


def render_openapi(document: dict) -> str:
    from openapidocs.mk.v3 import OpenAPIV3DocumentationHandler

    markdown = OpenAPIV3DocumentationHandler(document, style="MKDOCS").write()
    # The page has its own title: the generator's "edit me not" comment and its h1 go.
    markdown = re.sub(r"\A\s*<!--.*?-->\s*", "", markdown, flags=re.S)
    return re.sub(r"\A# .*\n", "", markdown)


def on_files(files: Files, config) -> Files:
    for site_path, source in REPORTS.items():
        files.append(File.generated(config, site_path, abs_src_path=str(REPO / source)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if OPENAPI_MARKER in markdown:
        markdown = markdown.replace(OPENAPI_MARKER, render_openapi(served_openapi()))
    return markdown
