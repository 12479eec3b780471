"""Response in bulk through the API (issue 28), on the embedded stack: a tenant's key starts a job
on a search of its own messages, the operator token across tenants; the job worker (its Lambda
handler on the response-jobs queue) moves the mail in the Nango stand-in; progress, the quarantine
list (keyset pages) with bulk release, indicator blocks; hostile input gets a 400."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import psycopg
import pytest

from devstack.gateway import make_server
from devstack.poller import FakeLambdaContext, to_lambda_record
from tests.trace.conftest import record

TENANTS = ("acme-corp", "globex")
LURE = dict(link_domains=["bulk-lure.example"], sender_domain="bulk-lure.example")
RAW = b"From: x@bulk-lure.example\r\nSubject: s\r\n\r\nb\r\n"


@pytest.fixture()
def gateway(stack_env):
    from handlers import api
    from swordfish import wiring

    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute("TRUNCATE response_jobs, response_job_items, response_throttle, mailbox_messages, "
                     "indicator_blocks")
    stack_env.client("sqs").purge_queue(QueueUrl=stack_env.info.response_jobs_queue_url)
    wiring.reset()
    server = make_server(api.handler, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", stack_env
    server.shutdown()
    server.server_close()
    wiring.reset()


def call(url: str, key: str | None = None, method: str = "GET", body: dict | None = None):
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers),
                                    timeout=20) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def seed(stack, n: int = 2) -> None:
    """Mailbox mail of the lure for both tenants: verdicts (with their mailbox reference) and the
    messages in the stand-in's mailboxes."""
    from swordfish.store.database import proxy_connect
    from swordfish.store.verdicts import save_verdicts

    records = []
    for tenant in TENANTS:
        for i in range(n):
            message = f"{tenant}-bulk-{i}"
            stack.nango.add_message(f"conn-{tenant}", f"graph-{message}", RAW)
            rec = record(tenant, message, **LURE, envelope_recipients=[f"user{i}@{tenant}.example"])
            rec.submitted_at = datetime.now(UTC)
            rec.mailbox = (f"conn-{tenant}", "microsoft", f"graph-{message}")
            records.append(rec)
    with proxy_connect(stack.info.owner_url) as conn, conn.transaction():
        save_verdicts(conn, records)


