"""Threat indicators in Redis: one set per feed, swapped in whole, looked up in one round trip.

Keys (all share the hash tag ``{feeds}`` so they live in one cluster slot: RENAME and the
multi-key scripts below need that on ElastiCache Serverless / Redis Cluster):

- ``swordfish:indicators:{feeds}:<feed>``              SET of lookup keys (see indicator_keys)
- ``swordfish:indicators:{feeds}:<feed>:meta``         HASH: refreshed_at, indicators, rows, bad_rows,
                                                       source, last_attempt_at, last_error
- ``swordfish:indicators:{feeds}:<feed>:loading:<id>`` SET being built; expires if a loader dies

A refresh builds the loading set, then one script renames it over the live set, so a reader sees
the old set or the new one, never a half-loaded one. The script refuses a set that is empty or much
smaller than the live one (an error page parsed as a feed, a truncated download) and keeps the last
good snapshot.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from swordfish import constants

LOAD_CHUNK = 5000  # members per SADD: keeps each command well under Redis' argument limits
LOADING_TTL_SECONDS = 900

# Atomic swap with the last-good guard. Lua because the size check and the RENAME must be one step:
# two refreshers racing must not both pass the check against the same old size.
_SWAP_SCRIPT = """
local new = redis.call('SCARD', KEYS[1])
local old = redis.call('SCARD', KEYS[2])
local now = ARGV[1]
if new < tonumber(ARGV[2]) or new < old * tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {0, new, old}
end
if new == 0 then
  redis.call('DEL', KEYS[2])
else
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])  -- RENAME carries the loading key's TTL over
end
redis.call('HSET', KEYS[3], 'refreshed_at', now, 'last_attempt_at', now, 'last_error', '',
           'indicators', new, 'rows', ARGV[4], 'bad_rows', ARGV[5], 'source', ARGV[6])
