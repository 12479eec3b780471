"""Tenant administration without silent changes: create refuses an existing id, update keeps what it
is not told to change and says what it changed, disable stops keys and mail, every change audited
with the operator's identity; keys keep their expiry policy through rotation and record their use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import psycopg.rows
import pytest
from swordfish.cli import main
from swordfish.config import get_settings
from swordfish.store.database import Database, proxy_connect, set_tenant
from swordfish.store.feedback import feedback_entries, feedback_lists, record_feedback, remove_feedback_entry
from swordfish.store.tenants import (
    TenantDisabled,
    TenantExists,
    authenticate_api_key,
    create_api_key,
    create_tenant,
    list_api_keys,
    load_policy,
    rotate_api_key,
)
from swordfish.store.verdicts import VerdictRecord, save_verdicts


@pytest.fixture()
def owner(database, settings_env):
    database.reset()
    settings_env(operator="olivia@msp.example", admin_database_url=database.owner_url)
    return database.owner_url


def audit_rows(superuser_url: str, action_prefix: str = "") -> list[dict]:
    with psycopg.connect(superuser_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM console_audit WHERE action LIKE %s ORDER BY audit_id",
                            (action_prefix + "%",)).fetchall()


def policy_of(owner_url: str, tenant_id: str) -> dict:
    with proxy_connect(owner_url) as conn, conn.transaction():
        set_tenant(conn, tenant_id)
        return conn.execute("SELECT policy FROM tenant_policies WHERE tenant_id = %s", (tenant_id,)).fetchone()[0]


def write_policy(tmp_path, document: dict):
    path = tmp_path / f"policy-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(document))
    return str(path)


# --- create, update, list, show, disable ---------------------------------------------------------


def test_create_refuses_an_existing_tenant_and_keeps_its_policy_and_name(owner, database, tmp_path, capsys):
    policy = write_policy(tmp_path, {"domains": ["acme.example"], "block_list": ["bad@evil.example"]})
    assert main(["tenants", "create", "acme", "--name", "Acme Ltd", "--policy", policy]) == 0
    assert main(["tenants", "create", "acme"]) == 1
    err = capsys.readouterr().err
    assert "acme exists" in err and "tenants update" in err
    with proxy_connect(owner) as conn, pytest.raises(TenantExists):
        create_tenant(conn, "acme", "x", {})
    stored = policy_of(owner, "acme")
    assert stored["domains"] == ["acme.example"] and stored["block_list"] == ["bad@evil.example"]
    [row] = audit_rows(database.superuser_url, "tenant.")
    assert (row["actor"], row["actor_role"], row["action"], row["tenant_id"]) == \
        ("olivia@msp.example", "cli", "tenant.create", "acme")


def test_update_changes_only_what_it_names_says_what_changed_and_is_audited(owner, database, tmp_path, capsys):
    assert main(["tenants", "create", "acme", "--name", "Acme Ltd", "--policy",
                 write_policy(tmp_path, {"domains": ["acme.example"], "vip_names": ["Jane Roe"]})]) == 0
    capsys.readouterr()
    assert main(["tenants", "update", "acme", "--policy", write_policy(tmp_path, {"allow_list": ["partner.example"]})]) == 0
    out = capsys.readouterr().out
    assert "allow_list" in out and "partner.example" in out
    stored = policy_of(owner, "acme")
    assert stored["domains"] == ["acme.example"] and stored["vip_names"] == ["Jane Roe"]
    assert stored["allow_list"] == ["partner.example"]
    assert main(["tenants", "update", "acme", "--name", "Acme Group"]) == 0
    rows = audit_rows(database.superuser_url, "tenant.update")
    assert [r["actor"] for r in rows] == ["olivia@msp.example"] * 2
    assert rows[0]["before"]["allow_list"] == [] and rows[0]["after"]["allow_list"] == ["partner.example"]
    assert (rows[1]["before"], rows[1]["after"]) == ({"name": "Acme Ltd"}, {"name": "Acme Group"})
    assert main(["tenants", "update", "nobody-here", "--name", "x"]) == 1


def test_entries_that_can_never_match_are_refused_by_name_and_nothing_is_stored(owner, tmp_path, capsys):
    assert main(["tenants", "create", "acme"]) == 0
    capsys.readouterr()
    bad = write_policy(tmp_path, {"block_list": ["*@evil.example", "https://evil.example/x", "ok@evil.example"]})
    assert main(["tenants", "update", "acme", "--policy", bad]) == 2
    err = capsys.readouterr().err
    assert "*@evil.example: wildcards" in err and "https://evil.example/x: a URL" in err
    assert policy_of(owner, "acme")["block_list"] == []
    assert main(["tenants", "create", "other", "--policy", bad]) == 2
    assert main(["tenants", "show", "other"]) == 1  # not created


def test_invalid_policy_and_tenant_id_are_one_line_errors(owner, tmp_path, capsys):
    assert main(["tenants", "create", "Bad_ID"]) == 2
    assert main(["tenants", "create", "acme", "--policy", write_policy(tmp_path, {"thresholds": {"spam": "high"}})]) == 2
    assert main(["tenants", "create", "acme", "--policy", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_list_and_show(owner, tmp_path, capsys):
    assert main(["tenants", "create", "acme", "--name", "Acme Ltd"]) == 0
    assert main(["tenants", "create", "globex"]) == 0
    assert main(["tenants", "disable", "globex", "--reason", "contract ended"]) == 0
    capsys.readouterr()
    assert main(["tenants", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("acme") and "active" in line and "Acme Ltd" in line for line in lines)
    assert any(line.startswith("globex") and "disabled" in line for line in lines)
    assert main(["tenants", "show", "acme", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "Acme Ltd" and shown["disabled_at"] is None and "thresholds" in shown["policy"]


def test_disable_stops_keys_and_mail_and_enable_brings_them_back(owner, database, settings_env, capsys):
    settings_env(api_key_pepper="pepper-one")
    assert main(["tenants", "create", "acme"]) == 0
    with proxy_connect(owner) as conn, conn.transaction():
        key = create_api_key(conn, "acme", "ci")
    assert main(["tenants", "disable", "acme", "--reason", "unpaid"]) == 0
    with proxy_connect(owner) as conn:
        with conn.transaction():
            assert authenticate_api_key(conn, key.plaintext) is None
        with conn.transaction(), pytest.raises(TenantDisabled, match="disabled"):
            set_tenant(conn, "acme")
            load_policy(conn, "acme")
    assert main(["tenants", "enable", "acme"]) == 0
    with proxy_connect(owner) as conn, conn.transaction():
        assert authenticate_api_key(conn, key.plaintext) == "acme"
    rows = audit_rows(database.superuser_url, "tenant.")
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("tenant.create", "olivia@msp.example"), ("tenant.disable", "olivia@msp.example"),
        ("tenant.enable", "olivia@msp.example")]
    assert rows[1]["after"]["reason"] == "unpaid"


def test_a_root_login_without_an_operator_is_refused(database, settings_env, monkeypatch, capsys):
    database.reset()
    settings_env(admin_database_url=database.owner_url)
    monkeypatch.delenv("SWORDFISH_OPERATOR", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    assert main(["tenants", "create", "acme"]) == 2
    assert "SWORDFISH_OPERATOR" in capsys.readouterr().err
    monkeypatch.setenv("SUDO_USER", "sam")  # the person behind sudo
    get_settings.cache_clear()
    assert main(["tenants", "create", "acme"]) == 0
    assert audit_rows(database.superuser_url, "tenant.")[0]["actor"] == "sam"
    assert main(["tenants", "update", "acme", "--name", "A", "--actor", "pat@msp.example"]) == 0
    assert audit_rows(database.superuser_url, "tenant.update")[0]["actor"] == "pat@msp.example"


# --- keys -----------------------------------------------------------------------------------------


def test_rotation_keeps_the_expiry_policy_and_links_old_and_new(owner):
    with proxy_connect(owner) as conn:
        with conn.transaction():
            create_tenant(conn, "acme", "Acme", {})
            old = create_api_key(conn, "acme", "billing", valid_for=timedelta(days=90))
            forever = create_api_key(conn, "acme", "ops")
        with conn.transaction():
            new = rotate_api_key(conn, "acme", old.key_id)
            new_forever = rotate_api_key(conn, "acme", forever.key_id)
        with conn.transaction():
            keys = {k["key_id"]: k for k in list_api_keys(conn, "acme")}
    assert new.expires_at is not None
    assert timedelta(days=89, hours=23) < new.expires_at - datetime.now(UTC) <= timedelta(days=90)
    assert keys[new.key_id]["valid_for"] == timedelta(days=90)
    assert keys[old.key_id]["replaced_by_key_id"] == new.key_id and keys[new.key_id]["replaces_key_id"] == old.key_id
    assert new_forever.expires_at is None and keys[new_forever.key_id]["valid_for"] is None


def test_a_key_created_with_an_expiry_date_keeps_that_lifetime_on_rotation(owner):
    with proxy_connect(owner) as conn:
        with conn.transaction():
            create_tenant(conn, "acme", "Acme", {})
            old = create_api_key(conn, "acme", expires_at=datetime.now(UTC) + timedelta(days=365))
        with conn.transaction():
            new = rotate_api_key(conn, "acme", old.key_id)
    assert timedelta(days=364) < new.expires_at - datetime.now(UTC) <= timedelta(days=365)


def test_authentication_records_last_use_at_most_every_few_minutes(owner, database, settings_env):
    settings_env(api_key_pepper="pepper-one")
    with proxy_connect(owner) as conn, conn.transaction():
        create_tenant(conn, "acme", "Acme", {})
        key = create_api_key(conn, "acme")
    app = Database(database.app_url, max_size=1)
    try:
        with app.connection() as conn, conn.transaction():
            assert authenticate_api_key(conn, key.plaintext) == "acme"
        with app.connection() as conn, conn.transaction():
            [row] = list_api_keys(conn, "acme")
            first = row["last_used_at"]
            assert first is not None
            assert authenticate_api_key(conn, key.plaintext) == "acme"
            assert list_api_keys(conn, "acme")[0]["last_used_at"] == first  # no write per request
    finally:
        app.close()


def test_key_commands_are_audited_and_list_shows_policy_links_and_use(owner, database, capsys):
    assert main(["tenants", "create", "acme"]) == 0
    assert main(["tenants", "create-key", "acme", "--expires-days", "90", "--label", "ci"]) == 0
    with proxy_connect(owner) as conn, conn.transaction():
        [key] = list_api_keys(conn, "acme")
    assert main(["tenants", "rotate-key", "acme", key["key_id"]]) == 0
    capsys.readouterr()
    assert main(["tenants", "list-keys", "acme"]) == 0
    out = capsys.readouterr().out
    assert "replaced by" in out and "90 days" in out and "never used" in out
    actions = [(r["action"], r["actor"]) for r in audit_rows(database.superuser_url, "api_key.")]
    assert actions == [("api_key.create", "olivia@msp.example"), ("api_key.rotate", "olivia@msp.example")]


# --- feedback-made list entries -------------------------------------------------------------------


def test_a_feedback_made_entry_is_listed_with_who_when_why_and_can_be_removed(owner, database):
    with proxy_connect(owner) as conn:
        with conn.transaction():
            create_tenant(conn, "acme", "Acme", {})
            save_verdicts(conn, [VerdictRecord(
                tenant_id="acme", message_id="m1", verdict="phishing", score=9.0, reasons=[], parse_problems=[],
                subject="s", sender="Boss@Partner.example", submitted_at=datetime.now(UTC), sqs_sent_at=None)])
        with conn.transaction():
            record_feedback(conn, "acme", "m1", "legitimate", "ana@msp.example", "known partner")
        with conn.transaction():
            [entry] = feedback_entries(conn, "acme")
            assert (entry["list_entry"], entry["list"], entry["analyst"], entry["comment"], entry["message_id"]) == \
                ("boss@partner.example", "allow", "ana@msp.example", "known partner", "m1")
            assert remove_feedback_entry(conn, "acme", "boss@partner.example", "olivia@msp.example", "too broad")
            assert not remove_feedback_entry(conn, "acme", "boss@partner.example", "olivia@msp.example", "")
        with conn.transaction():
            assert feedback_lists(conn, "acme") == ([], [])
            assert "boss@partner.example" not in load_policy(conn, "acme").get("allow_list", [])
            assert feedback_entries(conn, "acme") == []
        with conn.transaction():  # a new judgement puts it back
            record_feedback(conn, "acme", "m1", "phishing", "ana@msp.example", "it was not the partner")
        with conn.transaction():
            assert feedback_lists(conn, "acme") == ([], ["boss@partner.example"])


# --- entries with a comment and an expiry, MSP-wide or per tenant ---------------------------------


def test_msp_wide_and_tenant_entries_join_the_policy_until_they_expire_or_are_removed(owner, database):
    from swordfish.store.list_entries import active_entries, add_entry, remove_entry

    with proxy_connect(owner) as conn:
        with conn.transaction():
            create_tenant(conn, "acme", "Acme", {"allow_list": ["partner.example"]})
            create_tenant(conn, "globex", "Globex", {})
            everyone = add_entry(conn, tenant_id=None, list_name="block", entry="Evil.Example", created_by="olivia",
                                 comment="campaign 2026-12")
            add_entry(conn, tenant_id="acme", list_name="allow", entry="ceo@vendor.example", created_by="olivia",
                      comment="until the vendor fixes DKIM", valid_for=timedelta(days=30))
            gone = add_entry(conn, tenant_id="acme", list_name="block", entry="old.example", created_by="olivia",
                             valid_for=timedelta(days=1))
            conn.execute("UPDATE list_entries SET expires_at = now() - interval '1 second' WHERE entry_id = %s",
                         (gone["entry_id"],))
            with pytest.raises(ValueError, match="wildcards"):
                add_entry(conn, tenant_id=None, list_name="block", entry="*.evil.example", created_by="olivia")
        with conn.transaction():
            set_tenant(conn, "acme")
            acme = load_policy(conn, "acme")
        with conn.transaction():
            set_tenant(conn, "globex")
            globex = load_policy(conn, "globex")
        assert "evil.example" in acme["block_list"] and "evil.example" in globex["block_list"]
        assert acme["allow_list"] == ["partner.example", "ceo@vendor.example"]
        assert "old.example" not in acme["block_list"] and "ceo@vendor.example" not in globex.get("allow_list", [])
        with conn.transaction():
            assert [e["entry"] for e in active_entries(conn, "acme")] == ["evil.example", "ceo@vendor.example"]
            assert remove_entry(conn, everyone["entry_id"], "olivia")["removed_by"] == "olivia"
        with conn.transaction():
            set_tenant(conn, "globex")
            assert "evil.example" not in load_policy(conn, "globex").get("block_list", [])


def test_extra_brands_from_a_policy_file_are_checked_like_the_consoles(owner, tmp_path, capsys):
    assert main(["tenants", "create", "acme"]) == 0
    bad = write_policy(tmp_path, {"extra_brands": {"paypal": ["mail.partner.com"], "acmewidgets": ["x.com"]}})
    assert main(["tenants", "update", "acme", "--policy", bad]) == 2
    err = capsys.readouterr().err
    assert "write partner.com" in err and "acmewidgets" in err and len(err.strip().splitlines()) == 1
    good = write_policy(tmp_path, {"extra_brands": {"PayPal": ["partner.com"]}})
    assert main(["tenants", "update", "acme", "--policy", good]) == 0
    capsys.readouterr()
    assert main(["tenants", "show", "acme", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["extra_brands"] == {"paypal": ["partner.com"]}
