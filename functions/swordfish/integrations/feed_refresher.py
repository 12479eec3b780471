"""Refresh the threat feeds: download each configured feed, parse it, swap it into Redis.

A feed that fails to download, fails to parse, is mostly unparseable or shrinks suspiciously keeps
its last good snapshot (see ``IndicatorStore.replace``); one feed's failure never stops the others.
``FeedFetcher.fetch`` is the only outbound call (one per feed), so a circuit breaker per feed can
wrap it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import urllib3
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from swordfish import constants
from swordfish.config import Settings
from swordfish.integrations.feeds import parse_feed
from swordfish.integrations.indicators import IndicatorStore, IndicatorStoreError
from swordfish.monitoring.observability import logger

DEFAULT_MAX_FEED_BYTES = 64 * 1024 * 1024
DEFAULT_MIN_KEEP_RATIO = 0.5
DEFAULT_LOAD_TIMEOUT_SECONDS = 10.0


class FeedFetchError(RuntimeError):
    """The feed could not be downloaded (unreachable, error status, too large)."""


class FeedFetchTimeout(FeedFetchError):
    """The feed did not arrive in full within the timeout."""


class FeedFetcher:
    def __init__(self, timeout: float, max_bytes: int = DEFAULT_MAX_FEED_BYTES):
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        # No retries: the next scheduled refresh is the retry, and the breaker counts each failure.
        self._http = urllib3.PoolManager(num_pools=4, maxsize=2, retries=False)

    def fetch(self, feed: str, url: str) -> bytes:
        """GET ``url`` within ``timeout`` seconds overall; raises FeedFetchError / FeedFetchTimeout."""
        where = f"{feed} feed ({url})"
        deadline = time.monotonic() + self.timeout
        try:
            response = self._http.request(
                "GET", url, preload_content=False, redirect=True,
                headers={"User-Agent": f"{constants.SERVICE_NAME}-feed-refresher"},
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
            try:
                if response.status != 200:
                    raise FeedFetchError(f"{where}: HTTP {response.status}")
                chunks, size = [], 0
                for chunk in response.stream(256 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FeedFetchError(f"{where}: larger than {self.max_bytes} bytes; refused")
                    # urllib3's read timeout is per socket read; this bounds a server that trickles.
                    if time.monotonic() > deadline:
                        raise FeedFetchTimeout(f"{where}: not complete within {self.timeout:g}s")
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                response.release_conn()
        except urllib3.exceptions.NewConnectionError as exc:  # subclass of ConnectTimeoutError
            raise FeedFetchError(f"{where}: cannot connect: {exc}") from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise FeedFetchTimeout(f"{where}: no answer within {self.timeout:g}s") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise FeedFetchError(f"{where}: {type(exc).__name__}: {exc}") from exc


@dataclass
class FeedResult:
    feed: str
    outcome: str  # "loaded" | "kept_last_good" | "not_configured"
    indicators: int = 0  # size of the live set after this refresh
    previous_indicators: int = 0
    rows: int = 0
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


@dataclass
class RefreshReport:
    results: list[FeedResult]

    @property
    def failed(self) -> list[FeedResult]:
        return [r for r in self.results if r.outcome == "kept_last_good"]

    @property
    def all_failed(self) -> bool:
        configured = [r for r in self.results if r.outcome != "not_configured"]
        return bool(configured) and all(r.outcome == "kept_last_good" for r in configured)

    def as_dict(self) -> dict:
        return {"feeds": {r.feed: asdict(r) for r in self.results},
                "failed": [r.feed for r in self.failed]}


class FeedRefresher:
    def __init__(self, store: IndicatorStore, fetcher: FeedFetcher, sources: Mapping[str, str | None],
                 min_keep_ratio: float = DEFAULT_MIN_KEEP_RATIO):
        self.store = store
        self.fetcher = fetcher
        self.sources = dict(sources)  # feed name -> URL (None or "": not configured)
        self.min_keep_ratio = min_keep_ratio

    def refresh_all(self) -> RefreshReport:
        return RefreshReport([self.refresh(feed) for feed in self.store.feeds])

    def refresh(self, feed: str) -> FeedResult:
        url = self.sources.get(feed)
        if not url:
            return FeedResult(feed, "not_configured")
        started = time.monotonic()
        result = self._refresh(feed, url)
        result.seconds = round(time.monotonic() - started, 3)
        log = logger.info if result.outcome == "loaded" else logger.error
        log("threat feed refresh", extra={"feed_result": asdict(result)})
        return result

    def _refresh(self, feed: str, url: str) -> FeedResult:
        try:
            data = self.fetcher.fetch(feed, url)
            parsed = parse_feed(feed, data)
        # Any fetch or parse failure, an open breaker included, keeps the last good set.
        except Exception as exc:  # noqa: BLE001
            return self._kept(feed, f"{type(exc).__name__}: {exc}")
        counts = {"rows": parsed.rows, "bad_rows": parsed.bad_rows, "bad_examples": parsed.bad_examples}
        if parsed.bad_rows > parsed.rows:
            return self._kept(feed, f"{feed} feed is mostly unparseable ({parsed.bad_rows} bad lines, "
                                    f"{parsed.rows} good): not loaded", **counts)
        try:
            outcome = self.store.replace(feed, parsed.indicators, rows=parsed.rows, bad_rows=parsed.bad_rows,
                                         source=url, min_keep_ratio=self.min_keep_ratio)
        except IndicatorStoreError as exc:
            return FeedResult(feed, "kept_last_good", error=str(exc), **counts)
        if not outcome.replaced:
            return FeedResult(feed, "kept_last_good", indicators=outcome.previous_indicators,
                              previous_indicators=outcome.previous_indicators, error=outcome.reason, **counts)
        return FeedResult(feed, "loaded", indicators=outcome.indicators,
                          previous_indicators=outcome.previous_indicators, **counts)

    def _kept(self, feed: str, error: str, **counts) -> FeedResult:
        try:
            self.store.record_failure(feed, error)
        except IndicatorStoreError as exc:
            error = f"{error}; and could not record it: {exc}"
        return FeedResult(feed, "kept_last_good", error=error, **counts)


def emit_refresh_metrics(report: RefreshReport) -> None:
    """Per feed (dimension ``feed``): FeedRefreshSucceeded/FeedRefreshFailed and FeedIndicators."""
    for result in report.results:
        if result.outcome == "not_configured":
            continue
        name = "FeedRefreshSucceeded" if result.outcome == "loaded" else "FeedRefreshFailed"
        with single_metric(name=name, unit=MetricUnit.Count, value=1,
                           namespace=constants.METRICS_NAMESPACE) as metric:
            metric.add_dimension(name="feed", value=result.feed)
            if result.outcome == "loaded":
                metric.add_metric(name="FeedIndicators", unit=MetricUnit.Count, value=result.indicators)


def feed_sources(settings: Settings) -> dict[str, str | None]:
    return {feed: getattr(settings, f"{feed}_feed_url", None) for feed in constants.THREAT_FEEDS}
