"""A campaign's blocked indicator reaches the pipeline (issue 28): after a block on a link domain for
one tenant, a new message linking to it is flagged by the processor with a reason naming the block;
the same mail for another tenant is not."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import psycopg
from swordfish.pipeline.submission import InlineSource, Submission
from swordfish.store.database import proxy_connect
from swordfish.store.indicator_blocks import add_block

from tests.pipeline.helpers import failed_ids, invoke, receive_event, send_bodies, verdict_rows

RAW = (b"From: Accounts <billing@partner-invoices.example>\r\nTo: pat@acme-corp.example\r\n"
       b"Subject: Invoice 4471\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
       b'<p>Your invoice is ready: <a href="https://files.blocked-lure.example/inv">open it</a></p>\r\n')


def test_new_mail_holding_a_blocked_link_domain_is_flagged_naming_the_block(stack_env):
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute("TRUNCATE indicator_blocks")
    with proxy_connect(stack_env.info.owner_url) as conn, conn.transaction():
        block = add_block(conn, tenant_id="acme-corp", kind="link_domain", indicator="blocked-lure.example",
                          created_by="ann@msp.example", campaign_id=41)
    now = datetime.now(UTC)
    bodies = [Submission(tenant_id=tenant, message_id=f"{tenant}-invoice", submitted_at=now,
                         source=InlineSource(raw_mime_b64=base64.b64encode(RAW).decode())).model_dump_json()
              for tenant in ("acme-corp", "globex")]
    send_bodies(stack_env, bodies)
    assert failed_ids(invoke(receive_event(stack_env, 2))) == set()
    rows = {r["tenant_id"]: r for r in verdict_rows(stack_env)}
    flagged = [r["evidence"] for r in rows["acme-corp"]["reasons"] if r["name"] == "BLOCKLISTED"]
    assert flagged == [f"link domain blocked-lure.example is blocked (block {block['block_id']}, campaign 41)"]
    assert rows["acme-corp"]["verdict"] == "phishing"
    assert not [r for r in rows["globex"]["reasons"] if r["name"] == "BLOCKLISTED"]
