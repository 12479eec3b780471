"""The local API gateway under hostile and concurrent callers (issue 25): a body over API Gateway's
limit gets a 413 the caller can read, and concurrent connections are answered, none reset."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from devstack.gateway import MAX_BODY_BYTES, make_server


def ok(event, context):
    # How long the handler takes does not matter here: every connection is made before serving starts.
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"ok": true}'}


@pytest.fixture()
def gateway():
    server = make_server(ok, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_30_mb_body_gets_a_413_the_caller_can_read(gateway):
    body = b"x" * (30 * 1024 * 1024)
    assert len(body) > MAX_BODY_BYTES
    conn = http.client.HTTPConnection("127.0.0.1", gateway.server_address[1], timeout=30)
    try:
        conn.request("POST", "/v1/tenants/acme-corp/submissions", body=body,
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        assert response.status == 413
        assert b"10 MB" in response.read()
    finally:
        conn.close()


def test_fifty_concurrent_connections_are_all_answered():
    """All fifty connect before the gateway accepts any (a burst): with socketserver's default
    backlog of 5 the rest had their handshakes dropped or reset. A connect that does not complete
    within 0.5 s (the kernel retries a dropped SYN after 1 s) did not fit in the backlog."""
    server = make_server(ok, port=0)
    sockets: list[socket.socket] = []
    serving = False
    try:
        for _ in range(50):
            sockets.append(socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=0.5))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        serving = True
        outcomes: list[object] = []

        def ask(sock: socket.socket) -> None:
            try:
                sock.settimeout(30)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                outcomes.append(data.split(b"\r\n", 1)[0])
            except OSError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=ask, args=(s,)) for s in sockets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert outcomes.count(b"HTTP/1.1 200 OK") == 50, [o for o in outcomes if o != b"HTTP/1.1 200 OK"]
    finally:
        for sock in sockets:
            sock.close()
        if serving:  # shutdown() waits for a serve_forever that never started
            server.shutdown()
        server.server_close()


def test_a_handler_that_raises_is_a_502_not_a_dropped_connection():
    def broken(event, context):
        raise RuntimeError("boom")

    server = make_server(broken, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 502 and b"boom" not in response.read()
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


# --- the local poller (devstack/poller.py) ---------------------------------------------------------


class QueueWhoseDeletesFail:
    """boto3's SQS client as the poller uses it, with DeleteMessageBatch failing (a fauxqs restart)."""

    def __init__(self, stop: threading.Event):
        self.stop, self.receives, self.deletes = stop, 0, 0

    def receive_message(self, **kwargs):
        self.receives += 1
        if self.receives > 2:
            self.stop.set()
            return {}
        return {"Messages": [{"MessageId": f"m{self.receives}", "ReceiptHandle": f"r{self.receives}", "Body": "{}",
                              "Attributes": {}, "MessageAttributes": {}, "MD5OfBody": ""}]}

    def delete_message_batch(self, **kwargs):
        from botocore.exceptions import EndpointConnectionError

        self.deletes += 1
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")

    def change_message_visibility_batch(self, **kwargs):
        raise AssertionError("nothing failed: nothing to retry")


def test_a_failed_queue_delete_is_an_error_path_not_a_worker_crash(capsys):
    """Issue 25: a worker crashed when a queue delete failed (restarted, nothing lost, but a crash)."""
    from devstack.poller import _poll_loop

    stop = threading.Event()
    sqs = QueueWhoseDeletesFail(stop)
    handled = []

    def handler(event, context):
        handled.extend(r["messageId"] for r in event["Records"])
        return {"batchItemFailures": []}

    _poll_loop(sqs, "http://queue", "arn:aws:sqs:eu-west-1:000000000000:q", "eu-west-1", handler, 0, stop, 10,
               lambda final=False: None)
    assert handled == ["m1", "m2"] and sqs.deletes == 2  # the worker went on to the next batch
    out = capsys.readouterr().out
    assert out.count("delete failed") == 2 and "redelivered" in out
