"""The figures the docs quote are generated from the committed reports (scripts/doc_figures.py): a
block that disagrees with its report, a report without its block, or a block naming no report fails."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import doc_figures  # noqa: E402


def test_every_figures_block_is_what_its_report_gives():
    pages = doc_figures.pages()
    assert pages, "no page holds a figures block"
    for page, text in pages.items():
        assert doc_figures.refresh(text) == text, (
            f"{page.relative_to(REPO)} is stale: run .venv/bin/python scripts/doc_figures.py --write")


def test_every_committed_report_is_quoted_somewhere():
    quoted = {m.group("name") for text in doc_figures.pages().values() for m in doc_figures.BLOCK.finditer(text)}
    assert quoted == set(doc_figures.SOURCES)


def test_the_committed_evaluation_is_of_the_committed_weights():
    """corpus/eval.json must be make eval's report for analysis/data/weights.json: after a refit, run
    make eval (it writes corpus/eval.json; see docs/detection.md)."""
    import json

    evaluation = json.loads((REPO / doc_figures.SOURCES["detection-eval"]).read_text())
    weights = json.loads((REPO / doc_figures.SOURCES["detection-corpus"]).read_text())
    assert evaluation["weights"] == {k: weights[k] for k in ("format", "corpus", "points_per_logodds")}, (
        "corpus/eval.json evaluates other weights: run make eval")
    # make fit chooses the thresholds leave-one-source-out with every signal: that mode's are the shipped ones
    assert evaluation["modes"]["loso_all"]["thresholds"] == weights["thresholds"]


def test_a_changed_report_makes_its_block_stale(tmp_path, monkeypatch):
    """The check can fail: the faults report with PostgreSQL down longer gives another block."""
    for source in doc_figures.SOURCES.values():
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / source, tmp_path / source)
    report = tmp_path / doc_figures.SOURCES["load-faults"]
    page = (REPO / "docs" / "load-testing.md").read_text()
    monkeypatch.setattr(doc_figures, "REPO", tmp_path)
    assert doc_figures.refresh(page) == page
    report.write_text(report.read_text().replace("| postgresql-stop | 9990 | 0 | 0 | 0 | 20.5 |",
                                                 "| postgresql-stop | 9990 | 0 | 0 | 0 | 99.5 |"))
    refreshed = doc_figures.refresh(page)
    assert refreshed != page and "| postgresql-stop | 99.5 s |" in refreshed


def test_an_unknown_block_is_refused():
    with pytest.raises(SystemExit, match="unknown figures block 'bench'"):
        doc_figures.refresh("<!-- figures:bench -->\n<!-- /figures -->\n")


def test_an_empty_block_is_filled_and_its_neighbours_kept():
    text = ("a\n<!-- figures:load-soak -->\n<!-- /figures -->\nb\n<!-- figures:detection-corpus -->\n"
            "<!-- /figures -->\nc\n")
    refreshed = doc_figures.refresh(text)
    assert refreshed.startswith("a\n") and "\nb\n" in refreshed and refreshed.endswith("\nc\n")
    assert "601,540 emails submitted" in refreshed and "17,450 messages" in refreshed
    assert doc_figures.refresh(refreshed) == refreshed


def test_a_file_that_is_not_a_summary_is_refused(tmp_path):
    bogus = tmp_path / "summary.md"
    bogus.write_text("# Something else\n")
    with pytest.raises(SystemExit, match="not a load-test summary"):
        doc_figures.parse_summary(bogus)
