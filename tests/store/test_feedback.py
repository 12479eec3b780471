"""Analyst feedback: stored per tenant under row-level security, append-only, feeding the tenant's
allow and block lists and exported as labelled training rows."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from swordfish.analysis import TenantPolicy
from swordfish.store.database import Database, proxy_connect
from swordfish.store.feedback import (
    VerdictNotFound,
    export_examples,
    feedback_lists,
    list_feedback,
    record_feedback,
)
from swordfish.store.tenants import create_tenant, load_policy
from swordfish.store.verdicts import VerdictRecord, save_verdicts


def verdict(tenant: str, message_id: str, sender: str, verdict: str = "clean") -> VerdictRecord:
    reasons = [{"name": "CREDENTIAL_PHISH_LANGUAGE", "weight": 4.5, "evidence": "verify account", "value": 2.0},
               {"name": "ALLOWLISTED", "weight": -6.0, "evidence": "x", "value": 1.0}]
    return VerdictRecord(tenant_id=tenant, message_id=message_id, verdict=verdict, score=1.5, reasons=reasons,
                         parse_problems=[], subject="s", sender=sender, submitted_at=datetime.now(UTC),
                         sqs_sent_at=datetime.now(UTC))


@pytest.fixture()
def store(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant in ("tenant-a", "tenant-b"):
            with conn.transaction():
                create_tenant(conn, tenant, tenant.upper(), {"block_list": ["old@bad.example"]})
    pool = Database(database.app_url, max_size=1)
    with pool.connection() as conn, conn.transaction():
        save_verdicts(conn, [verdict("tenant-a", "a1", "Mallory@Evil.example"),
                             verdict("tenant-a", "a2", "friend@partner.example", "spam"),
                             verdict("tenant-b", "b1", "someone@b.example")])
    yield pool
    pool.close()


def test_feedback_is_stored_with_the_verdict_it_judged_and_its_signal_values(store):
    with store.tenant_transaction("tenant-a") as conn:
        row = record_feedback(conn, "tenant-a", "a1", "phishing", "ana@msp.example", "credential lure")
    assert (row["label"], row["analyst"], row["verdict"], row["list_entry"]) == \
        ("phishing", "ana@msp.example", "clean", "mallory@evil.example")
    # the tenant's own list reason is not a property of the message: it is not training data
    assert row["signals"] == {"CREDENTIAL_PHISH_LANGUAGE": 2.0}


def test_feedback_on_an_unknown_or_foreign_message_is_refused(store):
    with pytest.raises(VerdictNotFound):
        with store.tenant_transaction("tenant-a") as conn:
            record_feedback(conn, "tenant-a", "b1", "phishing", "ana")  # tenant-b's message
    with pytest.raises(ValueError, match="label"):
        with store.tenant_transaction("tenant-a") as conn:
            record_feedback(conn, "tenant-a", "a1", "spam", "ana")


def test_a_tenant_sees_only_its_own_feedback(store):
    with store.tenant_transaction("tenant-a") as conn:
        record_feedback(conn, "tenant-a", "a1", "phishing", "ana")
    with store.tenant_transaction("tenant-b") as conn:
        assert list_feedback(conn, "tenant-b") == []
        assert conn.execute("SELECT count(*) FROM verdict_feedback").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with store.tenant_transaction("tenant-b") as conn:
            conn.execute("INSERT INTO verdict_feedback (tenant_id, message_id, label, analyst, verdict, score) "
                         "VALUES ('tenant-a', 'a1', 'legitimate', 'forger', 'clean', 0)")


def test_feedback_is_append_only(store):
    with store.tenant_transaction("tenant-a") as conn:
        record_feedback(conn, "tenant-a", "a1", "phishing", "ana")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with store.tenant_transaction("tenant-a") as conn:
            conn.execute("UPDATE verdict_feedback SET label = 'legitimate'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with store.tenant_transaction("tenant-a") as conn:
            conn.execute("DELETE FROM verdict_feedback")


def test_feedback_feeds_the_tenant_lists_latest_judgement_first(store):
    with store.tenant_transaction("tenant-a") as conn:
        record_feedback(conn, "tenant-a", "a1", "legitimate", "bob")
        record_feedback(conn, "tenant-a", "a1", "phishing", "ana", "second look: it is a lure")
        record_feedback(conn, "tenant-a", "a2", "legitimate", "ana")
    with store.tenant_transaction("tenant-a") as conn:
        assert feedback_lists(conn, "tenant-a") == (["friend@partner.example"], ["mallory@evil.example"])
        policy = TenantPolicy.model_validate(load_policy(conn, "tenant-a"))
    assert "mallory@evil.example" in policy.block_set and "old@bad.example" in policy.block_set
    assert "friend@partner.example" in policy.allow_set
    with store.tenant_transaction("tenant-b") as conn:
        assert TenantPolicy.model_validate(load_policy(conn, "tenant-b")).allow_set == frozenset()


def test_feedback_exports_as_training_rows(store):
    with store.tenant_transaction("tenant-a") as conn:
        record_feedback(conn, "tenant-a", "a1", "legitimate", "bob")
        record_feedback(conn, "tenant-a", "a1", "phishing", "ana")
        record_feedback(conn, "tenant-a", "a2", "legitimate", "ana")
        rows = export_examples(conn, "tenant-a")
    assert [(r["label"], r["set"]) for r in rows] == [("phishing", "feedback-tenant-a"), ("legit", "feedback-tenant-a")]
    assert rows[0]["signals"] == {"CREDENTIAL_PHISH_LANGUAGE": 2.0}
