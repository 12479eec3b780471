"""A tenant's report from SQL aggregates under row-level security (store/reports.py): every figure
of a known fortnight, nothing of another tenant, and a period checked before any query."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from swordfish.reports.model import InvalidPeriod, parse_period
from swordfish.store.reports import tenant_report

from tests.reports.conftest import HOSTILE_RECIPIENT, HOSTILE_TENANT_NAME, HOSTILE_VIP, PERIOD

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_every_figure_of_the_week_and_its_trend(report_db):
    report = tenant_report(report_db, "acme-corp", parse_period(*PERIOD, today=NOW.date()), now=NOW)
    assert report.tenant_name == HOSTILE_TENANT_NAME
    assert (report.total, report.previous_total, report.threats) == (16, 7, 6)
    assert [(v.day.isoformat(), v.total, v.threats) for v in report.volume] == [
        ("2026-11-23", 3, 1), ("2026-11-24", 2, 0), ("2026-11-25", 4, 2), ("2026-11-26", 1, 0),
        ("2026-11-27", 2, 1), ("2026-11-28", 2, 1), ("2026-11-29", 2, 1)]
    assert {k.kind: (k.count, k.previous, k.change_percent) for k in report.kinds} == {
        "phishing": (3, 2, 50.0), "spam": (2, 4, -50.0), "suspicious": (0, 1, -100.0), "malware": (1, 0, None)}
    assert [(r.name, r.messages) for r in report.recipients] == [
        ("pat@acme.example", 3), ("cfo@acme.example", 2), (HOSTILE_RECIPIENT, 1), ("ops@acme.example", 1)]
    assert [(b.name, b.messages) for b in report.brands] == [("paypal", 2), ("microsoft", 1)]
    assert [(v.name, v.messages) for v in report.vips] == [(HOSTILE_VIP, 1), ("Jane Boss", 1)]
    assert report.remediation.model_dump() == {"quarantined": 2, "released": 2, "held": 1}
    assert report.previous_period.start == date(2026, 11, 16) and report.previous_period.end == date(2026, 11, 22)


def test_another_tenants_mail_is_never_counted(report_db):
    report = tenant_report(report_db, "globex", parse_period(*PERIOD, today=NOW.date()), now=NOW)
    assert (report.total, report.threats) == (5, 5)
    assert [b.name for b in report.brands] == ["globexbank"] and [v.name for v in report.vips] == ["Hank"]
    assert [r.name for r in report.recipients] == ["gus@globex.example"]
    assert report.remediation.quarantined == 1
    # a tenant the caller names but that does not exist: empty, not someone else's
    ghost = tenant_report(report_db, "initech", parse_period(*PERIOD, today=NOW.date()), now=NOW)
    assert ghost is None


def test_one_day_period_and_an_empty_one(report_db):
    day = tenant_report(report_db, "acme-corp", parse_period("2026-11-25", "2026-11-25", today=NOW.date()), now=NOW)
    assert (day.total, day.threats, len(day.volume)) == (4, 2, 1)
    assert day.previous_period.start == day.previous_period.end == date(2026, 11, 24)
    empty = tenant_report(report_db, "acme-corp", parse_period("2020-01-01", "2020-01-31", today=NOW.date()),
                          now=NOW)
    assert (empty.total, empty.recipients, empty.brands, len(empty.volume)) == (0, [], [], 31)
    assert all(k.change_percent is None for k in empty.kinds)


@pytest.mark.parametrize("start,end,problem", [
    ("2026-11-30", "2026-11-01", "from must not be after to"),
    ("2024-01-01", "2026-01-01", "at most 366 days"),
    ("yesterday", None, "from must be a date"),
    ("2026-13-01", None, "from must be a date"),
    ("2026-11-01\x00", None, "from must be a date"),
    (None, "2099-01-01", "between 2000-01-01 and today"),
    ("1999-12-31", "2000-01-02", "between 2000-01-01 and today"),
])
def test_a_period_that_means_nothing_is_refused(start, end, problem):
    with pytest.raises(InvalidPeriod, match=problem):
        parse_period(start, end, today=NOW.date())


def test_the_default_period_is_the_last_seven_days():
    period = parse_period(None, None, today=NOW.date())
    assert (period.start, period.end, period.days) == (NOW.date() - timedelta(days=6), NOW.date(), 7)


def test_names_are_read_whole_from_the_evidence_whatever_they_hold(report_db, database):
    """A display name with quotes, or with the very words around it; a brand credential lure; evidence
    cut at 300 characters in the middle of a name is left out rather than misread."""
    from tests.reports.conftest import Mail, at, seed_mail, vip_reason

    day = date(2026, 10, 5)
    lure = {"name": "BRAND_CREDENTIAL_LURE", "weight": 2.0, "value": 1.0,
            "evidence": "names docusign and asks for credentials, mail is from evil.example"}
    cut = {"name": "VIP_IMPERSONATION", "weight": 5.0, "value": 1.0,
           "evidence": ("display name 'Jane " + "x" * 400)[:300]}
    seed_mail(database, [
        Mail("globex", "odd-1", at(day), "phishing", (vip_reason("Pat O'Neil"), lure)),
        Mail("globex", "odd-2", at(day), "phishing", (vip_reason("Boss from outside domain x.example 'CEO'"), cut)),
    ])
    report = tenant_report(report_db, "globex", parse_period(day, day, today=NOW.date()), now=NOW)
    assert [(v.name, v.messages) for v in report.vips] == [
        ("Boss from outside domain x.example 'CEO'", 1), ("Pat O'Neil", 1)]
    assert [(b.name, b.messages) for b in report.brands] == [("docusign", 1)]
