"""Locust users for Swordfish. Endpoints come from the environment, so the same file drives the
embedded stack (the load runner sets them) or a deployed stack:

  SWORDFISH_LOAD_QUEUE_URL      emails queue URL (required for EmailSubmitter)
  SWORDFISH_SQS_ENDPOINT_URL    SQS endpoint (unset on AWS)
  SWORDFISH_LOAD_TENANTS        comma-separated tenant ids (default: acme-corp,globex)
  SWORDFISH_LOAD_CORPUS         colon-separated folders of mail (default: samples and ../shared/corpus)
  SWORDFISH_LOAD_BATCHES_PER_S  SendMessageBatch calls per second per user (default 1; 10 mails each)
  SWORDFISH_LOAD_ID_PREFIX      message-id prefix (default load-)
  SWORDFISH_LOAD_STAGES         JSON [[seconds, users], ...]: a load shape (else -u/-r/-t apply)
  SWORDFISH_API_URL, SWORDFISH_API_KEYS  for ApiUser: base URL and JSON {tenant: key}

EmailSubmitter does what a production submitter does: SendMessageBatch with the submission
contract, each call reported through locust's request event.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.config import Config
from locust import HttpUser, LoadTestShape, User, between, constant_throughput, events, task
from swordfish.pipeline.submission import inline_submission

from loadtests.corpus import load_corpus

TENANTS = [t for t in os.environ.get("SWORDFISH_LOAD_TENANTS", "acme-corp,globex").split(",") if t]


CORPUS = load_corpus()
# Message ids start with this, so the runner can attribute every verdict to the phase that sent it.
ID_PREFIX = os.environ.get("SWORDFISH_LOAD_ID_PREFIX", "load-")
SENT_FILE = os.environ.get("SWORDFISH_LOAD_SENT_FILE")  # where the count of accepted emails is written
SENT = {"emails": 0}


@events.quitting.add_listener
def _write_sent_count(environment, **_kwargs) -> None:
    # Locust's CSV is written before the last in-flight calls return; this count is exact.
    if SENT_FILE:
        Path(SENT_FILE).write_text(json.dumps(SENT))


class EmailSubmitter(User):
    wait_time = constant_throughput(float(os.environ.get("SWORDFISH_LOAD_BATCHES_PER_S", "1")))

    def on_start(self) -> None:
        self.queue_url = os.environ["SWORDFISH_LOAD_QUEUE_URL"]
        self.sqs = boto3.client("sqs", endpoint_url=os.environ.get("SWORDFISH_SQS_ENDPOINT_URL") or None,
                                region_name=os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
                                config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10))
        self.rng = random.Random()

    @task
    def send_batch(self) -> None:
        entries = []
        for i in range(10):
            raw = self.rng.choice(CORPUS)
            tenant = self.rng.choice(TENANTS)
            submission = inline_submission(tenant, f"{ID_PREFIX}{uuid.uuid4()}", raw, datetime.now(UTC))
            entries.append({"Id": str(i), "MessageBody": submission.model_dump_json(), "MessageAttributes": {
                "correlation_id": {"DataType": "String", "StringValue": str(uuid.uuid4())}}})
        started = time.perf_counter()
        exception = None
        size = sum(len(e["MessageBody"]) for e in entries)
        try:
            response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            SENT["emails"] += len(response.get("Successful", []))
            if response.get("Failed"):
                exception = RuntimeError(f"{len(response['Failed'])} entries failed: {response['Failed'][0]}")
        except Exception as exc:  # reported to locust as a failed request, not raised
            exception = exc
        events.request.fire(request_type="SQS", name="SendMessageBatch",
                            response_time=(time.perf_counter() - started) * 1000, response_length=size,
                            exception=exception, context={})


class ApiUser(HttpUser):
    """Submissions and verdict queries through the HTTP API (the local gateway or API Gateway)."""

    wait_time = between(0.05, 0.2)
    host = os.environ.get("SWORDFISH_API_URL", "http://127.0.0.1:8080")

    def on_start(self) -> None:
        self.keys = json.loads(os.environ.get("SWORDFISH_API_KEYS", "{}"))
        if not self.keys:
            raise RuntimeError("SWORDFISH_API_KEYS must map tenants to API keys")
        self.rng = random.Random()

    def _tenant(self) -> tuple[str, dict]:
        tenant = self.rng.choice(list(self.keys))
        return tenant, {"Authorization": f"Bearer {self.keys[tenant]}"}

    @task(1)
    def submit(self) -> None:
        tenant, headers = self._tenant()
        raw = self.rng.choice(CORPUS)
        self.client.post(f"/v1/tenants/{tenant}/submissions", headers=headers, name="/v1/tenants/[t]/submissions",
                         json={"raw_mime_b64": base64.b64encode(raw).decode(), "message_id": f"api-{uuid.uuid4()}"})

    @task(3)
    def list_verdicts(self) -> None:
        tenant, headers = self._tenant()
        self.client.get(f"/v1/tenants/{tenant}/verdicts?limit=20", headers=headers, name="/v1/tenants/[t]/verdicts")


_STAGES = json.loads(os.environ.get("SWORDFISH_LOAD_STAGES", "[]"))

if _STAGES:  # locust runs a shape class whenever one is defined, so define it only when asked for

    class StagesShape(LoadTestShape):
        """[[seconds, users], ...] from SWORDFISH_LOAD_STAGES (spawn rate: all users at once)."""

        stages = _STAGES

        def tick(self):
            elapsed, end = self.get_run_time(), 0
            for seconds, users in self.stages:
                end += seconds
                if elapsed < end:
                    return users, max(users, 50)
            return None
