"""Former home of the pipeline's wiring, now in ``swordfish.wiring``. A thin re-export kept while
other branches' tests still import it; it goes once nothing does (nothing in the package imports it)."""

from __future__ import annotations

from swordfish.wiring import _pipeline, aws_client, build_pipeline, nango_client

get_pipeline = _pipeline.get
reset_pipeline = _pipeline.reset

__all__ = ["aws_client", "build_pipeline", "get_pipeline", "nango_client", "reset_pipeline"]
