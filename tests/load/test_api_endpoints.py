"""The HTTP API under concurrent load: every request answered, no 5xx, submissions all processed."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.gateway import make_server
from devstack.poller import WorkerPool
from tests.load.test_email_throughput import _wait_for

MAIL = b"From: a@globex.com\r\nTo: b@globex.com\r\nSubject: api load\r\n\r\nhello\r\n"


@pytest.fixture()
def gateway(stack_env):
    from handlers import api
    from swordfish import wiring

    wiring.reset()
    server = make_server(api.handler, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", stack_env
    server.shutdown()
    server.server_close()
    wiring.reset()


def _request(url: str, key: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_api_answers_concurrent_submissions_and_queries_without_errors(gateway):
    url, stack = gateway
    keys = stack.info.api_keys
    jobs = []
    for i in range(160):
        tenant = "globex" if i % 2 else "acme-corp"
        if i % 4 == 0:
            jobs.append((f"{url}/v1/tenants/{tenant}/submissions", keys[tenant],
                         {"raw_mime_b64": base64.b64encode(MAIL + str(i).encode()).decode(), "message_id": f"api-{i}"}))
        else:
            jobs.append((f"{url}/v1/tenants/{tenant}/verdicts?limit=20", keys[tenant], None))
    with WorkerPool(stack.info.env, workers=2):
        with ThreadPoolExecutor(8) as pool:
            statuses = Counter(pool.map(lambda job: _request(*job), jobs))
        _wait_for(stack, 40)
    print(f"\nAPI under 8 concurrent clients: {dict(statuses)}")
    assert statuses == Counter({200: 120, 202: 40})


def test_wrong_tenant_keys_are_refused_under_concurrency(gateway):
    url, stack = gateway
    wrong = stack.info.api_keys["acme-corp"]
    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(lambda _: _request(f"{url}/v1/tenants/globex/verdicts", wrong), range(40)))
    assert statuses == Counter({403: 40})
