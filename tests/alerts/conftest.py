"""The alerts tests: a test database with two tenants, a fauxqs queue pair, an injected clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config
from swordfish.store.database import Database, proxy_connect
from swordfish.store.tenants import create_tenant

from tests.console.helpers import Clock, KeyRing

TENANTS = ("acme-corp", "globex")


@dataclass
class Queues:
    sqs: object
    queue_url: str
    dlq_url: str

    def drain(self, url: str) -> list[dict]:
        got = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                             MessageAttributeNames=["All"]).get("Messages", [])
            if not batch:
                return got
            for m in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            got += batch


@pytest.fixture()
def alert_db(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        for tenant in TENANTS:
            with conn.transaction():
                create_tenant(conn, tenant, tenant.title(), {"domains": [f"{tenant}.example"]})
    db = Database(database.app_url, max_size=2)
    yield db
    db.close()


@pytest.fixture()
def queues(fauxqs_server):
    sqs = boto3.client("sqs", endpoint_url=fauxqs_server.url, region_name="eu-west-1",
                       config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}))
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    return Queues(sqs, sqs.create_queue(QueueName=name)["QueueUrl"], sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"])


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def box():
    from swordfish.security.totp_keys import TotpSecretBox

    return TotpSecretBox(KeyRing())
