"""A tenant's phishing rate jumping: the share of phishing and malware among its verdicts of the
last window (an hour) against its usual share (the week before), checked every few minutes.

It alerts when the window has enough mail to mean something (``min_messages``), its rate is at
least ``min_rate`` and at least ``factor`` times the baseline (a tenant that usually sees none
counts as ``floor``), and the tenant's last such alert is older than ``cooldown``. One query per
tenant, inside its own transaction (row-level security), using the verdicts' commit-time index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from swordfish.alerts.events import PHISHING_RATE, AlertEvent, phishing_rate_jumped
from swordfish.store.database import Database


@dataclass
class PhishingRateMonitor:
    database: Database
    publish: Callable[[list[AlertEvent]], None]
    clock: Callable[[], float] = time.time
    window: timedelta = timedelta(hours=1)
    baseline: timedelta = timedelta(days=7)
    min_messages: int = 20
    min_rate: float = 0.2
    factor: float = 3.0
    floor: float = 0.02
    cooldown: timedelta = timedelta(hours=6)

    def _tenants(self) -> list[str]:
        with self.database.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_directory', 'on', true)")
            return [r[0] for r in conn.execute("SELECT tenant_id FROM tenants WHERE disabled_at IS NULL "
                                               "ORDER BY tenant_id")]

    def check(self) -> list[AlertEvent]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        fired = []
        for tenant_id in self._tenants():
            event = self._check_tenant(tenant_id, now)
            if event is not None:
                fired.append(event)
        return fired

    def _check_tenant(self, tenant_id: str, now: datetime) -> AlertEvent | None:
        window_start, baseline_start = now - self.window, now - self.window - self.baseline
        with self.database.tenant_transaction(tenant_id) as conn:
            total, bad, base_total, base_bad = conn.execute(
                "SELECT count(*) FILTER (WHERE committed_at >= %(w)s), "
                "       count(*) FILTER (WHERE committed_at >= %(w)s AND verdict IN ('phishing', 'malware')), "
                "       count(*) FILTER (WHERE committed_at < %(w)s), "
                "       count(*) FILTER (WHERE committed_at < %(w)s AND verdict IN ('phishing', 'malware')) "
                "FROM verdicts WHERE tenant_id = %(t)s AND committed_at >= %(b)s AND committed_at < %(n)s",
                {"w": window_start, "b": baseline_start, "n": now, "t": tenant_id}).fetchone()
            if total < self.min_messages:
                return None
            rate = bad / total
            baseline_rate = base_bad / base_total if base_total else 0.0
            if rate < self.min_rate or rate < self.factor * max(baseline_rate, self.floor):
                return None
            last = conn.execute("SELECT last_fired_at FROM alert_state WHERE tenant_id = %s AND kind = %s",
                                (tenant_id, PHISHING_RATE)).fetchone()
            if last is not None and now - last[0] < self.cooldown:
                return None
            conn.execute("INSERT INTO alert_state (tenant_id, kind, last_fired_at) VALUES (%s, %s, %s) "
                         "ON CONFLICT (tenant_id, kind) DO UPDATE SET last_fired_at = excluded.last_fired_at",
                         (tenant_id, PHISHING_RATE, now))
            event = phishing_rate_jumped(tenant_id=tenant_id, at=now, window_seconds=self.window.total_seconds(),
                                         window_total=total, window_bad=bad, baseline_rate=baseline_rate)
            # Inside the transaction: an event that could not be queued leaves no cool-down behind.
            self.publish([event])
        return event
