"""Any string mail can carry reaches PostgreSQL storable: through the real store, under RLS."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swordfish.store.database import Database, proxy_connect
from swordfish.store.storable import JSON_STRING_LIMIT, REPLACEMENT, storable_json, storable_text
from swordfish.store.tenants import create_tenant, load_policy
from swordfish.store.verdicts import SUBJECT_LIMIT, VerdictRecord, save_verdicts

# Every code point, lone surrogates and NUL included (hypothesis leaves surrogates out by default).
ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
                   max_size=300)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def store(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        create_tenant(conn, "tenant-h", "Hypothesis", {})
    pool = Database(database.app_url, max_size=1)
    yield pool
    pool.close()


_message_ids = itertools.count()


def _same_json(a, b) -> bool:
    """Equal as JSON documents: jsonb keeps numbers as numeric, so 1e16 may come back as an int."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


def _expected_text(value: str, limit: int) -> str:
    cleaned = "".join(REPLACEMENT if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=ANY_TEXT, sender=ANY_TEXT, evidence=ANY_TEXT, problem=ANY_TEXT, correlation=ANY_TEXT,
       extra=ANY_JSON, weight=st.floats())
def test_any_string_in_any_field_is_stored_and_read_back_made_storable(store, subject, sender, evidence, problem,
                                                                        correlation, extra, weight):
    reasons = [{"name": "ANY", "weight": weight, "evidence": evidence, "extra": extra}]
    message_id = f"m-{next(_message_ids)}"  # the application role cannot delete verdicts: a new one each time
    record = VerdictRecord(tenant_id="tenant-h", message_id=message_id, verdict="clean", score=0.0, reasons=reasons,
                           parse_problems=[problem], subject=subject, sender=sender,
                           submitted_at=datetime.now(UTC), sqs_sent_at=None, correlation_id=correlation)
    with store.connection() as conn, conn.transaction():
        [stored] = save_verdicts(conn, [record])
        row = conn.execute("SELECT subject, sender, reasons, parse_problems, correlation_id FROM verdicts "
                           "WHERE message_id = %s", (message_id,)).fetchone()
    assert stored.inserted
    assert row[0] == _expected_text(subject, SUBJECT_LIMIT)
    assert row[1] == _expected_text(sender, SUBJECT_LIMIT)
    assert row[2][0]["evidence"] == _expected_text(evidence, JSON_STRING_LIMIT)
    assert _same_json(row[2][0]["weight"], weight if math.isfinite(weight) else None)
    assert _same_json(row[2][0]["extra"], storable_json(extra))
    assert row[3] == [_expected_text(problem, JSON_STRING_LIMIT)]
    assert row[4] == _expected_text(correlation, 256)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=st.dictionaries(ANY_TEXT, ANY_JSON, max_size=5))
def test_a_tenant_policy_with_any_content_is_stored(database, store, policy):
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        create_tenant(conn, "tenant-h", "Hypothesis\x00", policy)
    with store.tenant_transaction("tenant-h") as conn:
        assert _same_json(load_policy(conn, "tenant-h"), storable_json(policy))


def test_storable_text_replaces_only_what_postgresql_refuses():
    assert storable_text("invoice\x00.exe") == "invoice\ufffd.exe"
    assert storable_text("a\ud800b") == "a\ufffdb"
    assert storable_text("tab\tnew\nline é 😀") == "tab\tnew\nline é 😀"
    assert storable_text("x" * 10, limit=5) == "xxxx\u2026"
    assert storable_text(None) is None


def test_storable_json_keeps_numbers_and_nulls_out_non_finite_ones():
    assert storable_json({"a": [1, 2.5, float("nan"), float("inf"), True, None], "k\x00": ("t",)}) == \
        {"a": [1, 2.5, None, None, True, None], "k\ufffd": ["t"]}
