from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.console.helpers import make_harness
from tests.security.owasp.browser import chromium


@pytest.fixture()
def console(database, redis_url):
    harness = make_harness(database, redis_url)
    yield harness
    harness.deps.database.close()


# Browser tests: one Chromium per module (starting it is the slow part).
@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture()
def served(console, browser):
    """The harness's console over HTTP on localhost (Chromium keeps __Host- cookies for localhost)."""
    server = make_server("127.0.0.1", 0, console.app, threaded=True)
    port = server.server_address[1]
    console.app.config["SERVER_NAME"] = f"localhost:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    browser.delete_all_cookies()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        browser.get("about:blank")
        browser.delete_all_cookies()