def work(stack, rounds: int = 3) -> None:
    """The job worker's Lambda, fed from the response-jobs queue as the event source mapping would."""
    from handlers.response_jobs import handler
    from swordfish import constants

    sqs = stack.client("sqs")
    arn = f"arn:aws:sqs:eu-west-1:000000000000:{constants.RESPONSE_JOBS_QUEUE_NAME}"
    for _ in range(rounds):
        got = sqs.receive_message(QueueUrl=stack.info.response_jobs_queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
        if not got:
            return
        result = handler({"Records": [to_lambda_record(m, arn, "eu-west-1") for m in got]}, FakeLambdaContext())
        assert result.get("batchItemFailures", []) == []
        for m in got:
            sqs.delete_message(QueueUrl=stack.info.response_jobs_queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_a_tenant_key_quarantines_its_search_and_releases_from_its_quarantine_list(gateway):
    url, stack = gateway
    seed(stack)
    acme, globex = stack.info.api_keys["acme-corp"], stack.info.api_keys["globex"]
    status, job = call(f"{url}/v1/tenants/acme-corp/response-jobs", acme, "POST",
                       {"action": "quarantine", "search": {"link_domain": "bulk-lure.example"}, "note": "lure"})
    assert status == 202 and job["total"] == 2 and job["tenant_id"] == "acme-corp"
    assert job["source_ref"] == {"filters": {"link_domain": "bulk-lure.example"}}
    work(stack)
    status, view = call(f"{url}/v1/tenants/acme-corp/response-jobs/{job['job_id']}", acme)
    assert status == 200 and view["finished"] == view["total"] == 2 and view["counts"]["done"] == 2
    assert view["tenants"] == [{"tenant_id": "acme-corp", "total": 2, "finished": 2, "pending": 0, "done": 2,
                                "gone": 0, "failed": 0, "skipped": 0}]
    assert {stack.nango.folder_of("conn-acme-corp", f"graph-acme-corp-bulk-{i}") for i in range(2)} == {"junkemail"}
    assert stack.nango.folder_of("conn-globex", "graph-globex-bulk-0") == "inbox"  # not acme's to touch
    status, items = call(f"{url}/v1/tenants/acme-corp/response-jobs/{job['job_id']}/items", acme)
    assert [i["state"] for i in items["items"]] == ["done", "done"]
    # another tenant's key: its own job list holds nothing of acme's, and acme's job is not there
    assert call(f"{url}/v1/tenants/globex/response-jobs/{job['job_id']}", globex)[0] == 404
    assert call(f"{url}/v1/tenants/acme-corp/response-jobs/{job['job_id']}", globex)[0] == 403

    status, first = call(f"{url}/v1/tenants/acme-corp/quarantine?limit=1", acme)
    assert status == 200 and len(first["results"]) == 1 and first["next_cursor"]
    status, second = call(f"{url}/v1/tenants/acme-corp/quarantine?limit=1&cursor={first['next_cursor']}", acme)
    assert status == 200 and len(second["results"]) == 1
    chosen = first["results"][0]
    assert chosen["state"] == "quarantined" and chosen["recipients"] and chosen["verdict_url"].startswith(
        "/v1/tenants/acme-corp/verdicts/")
    assert {r["message_id"] for r in first["results"] + second["results"]} == {"acme-corp-bulk-0", "acme-corp-bulk-1"}
    assert call(f"{url}/v1/tenants/globex/quarantine", globex)[1]["results"] == []

    status, release = call(f"{url}/v1/tenants/acme-corp/response-jobs", acme, "POST",
                           {"action": "release", "messages": [{"tenant_id": "acme-corp",
                                                               "message_id": chosen["message_id"]}]})
    assert status == 202 and release["total"] == 1
    work(stack)
    assert stack.nango.folder_of("conn-acme-corp", f"graph-{chosen['message_id']}") == "inbox"
    status, left = call(f"{url}/v1/tenants/acme-corp/quarantine", acme)
    assert [r["message_id"] for r in left["results"]] == [m for m in ("acme-corp-bulk-0", "acme-corp-bulk-1")
                                                         if m != chosen["message_id"]]
    with psycopg.connect(stack.info.superuser_url) as conn:
        started = conn.execute("SELECT actor, tenant_id FROM console_audit WHERE action = 'response_job.start' "
                               "ORDER BY audit_id").fetchall()
    assert [t for _, t in started] == ["acme-corp", "acme-corp"] and all(a.startswith("api-key:") for a, _ in started)


def test_the_operator_acts_across_tenants_and_blocks_a_campaigns_indicators(gateway):
    from swordfish.store.campaigns import CampaignGrouper, Hit
    from swordfish.store.database import Database

    url, stack = gateway
    seed(stack, n=1)
    token = stack.operator_token
    assert call(f"{url}/v1/msp/response-jobs", stack.info.api_keys["acme-corp"], "POST",
                {"action": "quarantine", "search": {"link_domain": "bulk-lure.example"}})[0] == 401
    status, job = call(f"{url}/v1/msp/response-jobs", token, "POST",
                       {"action": "delete", "search": {"link_domain": "bulk-lure.example"}, "confirm_delete": True})
    assert status == 202 and job["tenant_id"] is None and job["total"] == 2
    work(stack)
    status, view = call(f"{url}/v1/msp/response-jobs/{job['job_id']}", token)
    assert view["counts"]["done"] == 2 and sorted(t["tenant_id"] for t in view["tenants"]) == list(TENANTS)
    assert {d.message_id for d in stack.nango.deleted} >= {"graph-acme-corp-bulk-0", "graph-globex-bulk-0"}
    assert call(f"{url}/v1/tenants/acme-corp/response-jobs/{job['job_id']}", stack.info.api_keys["acme-corp"])[0] \
        == 404  # a cross-tenant job is staff's
    status, jobs = call(f"{url}/v1/msp/response-jobs", token)
    assert [j["job_id"] for j in jobs["jobs"]] == [job["job_id"]] and jobs["jobs"][0]["finished"] == 2

    # a campaign: three tenants share the lure's link domain
    with psycopg.connect(stack.info.owner_url, prepare_threshold=None) as conn, conn.transaction():
        from swordfish.store.tenants import ensure_tenant

        ensure_tenant(conn, "initech", "Initech", {})
    seed_third = record("initech", "initech-bulk-0", **LURE)
    pool = Database(stack.info.env["SWORDFISH_DB_URL"] if "SWORDFISH_DB_URL" in stack.info.env
                    else stack.info.owner_url, max_size=1)
    try:
        from swordfish.store.verdicts import save_verdicts

        with pool.connection() as conn, conn.transaction():
            save_verdicts(conn, [seed_third])
        with psycopg.connect(stack.info.superuser_url) as conn:
            rows = conn.execute("SELECT tenant_id, committed_at FROM verdict_traces").fetchall()
        grouped = CampaignGrouper(pool).observe([Hit(t, at, seed_third.trace) for t, at in rows])
    finally:
        pool.close()
    campaign = next(c for c in grouped)
    status, offered = call(f"{url}/v1/msp/campaigns/{campaign}/block", token)
    assert status == 200 and {"kind": "link_domain", "indicator": "bulk-lure.example"} in offered["indicators"]
    status, blocked = call(f"{url}/v1/msp/campaigns/{campaign}/block", token, "POST",
                           {"tenant": "globex", "indicators": [{"kind": "link_domain",
                                                               "indicator": "bulk-lure.example"}]})
    assert status == 201 and [(b["tenant_id"], b["campaign_id"]) for b in blocked["blocks"]] == [("globex", campaign)]
    status, listed = call(f"{url}/v1/tenants/globex/indicator-blocks", stack.info.api_keys["globex"])
    assert [b["indicator"] for b in listed["blocks"]] == ["bulk-lure.example"]
    assert call(f"{url}/v1/tenants/acme-corp/indicator-blocks", stack.info.api_keys["acme-corp"])[1]["blocks"] == []
    assert call(f"{url}/v1/msp/campaigns/{campaign}/block", token, "POST",
                {"indicators": [{"kind": "link_domain", "indicator": "not-in-it.example"}]})[0] == 400
    block_id = blocked["blocks"][0]["block_id"]
    assert call(f"{url}/v1/msp/indicator-blocks/{block_id}", token, "DELETE")[0] == 200
    assert call(f"{url}/v1/msp/indicator-blocks/{block_id}", token, "DELETE")[0] == 404


@pytest.mark.parametrize(("body", "why"), [
    ({"action": "delete", "search": {"link_domain": "bulk-lure.example"}}, "confirm"),
    ({"action": "quarantine", "campaign_id": 1}, "campaigns span tenants"),
    ({"action": "quarantine", "search": {}}, "add a filter"),
    ({"action": "quarantine"}, "one campaign, one search"),
    ({"action": "burn", "search": {"link_domain": "x.example"}}, "action"),
    ({"action": "quarantine", "search": {"link_domain": "x.example"}, "extra": 1}, "extra"),
    ({"action": "quarantine", "search": {"verdict": ["evil"]}}, "verdict"),
    ({"action": "release", "messages": [{"tenant_id": "../x", "message_id": "m"}]}, "tenant_id"),
    ({"action": "quarantine", "messages": [{"tenant_id": "acme-corp", "message_id": "m"}]}, "the quarantine list"),
    ({"action": "quarantine", "search": {"link_domain": "nothing-matches.example"}}, "nothing to act on"),
])
def test_hostile_or_wrong_jobs_get_a_400_that_says_why(gateway, body, why):
    url, stack = gateway
    status, answer = call(f"{url}/v1/tenants/acme-corp/response-jobs", stack.info.api_keys["acme-corp"], "POST", body)
    assert status == 400 and why in answer["message"], answer


def test_unknown_ids_and_cursors_are_404_and_400(gateway):
    url, stack = gateway
    acme = stack.info.api_keys["acme-corp"]
    for path in ("response-jobs/abc", "response-jobs/99999999", "response-jobs/1%00/items"):
        assert call(f"{url}/v1/tenants/acme-corp/{path}", acme)[0] == 404
    assert call(f"{url}/v1/tenants/acme-corp/quarantine?cursor=bm90LWEtY3Vyc29y", acme)[0] == 400
    assert call(f"{url}/v1/tenants/acme-corp/quarantine?state=gone", acme)[0] == 400
    assert call(f"{url}/v1/tenants/acme-corp/indicator-blocks", acme, "POST",
                {"kind": "link_domain", "indicator": "https://x.example/"})[0] == 400
    assert call(f"{url}/v1/tenants/acme-corp/indicator-blocks", acme, "POST",
                {"kind": "link_domain", "indicator": "x.example", "tenant": "globex"})[0] == 400
    assert call(f"{url}/v1/tenants/acme-corp/response-jobs")[0] == 401


NOTIFY_ON_ITEM = """
CREATE OR REPLACE FUNCTION test_notify_response_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('test_response_item', NEW.job_id::text); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS test_notify_response_item ON response_job_items;
CREATE TRIGGER test_notify_response_item AFTER UPDATE ON response_job_items
    FOR EACH ROW EXECUTE FUNCTION test_notify_response_item();
"""


def test_on_the_embedded_stack_a_worker_process_finishes_a_job_the_api_started(gateway):
    """What `make serve` runs: a worker process polling the response-jobs queue (devstack.poller)."""
    import time

    from devstack.poller import WorkerPool

    url, stack = gateway
    seed(stack, n=3)
    status, job = call(f"{url}/v1/msp/response-jobs", stack.operator_token, "POST",
                       {"action": "quarantine", "search": {"link_domain": "bulk-lure.example"}})
    assert status == 202 and job["total"] == 6
    # The worker's commits wake this test through its own database (LISTEN before reading, so no commit
    # goes unseen): no polling; the deadline only ends a hang.
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        conn.execute(NOTIFY_ON_ITEM)
        conn.execute("LISTEN test_response_item")
        try:
            with WorkerPool(stack.info.env, workers=1, function="response"):
                deadline = time.monotonic() + 60
                while (view := call(f"{url}/v1/msp/response-jobs/{job['job_id']}", stack.operator_token)[1])[
                        "finished"] < view["total"]:
                    remaining = deadline - time.monotonic()
                    assert remaining > 0, f"the worker finished {view['finished']} of {view['total']} in 60 s"
                    for _ in conn.notifies(timeout=remaining, stop_after=1):
                        pass
        finally:
            conn.execute("DROP TRIGGER IF EXISTS test_notify_response_item ON response_job_items")
    assert view["counts"]["done"] == 6 and view["finished_at"]


def test_a_job_whose_queue_send_failed_is_kept_and_swordfish_response_run_finishes_it(gateway, capsys):
    from swordfish.cli import main
    from swordfish.store.database import Database
    from swordfish.store.response_jobs import ResponseDesk
    from swordfish.store.traces import TraceSearch

    url, stack = gateway
    seed(stack, n=1)

    def queue_down(job_id: int) -> None:
        raise ConnectionError("SQS unreachable")

    pool = Database(stack.info.owner_url, max_size=1)
    try:
        job = ResponseDesk(pool, kick=queue_down).start(
            scope=None, tenant_id="globex", action="quarantine", created_by="ops@msp.example",
            created_role="operator", query=TraceSearch(link_domain="bulk-lure.example"))
    finally:
        pool.close()
    assert job["queued"] is False and job["total"] == 1
    assert main(["response", "run", "--job", str(job["job_id"])]) == 0
    assert json.loads(capsys.readouterr().out) == {"outcomes": {"done": 1}, "next_due": None}
    assert stack.nango.folder_of("conn-globex", "graph-globex-bulk-0") == "junkemail"
