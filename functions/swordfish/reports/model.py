"""The period a report covers and the figures in it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import AliasChoices, BaseModel, Field

from swordfish import constants

MAX_DAYS = 366  # one year a page: a longer span is a different report (and a heavier query)
DEFAULT_DAYS = 7
THREAT_KINDS = tuple(k for k in constants.VERDICTS if k != "clean")  # spam, suspicious, phishing, malware


class InvalidPeriod(ValueError):
    """A period that cannot be reported on: the caller answers 400 with this text."""


class ReportPeriod(BaseModel):
    """Whole days in UTC, both ends included."""

    # "from" and "to" in JSON (as the query parameters), start and end in Python ("from" is a keyword)
    start: date = Field(validation_alias=AliasChoices("start", "from"), serialization_alias="from")
    end: date = Field(validation_alias=AliasChoices("end", "to"), serialization_alias="to")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:  # exclusive
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)

    def previous(self) -> ReportPeriod:
        """The period of equal length just before this one (the trend compares against it)."""
        return ReportPeriod(start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))


def parse_period(start: str | date | None, end: str | date | None, *, today: date) -> ReportPeriod:
    """``from``/``to`` as ISO dates (YYYY-MM-DD); missing: the last seven days to ``today``."""

    def day(value, name: str) -> date | None:
        if value is None or value == "":
            return None
        if isinstance(value, date):
            return value
        if not isinstance(value, str) or len(value) != 10:
            raise InvalidPeriod(f"{name} must be a date like 2026-01-31")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidPeriod(f"{name} must be a date like 2026-01-31") from exc

    last = day(end, "to") or today
    first = day(start, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidPeriod("from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidPeriod(f"a report covers at most {MAX_DAYS} days")
    if first.year < 2000 or last > today + timedelta(days=1):
        raise InvalidPeriod("the period must lie between 2000-01-01 and today")
    return ReportPeriod(start=first, end=last)


class DayVolume(BaseModel):
    day: date
    total: int
    threats: int = Field(description="verdicts other than clean")


class KindTrend(BaseModel):
    kind: str = Field(description="a verdict kind: " + ", ".join(THREAT_KINDS))
    count: int
    previous: int = Field(description="the same kind in the previous period of equal length")
    change_percent: float | None = Field(description="(count - previous) / previous; null when previous is 0")


class Ranked(BaseModel):
    name: str
    messages: int


class Remediation(BaseModel):
    quarantined: int = Field(description="messages moved to Junk Email in the period")
    released: int = Field(description="of any period, released by an analyst in this one")
    held: int = Field(description="still in Junk Email at the period's end")


class TenantReport(BaseModel):
    tenant_id: str
    tenant_name: str
    period: ReportPeriod
    previous_period: ReportPeriod
    generated_at: datetime
    total: int = Field(description="verdicts in the period")
    previous_total: int
    threats: int
    volume: list[DayVolume] = Field(description="one entry per day of the period, oldest first")
    kinds: list[KindTrend]
    recipients: list[Ranked] = Field(description="most targeted recipients: messages other than clean")
    brands: list[Ranked] = Field(description="brands impersonated (display name, subject, credential lure)")
    vips: list[Ranked] = Field(description="executives impersonated (the display names that matched a VIP)")
    remediation: Remediation


def change_percent(count: int, previous: int) -> float | None:
    return None if previous == 0 else round(100.0 * (count - previous) / previous, 1)
