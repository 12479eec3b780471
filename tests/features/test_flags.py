"""Feature flags: targeting, rollouts, overrides, fallbacks when the store is down, audit, staleness."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from swordfish.features import audit
from swordfish.features.admin import FlagAdmin, FlagChangeError
from swordfish.features.counters import EvaluationCounter, read_usage
from swordfish.features.evaluator import (
    BUCKETS,
    Configuration,
    ErrorCode,
    FlagSnapshot,
    Reason,
    Source,
    bucket,
)
from swordfish.features.flags import StoreState, load_bundled, override_flags
from swordfish.features.registry import AUTO_QUARANTINE, DECLARATIONS, DETECTOR_QR_CODE_LURE, detector_flag
from swordfish.features.stale import Thresholds, find_stale, referenced_flags
from swordfish.features.store import AgentStoreProvider
from swordfish.store.database import proxy_connect

from devstack.services import free_port

KEYS = [f"tenant-{i}" for i in range(10_000)]


def snapshot_of(document: dict, version: str = "7") -> FlagSnapshot:
    return FlagSnapshot(Configuration.build(document, version, Source.LIVE))


def rollout_doc(name: str, percent_basis_points: int, key: str = "tenant_bucket") -> dict:
    return {
        name: {
            "default": False,
            "rules": {
                "percentage rollout": {
                    "when_match": True,
                    "conditions": [
                        {"action": "KEY_LESS_THAN_VALUE", "key": key, "value": percent_basis_points}
                    ],
                }
            },
        }
    }


def share_on(snapshot: FlagSnapshot, name: str, keys=KEYS) -> set[str]:
    return {k for k in keys if snapshot.evaluate(name, tenant_id=k, default=False).value}


@pytest.fixture()
def admin(flag_store, database):
    return FlagAdmin(flag_store.repository, database.app_url, actor="alice")


# --- targeting ------------------------------------------------------------------------------------
def test_evaluates_for_a_tenant(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    admin.target("auto_quarantine", tenants=["acme", "globex"])
    snapshot = flag_store.client().snapshot()

    on = snapshot.evaluate("auto_quarantine", tenant_id="acme", default=False)
    off = snapshot.evaluate("auto_quarantine", tenant_id="initech", default=False)

    assert (on.value, on.reason, on.variant, on.stale) == (True, Reason.TARGETING_MATCH, "tenants on", False)
    assert (off.value, off.reason, off.variant) == (False, Reason.DEFAULT, "default")
    assert on.version == off.version == snapshot.version == flag_store.repository.deployed_version()


def test_evaluates_for_a_user_and_a_user_exclusion_beats_a_tenant_inclusion(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    admin.target("auto_quarantine", tenants=["acme"])
    admin.target("auto_quarantine", users=["ceo@acme.test"], value=False)
    admin.target("auto_quarantine", users=["bob@initech.test"])
    snapshot = flag_store.client().snapshot()

    assert (
        snapshot.evaluate(AUTO_QUARANTINE, tenant_id="acme", user_id="ceo@acme.test", default=True).value
        is False
    )
    assert (
        snapshot.evaluate(AUTO_QUARANTINE, tenant_id="acme", user_id="cfo@acme.test", default=False).value
        is True
    )
    bob = snapshot.evaluate(AUTO_QUARANTINE, tenant_id="initech", user_id="bob@initech.test", default=False)
    assert (bob.value, bob.variant) == (True, "users on")


def test_targeting_a_tenant_off_removes_it_from_the_on_list(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    admin.target("auto_quarantine", tenants=["acme", "globex"])
    result = admin.target("auto_quarantine", tenants=["acme"], value=False)

    assert result.after["rules"]["tenants on"]["conditions"][0]["value"] == ["globex"]
    assert result.after["rules"]["tenants off"]["conditions"][0]["value"] == ["acme"]


def test_mixes_tenant_targeting_with_a_time_window():
    now = datetime.now(UTC).replace(tzinfo=None)

    def doc(start, end):
        return {
            "trial": {
                "default": False,
                "rules": {
                    "acme during the trial": {
                        "when_match": True,
                        "conditions": [
                            {"action": "KEY_IN_VALUE", "key": "tenant_id", "value": ["acme"]},
                            {
                                "action": "SCHEDULE_BETWEEN_DATETIME_RANGE",
                                "key": "CURRENT_DATETIME",
                                "value": {
                                    "START": start.isoformat(timespec="seconds"),
                                    "END": end.isoformat(timespec="seconds"),
                                    "TIMEZONE": "UTC",
                                },
                            },
                        ],
                    }
                },
            }
        }

    during = snapshot_of(doc(now - timedelta(hours=1), now + timedelta(hours=1)))
    after = snapshot_of(doc(now - timedelta(days=2), now - timedelta(days=1)))

    assert during.evaluate("trial", tenant_id="acme", default=False).reason is Reason.TARGETING_MATCH
    assert during.evaluate("trial", tenant_id="globex", default=False).value is False
    assert after.evaluate("trial", tenant_id="acme", default=False).value is False


# --- percentage rollouts --------------------------------------------------------------------------
@pytest.mark.parametrize("percent_bp", [2000, 1234, 5000])
def test_rollout_share_over_10000_keys_is_within_one_point_of_the_target(percent_bp):
    snapshot = snapshot_of(rollout_doc("detector_x", percent_bp))
    share = len(share_on(snapshot, "detector_x")) / len(KEYS) * 100
    assert abs(share - percent_bp / 100) <= 1.0
    resolution = snapshot.evaluate(
        "detector_x", tenant_id=next(iter(share_on(snapshot, "detector_x"))), default=False
    )
    assert (resolution.reason, resolution.variant) == (Reason.SPLIT, "percentage rollout")


def test_two_flags_at_20_percent_pick_independent_tenants():
    snapshot = snapshot_of({**rollout_doc("flag_a", 2000), **rollout_doc("flag_b", 2000)})
    a, b = share_on(snapshot, "flag_a"), share_on(snapshot, "flag_b")
    overlap = len(a & b) / len(KEYS) * 100
    assert abs(overlap - 4.0) <= 1.0  # 20 % of 20 %: independent, not the same 20 %


def test_raising_a_rollout_keeps_everyone_already_in():
    at_10 = share_on(snapshot_of(rollout_doc("flag_a", 1000)), "flag_a")
    at_20 = share_on(snapshot_of(rollout_doc("flag_a", 2000)), "flag_a")
    assert at_10 < at_20


def test_rollout_granularity_is_a_hundredth_of_a_percent():
    assert {bucket("flag_a", k) for k in KEYS} <= set(range(BUCKETS))
    one_bp = share_on(snapshot_of(rollout_doc("flag_a", 1)), "flag_a")
    assert one_bp == {k for k in KEYS if bucket("flag_a", k) == 0}
    same_bucket = sum(bucket("flag_a", k) == bucket("flag_b", k) for k in KEYS)
    assert same_bucket < 10  # salted by flag name: ~1 in 10 000 keys share a bucket by chance


def test_rollout_by_user_uses_the_user_id(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    admin.rollout("auto_quarantine", 100, by="user")
    snapshot = flag_store.client().snapshot()
    assert snapshot.evaluate(AUTO_QUARANTINE, tenant_id="acme", user_id="u1", default=False).value is True
    assert snapshot.evaluate(AUTO_QUARANTINE, tenant_id="acme", default=False).value is False


def test_a_rollout_percentage_outside_0_to_100_is_refused(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    with pytest.raises(ValueError, match="between 0 and 100"):
        admin.rollout("auto_quarantine", 120)


# --- overrides ------------------------------------------------------------------------------------
def test_override_context_manager_wins_over_the_store(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    client = flag_store.client()
    with override_flags(auto_quarantine=True):
        inside = client.snapshot()
    outside = client.snapshot()

    r = inside.evaluate(AUTO_QUARANTINE, tenant_id="acme", default=False)
    assert (r.value, r.reason) == (True, Reason.OVERRIDE)
    assert inside.version.endswith("+overrides")
    assert outside.evaluate(AUTO_QUARANTINE, tenant_id="acme", default=False).value is False


def test_override_fixture_lasts_for_the_test(flag_store, admin, flag_overrides):
    admin.set_default("auto_quarantine", False)
    flag_overrides(auto_quarantine=True, degraded_mode_kill_switch=True)
    snapshot = flag_store.client().snapshot()
    assert snapshot.evaluate(AUTO_QUARANTINE, default=False).value is True
    assert snapshot.evaluate("degraded_mode_kill_switch", default=False).reason is Reason.OVERRIDE


def test_environment_and_file_overrides_win_over_the_store(flag_store, admin, tmp_path):
    admin.set_default("auto_quarantine", False)
    override_file = tmp_path / "flags.override.json"
    override_file.write_text(json.dumps({"auto_quarantine": True, "detector_qr_code_lure": True}))
    client = flag_store.client(
        env_overrides=json.dumps({"detector_qr_code_lure": False}), overrides_file=override_file
    )

    snapshot = client.snapshot()
    assert snapshot.evaluate(AUTO_QUARANTINE, default=False).value is True  # from the file
    assert (
        snapshot.evaluate(DETECTOR_QR_CODE_LURE, default=True).value is False
    )  # the environment beats the file

    override_file.write_text(json.dumps({"auto_quarantine": False}))
    import os

    os.utime(override_file, (1, 1))  # a different mtime: the file is re-read
    assert client.snapshot().evaluate(AUTO_QUARANTINE, default=True).value is False


# --- store down: each tier ------------------------------------------------------------------------
def test_live_configuration_when_the_store_is_up(flag_store, admin):
    admin.set_default("auto_quarantine", True)
    client = flag_store.client()
    r = client.snapshot().evaluate(AUTO_QUARANTINE, tenant_id="acme", default=False)
    assert (r.value, r.reason, r.stale) == (True, Reason.STATIC, False)
    status = client.store_status()
    assert (status.state, status.warning, status.source) == (StoreState.OK, False, Source.LIVE)


def test_falls_back_to_last_known_good_marked_stale_when_the_store_goes_down(flag_store, admin):
    admin.set_default("auto_quarantine", True)
    client = flag_store.client()
    live_version = client.snapshot().version
    client.store = AgentStoreProvider(f"http://127.0.0.1:{free_port()}", application=flag_store.application)

    r = client.snapshot().evaluate(AUTO_QUARANTINE, tenant_id="acme", default=False)
    assert (r.value, r.reason, r.stale, r.version) == (True, Reason.STALE, True, live_version)
    status = client.store_status()
    assert (status.state, status.warning) == (StoreState.STALE, True)
    assert status.age_seconds is not None and status.age_seconds >= 0 and "unreachable" in status.error


def test_falls_back_to_the_bundled_snapshot_when_nothing_was_ever_loaded(flag_store):
    client = flag_store.client(agent_url=f"http://127.0.0.1:{free_port()}", bundled=load_bundled())
    snapshot = client.snapshot()
    r = snapshot.evaluate(AUTO_QUARANTINE, tenant_id="acme", default=True)
    assert (r.value, r.reason, r.stale) == (False, Reason.CACHED, True)
    assert snapshot.version.startswith("bundled-")
    assert client.store_status().state is StoreState.DOWN


def test_falls_back_to_the_callers_default_without_store_or_bundle(flag_store):
    client = flag_store.client(agent_url=f"http://127.0.0.1:{free_port()}", bundled=None)
    r = client.snapshot().evaluate(AUTO_QUARANTINE, tenant_id="acme", default=True)
    assert (r.value, r.reason, r.error_code) == (True, Reason.ERROR, ErrorCode.PROVIDER_NOT_READY)


def test_an_invalid_configuration_in_the_store_is_treated_as_an_outage(flag_store, admin):
    admin.set_default("auto_quarantine", True)
    client = flag_store.client()
    client.snapshot()
    flag_store.publish({"auto_quarantine": {"default": "yes please"}})  # not a valid boolean flag

    r = client.snapshot().evaluate(AUTO_QUARANTINE, default=False)
    assert (r.value, r.reason) == (True, Reason.STALE)
    assert "default" in client.store_status().error


def test_evaluation_never_raises_and_says_why_it_used_the_default():
    snapshot = snapshot_of({"limit": {"default": 5, "boolean_type": False}, "on": {"default": True}})
    missing = snapshot.evaluate("nope", default=False)
    mismatch = snapshot.evaluate("limit", default=False)
    odd_context = snapshot.evaluate("on", tenant_id=None, default=False, context={"weird": object()})
    assert (missing.value, missing.error_code) == (False, ErrorCode.FLAG_NOT_FOUND)
    assert (mismatch.value, mismatch.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    assert snapshot.evaluate("limit", default=1).value == 5
    assert odd_context.value is True


# --- one snapshot per email -----------------------------------------------------------------------
def test_a_snapshot_keeps_its_version_while_the_store_changes(flag_store, admin):
    admin.set_default("auto_quarantine", False)
    client = flag_store.client()
    before = client.snapshot()
    admin.set_default("auto_quarantine", True)
    after = client.snapshot()

    assert before.evaluate(AUTO_QUARANTINE, default=True).value is False
    assert after.evaluate(AUTO_QUARANTINE, default=False).value is True
    assert int(after.version) == int(before.version) + 1
    with pytest.raises(AttributeError):
        before.version = "other"


# --- audit ----------------------------------------------------------------------------------------
def test_audit_logs_every_change_with_who_when_before_after_and_version(flag_store, admin, database):
    started = datetime.now(UTC)
    created = admin.set_default("auto_quarantine", False, reason="ticket 12")
    targeted = admin.target("auto_quarantine", tenants=["acme"])
    rolled = admin.rollout("auto_quarantine", 12.5)
    back = admin.rollback("auto_quarantine")

    with proxy_connect(database.app_url) as conn:
        rows = [r for r in audit.history(conn, flag_store.repository.key, "auto_quarantine")]
    rows.reverse()
    assert [r.action for r in rows] == ["create", "target", "rollout", "rollback"]
    assert all(r.actor == "alice" and r.changed_at >= started and r.source == "cli" for r in rows)
    assert rows[0].before is None and rows[0].after == {"default": False} and rows[0].reason == "ticket 12"
    assert rows[2].after["rules"]["percentage rollout"]["conditions"][0]["value"] == 1250
    assert rows[3].after == rows[2].before  # the rollback restored the state before the rollout
    assert [r.config_version for r in rows] == [
        created.version,
        targeted.version,
        rolled.version,
        back.version,
    ]
    assert rows[1].previous_version == created.version
    assert flag_store.repository.deployed().document["auto_quarantine"] == targeted.after


def test_the_application_role_cannot_update_or_delete_the_audit_log(flag_store, admin, database):
    admin.set_default("auto_quarantine", False)
    with proxy_connect(database.app_url, autocommit=True) as conn:
        for statement in (
            "UPDATE flag_audit SET actor = 'mallory'",
            "DELETE FROM flag_audit",
            "TRUNCATE flag_audit",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM flag_audit WHERE actor = 'alice'").fetchone()[0] >= 1


def test_even_the_owner_cannot_update_delete_or_truncate_the_audit_log(flag_store, admin, database):
    admin.set_default("auto_quarantine", False)
    with proxy_connect(database.owner_url, autocommit=True) as conn:
        for statement in (
            "UPDATE flag_audit SET actor = 'mallory'",
            "DELETE FROM flag_audit",
            "TRUNCATE flag_audit",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_a_refused_change_leaves_no_audit_row_and_no_new_version(flag_store, admin, database):
    # An undeclared flag: a declared boolean one cannot take this value at all (issue 26).
    admin.set_default("report_mode", {"mode": "report-only"}, create=True)
    version = flag_store.repository.deployed_version()
    with pytest.raises(FlagChangeError, match="not boolean"):
        admin.rollout("report_mode", 10)
    with pytest.raises(FlagChangeError, match="not defined"):
        admin.target("never_created", tenants=["acme"])

    assert flag_store.repository.deployed_version() == version
    with proxy_connect(database.app_url) as conn:
        actions = [r.action for r in audit.history(conn, flag_store.repository.key)]
    assert actions == ["create"]


def test_a_failed_deployment_rolls_back_its_audit_row(flag_store, database):
    class BrokenDeploys(type(flag_store.repository)):
        def deploy(self, version, description=""):
            raise RuntimeError("deployment refused")

    repo = BrokenDeploys(flag_store.agent.moto_url, application=flag_store.application)
    with pytest.raises(RuntimeError, match="deployment refused"):
        FlagAdmin(repo, database.app_url, actor="alice").set_default("auto_quarantine", True)
    with proxy_connect(database.app_url) as conn:
        assert audit.history(conn, repo.key) == []


def test_evaluations_are_counted_in_redis(flag_store, admin, redis_url):
    admin.set_default("auto_quarantine", False)
    admin.target("auto_quarantine", tenants=["acme"])
    counter = EvaluationCounter.from_url(redis_url, 0.5, flush_seconds=3600)
    client = flag_store.client(counter=counter)
    snapshot = client.snapshot()
    for tenant in ("acme", "globex", "initech"):
        snapshot.evaluate(AUTO_QUARANTINE, tenant_id=tenant, default=False)
    client.flush()

    usage = read_usage(counter.client)[AUTO_QUARANTINE]
    assert (usage.count, usage.values) == (3, {"true": 1, "false": 2})
    assert datetime.now(UTC) - usage.last_evaluated < timedelta(minutes=1)


# --- stale flags ----------------------------------------------------------------------------------
def test_detects_stale_flags(tmp_path, redis_url):
    code = tmp_path / "code"
    code.mkdir()
    (code / "pipeline.py").write_text(
        "from swordfish.features.registry import AUTO_QUARANTINE\n"
        "def f(snapshot):\n"
        "    snapshot.evaluate(AUTO_QUARANTINE, tenant_id='t', default=False)\n"
        "    snapshot.evaluate('ghost_flag', default=False)\n"
        "    snapshot.is_on('old_release', tenant_id='t')\n"
    )
    references = referenced_flags(code, exclude=None, experimental_detectors=frozenset({"QR_CODE_LURE"}))
    now = datetime.now(UTC)
    document = {
        AUTO_QUARANTINE: {
            "default": False,
            "rules": {
                "tenants on": {
                    "when_match": True,
                    "conditions": [{"action": "KEY_IN_VALUE", "key": "tenant_id", "value": ["acme"]}],
                }
            },
        },
        DETECTOR_QR_CODE_LURE: rollout_doc(DETECTOR_QR_CODE_LURE, 10_000)[
            DETECTOR_QR_CODE_LURE
        ],  # 100 %: fully on
        "old_release": {"default": True},
        "forgotten": {"default": False},
        "degraded_mode_kill_switch": {"default": False},
    }
    counter = EvaluationCounter.from_url(redis_url, 0.5, 0)
    counter.record(AUTO_QUARANTINE, True)
    counter.record(AUTO_QUARANTINE, False)
    counter.record(DETECTOR_QR_CODE_LURE, True)
    counter.flush()
    usage = read_usage(counter.client)
    last_changes = {
        DETECTOR_QR_CODE_LURE: now - timedelta(days=45),
        "old_release": now - timedelta(days=90),
        "forgotten": now - timedelta(days=90),
    }

    stale = {
        s.name: s
        for s in find_stale(
            document,
            references,
            usage=usage,
            last_changes=last_changes,
            now=now,
            thresholds=Thresholds(constant_days=30, unused_days=30),
        )
    }

    assert usage[AUTO_QUARANTINE].count == 2 and usage[AUTO_QUARANTINE].values == {"true": 1, "false": 1}
    assert AUTO_QUARANTINE not in stale  # referenced, targeted, evaluated, within its lifetime
    assert any("fully on since" in r for r in stale[DETECTOR_QR_CODE_LURE].reasons)
    assert any("fully on" in r for r in stale["old_release"].reasons)
    assert any("never evaluated" in r for r in stale["old_release"].reasons)
    assert any("referenced in the code" in r for r in stale["ghost_flag"].reasons)
    assert any("never referenced" in r for r in stale["forgotten"].reasons)
    assert any("not declared" in r for r in stale["forgotten"].reasons)
    assert (
        stale["forgotten"].removable
        and not stale["old_release"].removable
        and not stale["ghost_flag"].removable
    )
    assert any("never referenced" in r for r in stale["degraded_mode_kill_switch"].reasons)
    assert not any(
        "fully off" in r for r in stale["degraded_mode_kill_switch"].reasons
    )  # kill switches may idle


def test_detects_flags_past_their_expected_lifetime():
    decl = DECLARATIONS[DETECTOR_QR_CODE_LURE]
    later = datetime.combine(decl.expires + timedelta(days=1), datetime.min.time(), UTC)
    stale = find_stale(
        {DETECTOR_QR_CODE_LURE: {"default": False}},
        {DETECTOR_QR_CODE_LURE: ["x.py:1"]},
        usage=None,
        last_changes={DETECTOR_QR_CODE_LURE: later},
        now=later,
    )
    assert any("past its expected lifetime" in r for r in stale[0].reasons)


def test_every_experimental_detector_has_a_declared_flag_found_by_the_scan():
    from swordfish.analysis import EXPERIMENTAL_DETECTORS

    flags = {detector_flag(d) for d in EXPERIMENTAL_DETECTORS}
    assert flags <= set(DECLARATIONS)
    assert flags <= set(referenced_flags())


def test_the_real_flags_are_declared_bundled_and_off_by_default():
    document, version = load_bundled()
    assert set(document) == set(DECLARATIONS)
    snapshot = FlagSnapshot(Configuration.build(document, version, Source.BUNDLED))
    for name in DECLARATIONS:
        assert snapshot.evaluate(name, tenant_id="acme", default=None).value is False


def test_the_test_suite_reset_can_still_empty_the_audit_log(flag_store, admin, database):
    admin.set_default("auto_quarantine", False)
    database.reset()  # a superuser TRUNCATE: the only way to empty the table
    with proxy_connect(database.app_url) as conn:
        assert conn.execute("SELECT count(*) FROM flag_audit").fetchone()[0] == 0
