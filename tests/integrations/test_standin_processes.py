"""The stand-ins run as processes (`python -m ...`), switched through their admin listener."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from swordfish.integrations.feed_refresher import FeedFetcher, FeedFetchError
from swordfish.integrations.nango import NangoClient, NangoTimeout, NangoUnavailable

from devstack.services import free_port


def _start(module: str, *args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(free_port()), *args],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the server prints one JSON line once it listens
    if not line:
        proc.kill()
        raise RuntimeError(f"{module} exited before listening (code {proc.wait(5)})")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise


def _set_fault(admin_url: str, mode: str) -> dict:
    request = urllib.request.Request(f"{admin_url}/_faults", data=json.dumps({"mode": mode}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.fixture()
def mailbox_dir(tmp_path: Path, mailbox_message) -> Path:
    box = tmp_path / "conn-folder"
    box.mkdir()
    (box / "msg-42.eml").write_bytes(mailbox_message[1])
    return tmp_path


def test_nango_standin_process_serves_folder_mailboxes_and_goes_down_on_request(mailbox_dir, mailbox_message):
    proc, info = _start("devstack.nango_standin", "--mailboxes", str(mailbox_dir), "--secret", "s3")
    try:
        client = NangoClient(info["url"], "s3", timeout=0.5)
        assert client.fetch_message("conn-folder", "microsoft", "msg-42") == mailbox_message[1]
        assert _set_fault(info["admin_url"], "down")["mode"] == "down"
        with pytest.raises(NangoUnavailable, match="cannot connect"):
            client.health()
        _set_fault(info["admin_url"], "ok")
        client.health()
    finally:
        _stop(proc)


def test_hanging_nango_standin_process_stops_promptly_on_sigterm():
    proc, info = _start("devstack.nango_standin")
    try:
        _set_fault(info["admin_url"], "hang")
        with pytest.raises(NangoTimeout):
            NangoClient(info["url"], "x", timeout=0.3).health()
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    started = time.monotonic()  # a request is still hanging inside the server now
    assert _stop(proc) == 0
    assert time.monotonic() - started < 5  # guard: SIGTERM is not blocked by the hanging request


def test_feed_server_process_serves_feeds_and_reports_errors():
    proc, info = _start("devstack.feed_server")
    try:
        fetcher = FeedFetcher(timeout=1)
        assert b"urlhaus" in fetcher.fetch("urlhaus", info["feeds"]["urlhaus"])
        assert _set_fault(info["admin_url"], "error")["mode"] == "error"
        with pytest.raises(FeedFetchError, match="HTTP 500"):
            fetcher.fetch("openphish", info["feeds"]["openphish"])
    finally:
        _stop(proc)


def test_unknown_fault_mode_is_rejected_with_400():
    proc, info = _start("devstack.feed_server")
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            _set_fault(info["admin_url"], "explode")
        assert raised.value.code == 400 and b"unknown fault mode" in raised.value.read()
    finally:
        _stop(proc)
