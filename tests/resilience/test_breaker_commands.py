"""`swordfish breakers`: list, force open/closed with an audit trail."""

from __future__ import annotations

import json

import pytest
from swordfish.cli import main
from swordfish.resilience import circuit_breaker


@pytest.fixture()
def cli(breaker_settings):
    breaker_settings(breaker_recovery_timeout_seconds=30)
    circuit_breaker.reset_registry()
    yield main
    circuit_breaker.reset_registry()


def emf_free(out: str) -> list[str]:
    return [line for line in out.splitlines() if '"_aws"' not in line]


def test_forcing_a_breaker_open_shows_in_the_list_and_the_audit(cli, capsys, clock):
    assert cli(["breakers", "open", "nango_fetch", "--reason", "INC-7 Nango outage", "--actor", "alice"]) == 0
    assert "nango_fetch: CLOSED -> OPEN (forced) by alice" in capsys.readouterr().out
    assert cli(["breakers", "list", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, emf_free(capsys.readouterr().out))}
    assert (rows["nango_fetch"]["state"], rows["nango_fetch"]["forced_by"]) == ("OPEN", "alice")
    assert rows["feed_urlhaus"]["state"] == "CLOSED"
    clock.advance(60)  # the audit is in time order; on the frozen clock both would share one instant
    assert cli(["breakers", "close", "nango_fetch", "--reason", "recovered", "--actor", "bob"]) == 0
    capsys.readouterr()
    assert cli(["breakers", "audit", "nango_fetch"]) == 0
    audit = [json.loads(line) for line in emf_free(capsys.readouterr().out)]
    assert [(a["action"], a["actor"], a["reason"]) for a in audit] == [
        ("force_open", "alice", "INC-7 Nango outage"), ("force_close", "bob", "recovered")]


def test_the_table_lists_every_breaker_with_its_fallback(cli, capsys):
    assert cli(["breakers"]) == 0
    out = capsys.readouterr().out
    for name in circuit_breaker.BREAKERS:
        assert name in out
    assert "fail-closed" in out and "fail-open" in out


def test_an_unknown_breaker_is_a_clear_error(cli, capsys):
    assert cli(["breakers", "open", "nango", "--reason", "x"]) == 2
    assert "unknown circuit breaker 'nango'; known: nango_fetch" in capsys.readouterr().err
