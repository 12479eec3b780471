"""`swordfish lists ...`: the MSP-wide allow and block lists (and one tenant's) from the CLI, with
the console's checks (``analysis.list_entries``) and audit rows; one-line errors, non-zero exits."""

from __future__ import annotations

import json

import psycopg
import psycopg.rows
import pytest
from swordfish.cli import main
from swordfish.store.database import proxy_connect, set_tenant
from swordfish.store.tenants import create_tenant, load_policy


@pytest.fixture()
def owner(database, settings_env):
    database.reset()
    settings_env(operator="olivia@msp.example", admin_database_url=database.owner_url)
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        create_tenant(conn, "acme", "Acme", {})
        create_tenant(conn, "globex", "Globex", {})
    return database.owner_url


def _audit(database) -> list[dict]:
    with psycopg.connect(database.superuser_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT actor, actor_role, action, tenant_id, object_id, before, after FROM console_audit "
                            "WHERE action LIKE 'list_entry.%' ORDER BY audit_id").fetchall()


def _policy(database, tenant):
    """The policy the pipeline loads for ``tenant`` (entries in force merged in)."""
    from swordfish.analysis import TenantPolicy

    with proxy_connect(database.app_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return TenantPolicy.model_validate(load_policy(conn, tenant))


def test_an_msp_wide_entry_is_added_for_every_tenant_listed_and_removed_with_audit(owner, database, capsys):
    assert main(["lists", "add", "block", "Evil.Example", "--comment", "campaign 12", "--expires-days", "30"]) == 0
    out = capsys.readouterr().out
    assert "evil.example" in out and "every tenant" in out
    for tenant in ("acme", "globex"):
        assert "evil.example" in _policy(database, tenant).block_list
    assert main(["lists", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["list"], row["entry"], row["comment"], row["scope"]) == ("block", "evil.example", "campaign 12", "*")
    assert row["expires_at"]
    assert main(["lists", "remove", str(row["entry_id"])]) == 0
    assert "evil.example" not in _policy(database, "acme").block_list
    assert main(["lists", "remove", str(row["entry_id"])]) == 1  # already removed
    assert "error:" in capsys.readouterr().err
    rows = _audit(database)
    assert [(r["actor"], r["actor_role"], r["action"], r["tenant_id"], r["object_id"]) for r in rows] == [
        ("olivia@msp.example", "cli", "list_entry.add", None, "evil.example"),
        ("olivia@msp.example", "cli", "list_entry.remove", None, "evil.example")]
    assert rows[0]["after"]["scope"] == "every tenant" and rows[0]["after"]["comment"] == "campaign 12"


def test_a_tenant_entry_stays_with_that_tenant(owner, database, capsys):
    assert main(["lists", "add", "allow", "ceo@partner.example", "--tenant", "acme"]) == 0
    assert "ceo@partner.example" in _policy(database, "acme").allow_list
    assert "ceo@partner.example" not in _policy(database, "globex").allow_list
    capsys.readouterr()
    assert main(["lists", "list"]) == 0  # without --tenant: the MSP-wide entries only
    assert "ceo@partner.example" not in capsys.readouterr().out
    assert main(["lists", "list", "--tenant", "acme"]) == 0
    line = [li for li in capsys.readouterr().out.splitlines() if "ceo@partner.example" in li][0]
    entry_id = line.split()[0]
    assert main(["lists", "remove", entry_id]) == 1  # not an MSP-wide entry
    assert main(["lists", "remove", entry_id, "--tenant", "globex"]) == 1
    assert main(["lists", "remove", entry_id, "--tenant", "acme"]) == 0
    assert _audit(database)[-1]["tenant_id"] == "acme"


@pytest.mark.parametrize("argv, code, says", [
    (["lists", "add", "block", "*@evil.example"], 2, "wildcards are not supported"),
    (["lists", "add", "block", "https://evil.example/login"], 2, "a URL"),
    (["lists", "add", "block", "co.uk"], 2, "public suffix"),
    (["lists", "add", "grey", "evil.example"], 2, "invalid choice: 'grey'"),
    (["lists", "add", "block", "evil.example", "--tenant", "nobody"], 1, "nobody"),
    (["lists", "add", "block", "evil.example", "--expires-days", "-1"], 2, "expiry"),
    (["lists", "add", "block", "evil.example", "--comment", "a\x00b"], 2, "comment"),
    (["lists", "list", "--tenant", "nobody"], 1, "nobody"),
    (["lists", "remove", "not-a-number"], 2, "invalid int value: 'not-a-number'"),
])
def test_refusals_are_one_line_and_store_nothing(owner, database, capsys, argv, code, says):
    try:
        assert main(argv) == code
    except SystemExit as exc:  # argparse's own refusals
        assert exc.code == code
    err = capsys.readouterr().err.strip()
    assert says in err.splitlines()[-1] and "Traceback" not in err  # the error is its last line (argparse: after usage)
    with psycopg.connect(database.superuser_url) as conn:
        assert conn.execute("SELECT count(*) FROM list_entries").fetchone() == (0,)
    assert _audit(database) == []


def test_a_campaigns_indicator_is_blocked_listed_and_unblocked_from_the_cli(owner, database, capsys):
    assert main(["lists", "block", "link_domain", "Lure.Example", "--campaign", "12", "--tenant", "acme",
                 "--comment", "payroll lure"]) == 0
    assert "blocked for acme" in capsys.readouterr().out
    assert [(b.kind, b.indicator, b.campaign_id) for b in _policy(database, "acme").indicator_blocks] == [
        ("link_domain", "lure.example", 12)]
    assert _policy(database, "globex").indicator_blocks == []
    assert main(["lists", "blocks", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["tenant_id"], row["indicator"], row["created_by"]) == ("acme", "lure.example", "olivia@msp.example")
    assert main(["lists", "block", "attachment_sha256", "not-a-hash"]) != 0
    assert "64 hexadecimal" in capsys.readouterr().err
    assert main(["lists", "unblock", str(row["block_id"])]) == 1  # a tenant's block needs --tenant
    assert main(["lists", "unblock", str(row["block_id"]), "--tenant", "acme"]) == 0
    assert _policy(database, "acme").indicator_blocks == []
    with psycopg.connect(database.superuser_url) as conn:
        assert [r[0] for r in conn.execute("SELECT action FROM console_audit WHERE action LIKE 'indicator_block.%' "
                                           "ORDER BY audit_id")] == ["indicator_block.add", "indicator_block.remove"]
