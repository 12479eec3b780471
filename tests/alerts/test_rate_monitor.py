"""A tenant's phishing rate jumping: measured against its own week, on the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from swordfish.alerts.rate_monitor import PhishingRateMonitor

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


def seed(database, tenant: str, verdicts: list[tuple[str, timedelta]]) -> None:
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        for i, (verdict, ago) in enumerate(verdicts):
            at = NOW - ago
            conn.execute("INSERT INTO verdicts (tenant_id, message_id, verdict, score, submitted_at, committed_at) "
                         "VALUES (%s, %s, %s, 1.0, %s, %s)", (tenant, f"{tenant}-{i}-{ago.total_seconds()}", verdict,
                                                               at, at))


def monitor(alert_db, clock, published):
    return PhishingRateMonitor(alert_db, published.extend, clock=clock)


def test_a_jump_against_the_tenants_own_week_alerts_once(database, alert_db, clock):
    clock.now = NOW.timestamp()
    # acme: a 5 % week, then 12 of 30 in the last hour. globex: always 40 % (its normal: no alert).
    week = [("phishing" if i % 20 == 0 else "clean", timedelta(hours=2 + i)) for i in range(100)]
    seed(database, "acme-corp", week + [("phishing" if i < 12 else "clean", timedelta(minutes=i + 1)) for i in range(30)])
    seed(database, "globex", [("phishing" if i % 5 < 2 else "clean", timedelta(hours=2 + i)) for i in range(100)]
         + [("phishing" if i % 5 < 2 else "clean", timedelta(minutes=i + 1)) for i in range(30)])
    published = []
    fired = monitor(alert_db, clock, published).check()
    assert [e.tenant_ids for e in fired] == [("acme-corp",)] and published == fired
    details = fired[0].details
    assert details["window_total"] == 30 and details["window_phishing_or_malware"] == 12
    assert details["baseline_rate"] == 0.05
    # Still high ten minutes later: the cool-down holds it back.
    clock.advance(600)
    assert monitor(alert_db, clock, published).check() == []
    # Past the cool-down, still jumping: once more.
    clock.now = (NOW + timedelta(hours=6, minutes=1)).timestamp()
    seed(database, "acme-corp", [("malware", timedelta(hours=-6, minutes=i)) for i in range(25)])
    assert [e.kind for e in monitor(alert_db, clock, published).check()] == ["phishing_rate"]


def test_too_little_mail_is_no_signal(database, alert_db, clock):
    clock.now = NOW.timestamp()
    seed(database, "acme-corp", [("phishing", timedelta(minutes=i + 1)) for i in range(19)])
    assert monitor(alert_db, clock, []).check() == []


def test_a_failed_publish_leaves_no_cool_down(database, alert_db, clock):
    clock.now = NOW.timestamp()
    seed(database, "acme-corp", [("phishing", timedelta(minutes=i + 1)) for i in range(25)])

    def broken(events):
        raise RuntimeError("queue down")

    try:
        PhishingRateMonitor(alert_db, broken, clock=clock).check()
    except RuntimeError:
        pass
    assert len(monitor(alert_db, clock, []).check()) == 1
