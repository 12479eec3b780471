"""A separate worker process for the two-process breaker tests (settings come from the environment).

    python breaker_worker.py once NAME          one call; prints {"result": "called" | "fallback"}
    python breaker_worker.py probe NAME DIR     prints ready, waits for "go" on stdin, calls for 1 s,
                                                records each real call in DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from swordfish.resilience.circuit_breaker import BreakerRegistry, BreakerSpec


def main() -> None:
    mode, name = sys.argv[1], sys.argv[2]
    registry = BreakerRegistry()
    registry.register(BreakerSpec(name, "a test dependency"))

    def fallback(*_args, circuit):
        return "fallback"

    if mode == "once":
        print(json.dumps({"result": registry.call(name, lambda: "called", fallback=fallback)}))
        return

    folder = Path(sys.argv[3])
    # A barrier over the pipes, so both workers start probing together: say ready, block until told.
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go signal (stdin closed)")

    def probe():
        start = time.time()
        time.sleep(0.05)
        with open(folder / "probes.log", "a") as log:
            log.write(f"{os.getpid()} {start} {time.time()}\n")
        return "called"

    results = {"called": 0, "fallback": 0}
    stop = time.monotonic() + 1.0
    while time.monotonic() < stop:
        results[registry.call(name, probe, fallback=fallback)] += 1
        time.sleep(0.01)
    print(json.dumps({"pid": os.getpid(), **results}))


if __name__ == "__main__":
    main()
