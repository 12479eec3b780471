"""The pipeline keeps where a connected mailbox's message is (issue 28): the Nango connection and the
provider's id, stored with the verdict, so a bulk response can reach a copy Swordfish never moved;
inline mail has none."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import psycopg
from swordfish.pipeline.submission import InlineSource, MailboxSource, Submission

from tests.pipeline.helpers import failed_ids, invoke, receive_event, send_bodies

RAW = b"From: a@example.org\r\nTo: b@acme-corp.example\r\nSubject: lunch\r\n\r\nSee you at noon.\r\n"


def test_a_mailbox_verdict_keeps_its_mailbox_reference_and_inline_mail_none(stack_env):
    now = datetime.now(UTC)
    mailbox = Submission(tenant_id="acme-corp", message_id="mbx-ref", submitted_at=now,
                         source=MailboxSource(connection_id="demo-m365", provider_config_key="microsoft",
                                              provider_message_id="AAMkAGI2-phish-2"))
    inline = Submission(tenant_id="acme-corp", message_id="inline-ref", submitted_at=now,
                        source=InlineSource(raw_mime_b64=base64.b64encode(RAW).decode()))
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute("TRUNCATE mailbox_messages")
    send_bodies(stack_env, [mailbox.model_dump_json(), inline.model_dump_json()])
    assert failed_ids(invoke(receive_event(stack_env, 2))) == set()
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        assert conn.execute("SELECT tenant_id, message_id, connection_id, provider_config_key, provider_message_id "
                            "FROM mailbox_messages").fetchall() == [
            ("acme-corp", "mbx-ref", "demo-m365", "microsoft", "AAMkAGI2-phish-2")]