return {1, new, old}
"""

# One round trip for every candidate against every feed. KEYS: live sets in priority order;
# ARGV: candidates. Returns a flat list: candidate, 1-based index of the first feed holding it, ...
# SMISMEMBER in slices because Lua's unpack() is limited to a few thousand values.
_MATCH_SCRIPT = """
local found = {}
local out = {}
for k = 1, #KEYS do
  for start = 1, #ARGV, 1000 do
    local stop = math.min(start + 999, #ARGV)
    local hits = redis.call('SMISMEMBER', KEYS[k], unpack(ARGV, start, stop))
    for i = 1, #hits do
      local c = ARGV[start + i - 1]
      if hits[i] == 1 and not found[c] then
        found[c] = true
        out[#out + 1] = c
        out[#out + 1] = k
      end
    end
  end
end
return out
"""


class IndicatorStoreError(RuntimeError):
    """Redis could not be reached or answered with an error; the message says which operation."""


@dataclass(frozen=True)
class ReplaceOutcome:
    feed: str
    replaced: bool  # False: the last good snapshot was kept
    indicators: int  # size of the new set that was offered
    previous_indicators: int  # size of the live set before
    reason: str = ""  # why the new set was refused


@dataclass(frozen=True)
class FeedStatus:
    feed: str
    indicators: int  # members in the live set now
    refreshed_at: datetime | None  # last successful replace
    rows: int
    bad_rows: int
    source: str
    last_attempt_at: datetime | None
    last_error: str

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.refreshed_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.refreshed_at).total_seconds()


@dataclass(frozen=True)
class IndicatorSnapshot:
    """An in-process copy of every feed's set, for lookups while Redis is unavailable."""

    sets: dict[str, frozenset[str]]  # feed -> members, in priority order
    taken_at: datetime

    def match(self, candidates: Iterable[str]) -> dict[str, str]:
        hits: dict[str, str] = {}
        for feed, members in self.sets.items():
            for candidate in candidates:
                if candidate not in hits and candidate in members:
                    hits[candidate] = feed
        return hits

    def __len__(self) -> int:
        return sum(len(members) for members in self.sets.values())


def redis_client(url: str, timeout_seconds: float) -> redis.Redis:
    """A client for ``redis://``, ``rediss://`` or ``unix://`` URLs; every call bounded by the timeout."""
    return redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)


class IndicatorStore:
    def __init__(self, client: redis.Redis, feeds: Sequence[str] = constants.THREAT_FEEDS,
                 prefix: str = constants.REDIS_INDICATOR_PREFIX):
        self.client = client
        self.feeds = tuple(feeds)  # lookup priority: a key in two feeds is reported for the first
        self.prefix = f"{prefix}:{{feeds}}"
        self._swap = client.register_script(_SWAP_SCRIPT)

    @classmethod
    def from_url(cls, url: str, timeout_seconds: float, feeds: Sequence[str] = constants.THREAT_FEEDS,
                 ) -> IndicatorStore:
        return cls(redis_client(url, timeout_seconds), feeds)

    # --- keys ---------------------------------------------------------------------------------
    def set_key(self, feed: str) -> str:
        return f"{self.prefix}:{feed}"

    def meta_key(self, feed: str) -> str:
        return f"{self.prefix}:{feed}:meta"

    # --- lookup -------------------------------------------------------------------------------
    def match(self, candidates: set[str]) -> dict[str, str]:
        """Every candidate found in any feed, mapped to the first feed (in ``feeds`` order) holding it.

        One Redis command (EVAL) and so one round trip, however many candidates and feeds.
        Raises IndicatorStoreError when Redis fails or times out.
        """
        if not candidates:
            return {}
        keys = [self.set_key(feed) for feed in self.feeds]
        try:
            # EVAL (not EVALSHA) so a lookup is always exactly one round trip, even after a Redis
            # restart emptied the script cache; the script is a few hundred bytes.
            flat = self.client.eval(_MATCH_SCRIPT, len(keys), *keys, *sorted(candidates))
        except redis.RedisError as exc:
            raise IndicatorStoreError(f"threat-indicator lookup failed: {type(exc).__name__}: {exc}") from exc
        return {_text(flat[i]): self.feeds[int(flat[i + 1]) - 1] for i in range(0, len(flat), 2)}

    # --- loading ------------------------------------------------------------------------------
    def replace(self, feed: str, indicators: Iterable[str], *, rows: int = 0, bad_rows: int = 0,
                source: str = "", min_indicators: int = 1, min_keep_ratio: float = 0.5,
                ) -> ReplaceOutcome:
        """Swap the feed's live set for ``indicators`` in one atomic step.

        Refused (live set and its refresh time kept, ``last_error`` recorded) when the new set has
        fewer than ``min_indicators`` members or fewer than ``min_keep_ratio`` × the live set's size.
        Pass ``min_keep_ratio=0`` to force a shrink.
        """
        self._check_feed(feed)
        loading = f"{self.set_key(feed)}:loading:{secrets.token_hex(8)}"
        members = list(dict.fromkeys(indicators))
        try:
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(members), LOAD_CHUNK):
                pipe.sadd(loading, *members[start:start + LOAD_CHUNK])
            pipe.expire(loading, LOADING_TTL_SECONDS)  # a crashed loader leaves no garbage behind
            pipe.execute()
            accepted, new, old = self._swap(
                keys=[loading, self.set_key(feed), self.meta_key(feed)],
                args=[_now_iso(), min_indicators, min_keep_ratio, rows, bad_rows, source],
            )
        except redis.RedisError as exc:
            raise IndicatorStoreError(f"loading {feed} indicators failed: {type(exc).__name__}: {exc}") from exc
        if accepted:
            return ReplaceOutcome(feed, True, int(new), int(old))
        reason = (f"refused a {feed} snapshot of {new} indicators (live set has {old}; minimum "
                  f"{min_indicators}, at least {min_keep_ratio:.0%} of the live set): kept the last good snapshot")
        self.record_failure(feed, reason)
        return ReplaceOutcome(feed, False, int(new), int(old), reason)

    def record_failure(self, feed: str, error: str) -> None:
        """Note a failed refresh (fetch or parse) without touching the live set."""
        self._check_feed(feed)
        try:
            self.client.hset(self.meta_key(feed), mapping={"last_attempt_at": _now_iso(),
                                                           "last_error": error[:1000]})
        except redis.RedisError as exc:
            raise IndicatorStoreError(f"recording {feed} refresh failure failed: {exc}") from exc

    # --- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, FeedStatus]:
        """Per feed: live set size, last successful refresh, row counts and the last error."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for feed in self.feeds:
                pipe.scard(self.set_key(feed))
                pipe.hgetall(self.meta_key(feed))
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise IndicatorStoreError(f"reading threat-feed status failed: {exc}") from exc
        result = {}
        for i, feed in enumerate(self.feeds):
            size, meta = replies[2 * i], {_text(k): _text(v) for k, v in replies[2 * i + 1].items()}
            result[feed] = FeedStatus(
                feed=feed, indicators=int(size), refreshed_at=_parse_time(meta.get("refreshed_at")),
                rows=int(meta.get("rows") or 0), bad_rows=int(meta.get("bad_rows") or 0),
                source=meta.get("source", ""), last_attempt_at=_parse_time(meta.get("last_attempt_at")),
                last_error=meta.get("last_error", ""),
            )
        return result

    def snapshot(self) -> IndicatorSnapshot:
        """Copy every live set into memory (one pipelined round trip), for the lookup fallback."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for feed in self.feeds:
                pipe.smembers(self.set_key(feed))
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise IndicatorStoreError(f"copying threat indicators failed: {exc}") from exc
        return IndicatorSnapshot(
            {feed: frozenset(_text(m) for m in members) for feed, members in zip(self.feeds, replies, strict=True)},
            datetime.now(UTC),
        )

    def _check_feed(self, feed: str) -> None:
        if feed not in self.feeds:
            raise ValueError(f"unknown threat feed {feed!r}; this store knows {', '.join(self.feeds)}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
