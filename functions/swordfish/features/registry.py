"""Every flag the code may evaluate, declared once: who owns it, what kind it is, how long it should live.

The store (AppConfig) holds the *rules*; this registry holds the *intent*. ``swordfish flags stale``
compares the two with the code and with the evaluation counters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class FlagKind(StrEnum):
    RELEASE = "release"  # hides unfinished work; removed once fully rolled out
    EXPERIMENT = "experiment"  # measures something; removed when the experiment ends
    OPERATIONAL = "operational"  # tunes behaviour in production; long-lived
    KILL_SWITCH = "kill-switch"  # turns a behaviour off in an incident; long-lived


FLAG_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
VALUE_TYPES = {
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "string": lambda v: isinstance(v, str),
}


@dataclass(frozen=True)
class FlagDeclaration:
    name: str
    owner: str
    kind: FlagKind
    description: str
    created: date
    lifetime_days: int | None  # None: permanent (operational flags and kill switches)
    value_type: str = "boolean"  # what every value of the flag must be: "boolean", "number" or "string"

    def __post_init__(self) -> None:
        if not FLAG_NAME_PATTERN.match(self.name):
            raise ValueError(f"flag name {self.name!r} must match {FLAG_NAME_PATTERN.pattern}")
        if self.value_type not in VALUE_TYPES:
            raise ValueError(f"value_type must be one of {', '.join(VALUE_TYPES)}")

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is of this flag's declared type (``True`` is not a number here)."""
        return VALUE_TYPES[self.value_type](value)

    @property
    def expires(self) -> date | None:
        return None if self.lifetime_days is None else self.created + timedelta(days=self.lifetime_days)


def detector_flag(detector: str) -> str:
    """The flag that gates an experimental detector (a name in swordfish.analysis.EXPERIMENTAL_DETECTORS)."""
    return f"detector_{detector.lower()}"


# Names the pipeline imports; nothing else spells these strings.
AUTO_QUARANTINE = "auto_quarantine"
DEGRADED_MODE_KILL_SWITCH = "degraded_mode_kill_switch"
CONTENT_MODEL_KILL_SWITCH = "content_model_kill_switch"
# The analysis engine's detector name; a test checks every EXPERIMENTAL_DETECTORS entry is declared here.
DETECTOR_QR_CODE_LURE = detector_flag("QR_CODE_LURE")

DECLARATIONS: dict[str, FlagDeclaration] = {
    d.name: d
    for d in (
        FlagDeclaration(
            name=AUTO_QUARANTINE,
            owner="remediation-team",
            kind=FlagKind.RELEASE,
            description="Quarantine phishing and malware verdicts automatically, per tenant.",
            created=date(2026, 11, 1),
            lifetime_days=120,
        ),
        FlagDeclaration(
            name=DETECTOR_QR_CODE_LURE,
            owner="detection-team",
            kind=FlagKind.EXPERIMENT,
            description="Run the experimental QR-code lure detector (percentage rollout by tenant).",
            created=date(2026, 11, 1),
            lifetime_days=90,
        ),
        FlagDeclaration(
            name=CONTENT_MODEL_KILL_SWITCH,
            owner="detection-team",
            kind=FlagKind.KILL_SWITCH,
            description="When on (for all tenants or some), verdicts are made without the learned content model "
                        "(CONTENT_UNWANTED): the rules alone, should the model misjudge a tenant's mail.",
            created=date(2026, 11, 30),
            lifetime_days=None,
        ),
        FlagDeclaration(
            name=DEGRADED_MODE_KILL_SWITCH,
            owner="platform-team",
            kind=FlagKind.KILL_SWITCH,
            description="When on, the pipeline never enters degraded mode (never sheds optional work).",
            created=date(2026, 11, 1),
            lifetime_days=None,
        ),
    )
}


def declaration(name: str) -> FlagDeclaration | None:
    return DECLARATIONS.get(name)
