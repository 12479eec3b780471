"""Feature flags on AppConfig: per-tenant / per-user targeting, percentage rollouts, audited, never down.

The pipeline takes one snapshot per email or batch and stamps ``snapshot.version`` on the verdict:

    from swordfish.features import flags_client, AUTO_QUARANTINE
    snapshot = flags_client().snapshot()
    if snapshot.evaluate(AUTO_QUARANTINE, tenant_id=tenant_id, default=False).value: ...
"""

from swordfish.features.evaluator import ErrorCode, FlagSnapshot, Reason, Resolution, Source, bucket
from swordfish.features.flags import (
    FlagsClient,
    StoreState,
    StoreStatus,
    flags_client,
    override_flags,
    reset_flags_client,
    store_status,
)
from swordfish.features.registry import (
    AUTO_QUARANTINE,
    CONTENT_MODEL_KILL_SWITCH,
    DEGRADED_MODE_KILL_SWITCH,
    DETECTOR_QR_CODE_LURE,
    detector_flag,
)

__all__ = [
    "AUTO_QUARANTINE",
    "CONTENT_MODEL_KILL_SWITCH",
    "DEGRADED_MODE_KILL_SWITCH",
    "DETECTOR_QR_CODE_LURE",
    "ErrorCode",
    "FlagSnapshot",
    "FlagsClient",
    "Reason",
    "Resolution",
    "Source",
    "StoreState",
    "StoreStatus",
    "bucket",
    "detector_flag",
    "flags_client",
    "override_flags",
    "reset_flags_client",
    "store_status",
]
