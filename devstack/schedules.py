"""What EventBridge runs on a schedule on AWS, run by `make serve` on a thread: the phishing-rate
check and the SIEM export (every minute here, every five on AWS). Stopped with the stack."""

from __future__ import annotations

import threading

from swordfish.monitoring.observability import logger


class Schedules:
    def __init__(self, every_seconds: float = 60.0):
        self.every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    def start(self) -> Schedules:
        self._thread.start()
        return self

    def run_once(self) -> dict:
        from swordfish import wiring

        done = {}
        for name, job in (("phishing_rate_check", lambda: [e.event_id for e in wiring.rate_monitor().check()]),
                          ("siem_export", lambda: wiring.siem_exporter().run())):
            try:
                done[name] = job()
            except Exception as exc:  # one job's trouble is not the other's, nor the stack's
                logger.warning("scheduled job failed", extra={"job": name, "error": str(exc)[:500]})
                done[name] = f"failed: {exc}"
        return done

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
