"""The verdict detail shows the message itself, and "release from quarantine" really releases it.

On the embedded stack: the real processor (raw archive on, in moto S3), the real console behind the
local gateway, real PostgreSQL, and the Nango stand-in, whose mailboxes move messages between
folders. The hostile message is phishing, so the pipeline quarantines it through Nango first.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from swordfish import constants
from swordfish.pipeline.submission import MailboxSource, Submission

from tests.console.helpers import PASSWORD, add_verdict
from tests.console.hostile_mail import HOSTILE_HEADER, hostile_message
from tests.pipeline.helpers import failed_ids, invoke, receive_event, send_bodies
from tests.security.owasp.browser import chromium, sign_in
from tests.security.owasp.conftest import ADMIN, ANALYST, AUDITOR, GLOBEX_ANALYST

CONNECTION = "demo-m365"


class PixelServer:
    """Stands in for the tracker a remote image would call: counts every request it gets."""

    def __init__(self):
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pixel.gif"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def pixel():
    with PixelServer() as server:
        yield server


@pytest.fixture()
def archive_on(settings_env):
    from swordfish import wiring

    settings_env(raw_mail_archive_bucket=f"{constants.BACKUP_BUCKET_PREFIX}-000000000000-eu-west-1")
    wiring.reset()


def deliver(site, raw: bytes, *, plain_id: bool = False) -> str:
    """Put ``raw`` in a mailbox and run it through the real pipeline; returns its message id."""
    provider_id = f"AAMk-{uuid.uuid4().hex[:10]}"
    message_id = provider_id if plain_id else f"<{provider_id}@acme-corp.example>"
    site.stack.nango.add_message(CONNECTION, provider_id, raw)
    body = Submission(tenant_id="acme-corp", message_id=message_id, submitted_at=datetime.now(UTC),
                      source=MailboxSource(connection_id=CONNECTION, provider_config_key="microsoft",
                                           provider_message_id=provider_id)).model_dump_json()
    send_bodies(site.stack, [body])
    assert failed_ids(invoke(receive_event(site.stack, 1))) == set()
    return message_id


def provider_id(message_id: str) -> str:
    return message_id.strip("<>").split("@")[0]


def page(message_id: str, tenant: str = "acme-corp") -> str:
    return f"/console/tenants/{tenant}/verdicts/{quote(message_id, safe='')}"


def audit_rows(site, action: str) -> list[tuple]:
    return site.sql("SELECT actor, outcome, after FROM console_audit WHERE action = %s ORDER BY audit_id", (action,))


def test_the_detail_shows_headers_text_and_the_html_only_sanitised_in_a_sandboxed_frame(site, archive_on, pixel):
    message_id = deliver(site, hostile_message(pixel.url, marker="detail-1"))
    [(verdict, key, line)] = site.sql("SELECT verdict, raw_archive_key, raw_archive_line FROM verdicts "
                                      "WHERE message_id = %s", (message_id,))
    assert verdict == "phishing" and key.startswith(constants.RAW_MAIL_ARCHIVE_PREFIX) and line == 0
    html = site.login(ANALYST).get(page(message_id)).text
    assert "X-Hostile: &lt;script&gt;window.__pwned" in html  # headers as text
    assert "<script>window.__pwned" not in html
    assert "Your mailbox password expires today. Verify now" in html  # the text/plain part
    frame = html[html.index('<iframe class="mail"'):]
    frame = frame[:frame.index("</iframe>")]
    assert 'sandbox=""' in frame and "allow-" not in frame
    assert "srcdoc=\"" in frame and "&lt;p&gt;" in frame and "detail-1" in frame  # escaped into the attribute
    for banned in ("script", "onerror", "onload", "form", "javascript:", "127.0.0.1", "href"):
        assert banned not in frame.split("srcdoc=", 1)[1].lower(), banned
    [(actor, outcome, after)] = audit_rows(site, "verdict.content_view")
    assert (actor, outcome, after["html"]) == (ANALYST, "ok", True)
    assert pixel.hits == []


def test_content_of_another_tenants_message_is_a_404_and_content_without_archive_says_why(site, archive_on):
    message_id = deliver(site, hostile_message("https://tracker.example/p.gif", marker="iso"))
    globex = site.login(GLOBEX_ANALYST)
    assert globex.get(page(message_id)).status_code == 404
    assert globex.get(page(message_id, tenant="globex")).status_code == 404
    assert audit_rows(site, "verdict.content_view") == []  # nothing was read for them
    add_verdict(site.stack.info.owner_url, "acme-corp", "no-archive-1")
    html = site.login(ANALYST).get(page("no-archive-1")).text
    assert 'id="content-unavailable"' in html and "no archived copy" in html
    assert [r[1] for r in audit_rows(site, "verdict.content_view")] == ["failed"]


def test_release_moves_the_message_back_through_nango_and_is_recorded_once(site, archive_on):
    message_id = deliver(site, hostile_message("https://tracker.example/p.gif", marker="release-ok"))
    nango = site.stack.nango
    assert nango.folder_of(CONNECTION, provider_id(message_id)) == "junkemail"
    analyst = site.login(ANALYST)
    assert "Release from quarantine" in analyst.get(page(message_id)).text
    response = analyst.post_form(page(message_id), page(message_id), {"action": "release", "note": "user asked"})
    assert response.status_code == 302, response.text
    assert nango.folder_of(CONNECTION, provider_id(message_id)) == "inbox"
    assert site.sql("SELECT state, released_by FROM mailbox_quarantines WHERE message_id = %s",
                    (message_id,)) == [("released", ANALYST)]
    assert site.sql("SELECT actor, note FROM verdict_releases WHERE message_id = %s",
                    (message_id,)) == [(ANALYST, "user asked")]
    again = analyst.post_form(page(message_id), page(message_id), {"action": "release"})
    assert again.status_code == 409 and "already released" in again.text
    assert [r[1] for r in audit_rows(site, "verdict.release")] == ["ok", "refused"]
    assert "Released to the inbox by" in analyst.get(page(message_id)).text


def test_a_message_never_quarantined_cannot_be_released(site, archive_on):
    add_verdict(site.stack.info.owner_url, "acme-corp", "never-quarantined")
    analyst = site.login(ANALYST)
    response = analyst.post_form(page("never-quarantined"), page("never-quarantined"), {"action": "release"})
    assert response.status_code == 409 and "never quarantined" in response.text
    assert site.sql("SELECT count(*) FROM verdict_releases")[0][0] == 0
    [(actor, outcome, after)] = audit_rows(site, "verdict.release")
    assert (actor, outcome) == (ANALYST, "refused") and "never quarantined" in after["reason"]


@pytest.mark.parametrize(("fault", "status", "kind"), [("error", 503, "unavailable"), ("gone", 410, "gone")])
def test_when_nango_fails_the_analyst_is_told_and_nothing_is_marked_released(site, archive_on, fault, status, kind):
    message_id = deliver(site, hostile_message("https://tracker.example/p.gif", marker=f"fail-{fault}"))
    nango, mailbox_id = site.stack.nango, provider_id(message_id)
    analyst = site.login(ANALYST)
    form = analyst.token(page(message_id))
    if fault == "gone":
        with nango._mail_lock:
            del nango.mailboxes[CONNECTION][mailbox_id]  # the owner deleted it meanwhile
    else:
        nango.set_fault("error", paths=[f"/proxy/v1.0/me/messages/{mailbox_id}/move"])
    try:
        response = analyst.request("POST", page(message_id), data={"action": "release", "csrf_token": form})
    finally:
        nango.set_fault("ok")
    assert response.status_code == status and "Not released" in response.text
    assert site.sql("SELECT state FROM mailbox_quarantines WHERE message_id = %s", (message_id,)) == [("quarantined",)]
    assert site.sql("SELECT count(*) FROM verdict_releases WHERE message_id = %s", (message_id,)) == [(0,)]
    [(_, outcome, after)] = audit_rows(site, "verdict.release")
    assert outcome == "failed" and after["kind"] == kind
    if fault == "error":  # Nango back: the same release now works
        assert analyst.post_form(page(message_id), page(message_id), {"action": "release"}).status_code == 302
        assert nango.folder_of(CONNECTION, mailbox_id) == "inbox"


def test_auditors_cannot_release_and_are_audited(site, archive_on):
    message_id = deliver(site, hostile_message("https://tracker.example/p.gif", marker="auditor"))
    auditor = site.login(AUDITOR)
    assert "Release from quarantine" not in auditor.get(page(message_id)).text
    response = auditor.post_form(page(message_id), page(message_id), {"action": "release"})
    assert response.status_code == 403
    assert site.stack.nango.folder_of(CONNECTION, provider_id(message_id)) == "junkemail"
    assert [(r[0], r[1]) for r in audit_rows(site, "verdict.release")] == [(AUDITOR, "refused")]
    admin = site.login(ADMIN)  # an MSP admin may
    assert admin.post_form(page(message_id), page(message_id), {"action": "release"}).status_code == 302


# The frame has three walls: nh3, the empty sandbox, and the console's CSP (which a srcdoc frame
# inherits). "permissive" takes the CSP away, to prove the first two hold on their own.
@pytest.mark.parametrize("page_csp", ["strict", "permissive"])
def test_in_a_real_browser_the_hostile_html_runs_nothing_and_loads_no_remote_image(site, archive_on, pixel,
                                                                                   monkeypatch, page_csp):
    from selenium.webdriver.common.by import By
    from swordfish.security import headers

    if page_csp == "permissive":
        monkeypatch.setattr(headers, "CONSOLE_CSP", "default-src * data: 'unsafe-inline' 'unsafe-eval'")

    message_id = deliver(site, hostile_message(pixel.url, marker="browser"))
    with chromium() as driver:
        sign_in(driver, site.url, ANALYST, PASSWORD, site.users[ANALYST][1])
        driver.get(site.url + page(message_id))
        headers = driver.find_element(By.ID, "headers").text
        assert f"X-Hostile: {HOSTILE_HEADER}" in headers  # markup in a header is shown as text
        frame = driver.find_element(By.ID, "mail-html")
        assert frame.get_attribute("sandbox") == ""
        driver.switch_to.frame(frame)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Your mailbox password expires today" in body and "browser" in body
        assert driver.find_elements(By.TAG_NAME, "form") == [] and driver.find_elements(By.TAG_NAME, "script") == []
        assert driver.execute_script("return window.__pwned === undefined")  # the frame's own window
        driver.switch_to.default_content()
        assert driver.execute_script("return window.__pwned === undefined")
        assert driver.execute_script("return document.documentElement.dataset.consoleScript") == "loaded"
        alerts = [e for e in driver.get_log("browser") if "alert" in e.get("message", "").lower()]
        assert alerts == []
    assert pixel.hits == []  # the tracking pixel (and the CSS background) never called home


def test_the_api_releases_with_the_same_rules(site, archive_on):
    import requests

    message_id = deliver(site, hostile_message("https://tracker.example/p.gif", marker="api"), plain_id=True)
    url = f"{site.url}/v1/tenants/acme-corp/verdicts/{quote(message_id, safe='')}/release"

    def post(tenant_key: str, target: str = url):
        return requests.post(target, json={"analyst": "soc@acme-corp.example", "comment": "user asked"},
                             headers={"Authorization": f"Bearer {site.api_key(tenant_key)}"}, timeout=20)

    assert post("globex").status_code == 403  # another tenant's key
    shown = requests.get(url.removesuffix("/release"), headers={"Authorization": f"Bearer {site.api_key('acme-corp')}"},
                         timeout=20).json()
    assert shown["message_id"] == message_id and not any(k.startswith("raw_archive") for k in shown)
    assert post("acme-corp", url.replace(quote(message_id, safe=""), "no-such-message")).status_code == 404
    site.stack.nango.set_fault("error", paths=[f"/proxy/v1.0/me/messages/{provider_id(message_id)}/move"])
    try:
        failed = post("acme-corp")
    finally:
        site.stack.nango.set_fault("ok")
    assert failed.status_code == 503 and "nothing was released" in failed.json()["message"]
    assert site.sql("SELECT state FROM mailbox_quarantines WHERE message_id = %s", (message_id,)) == [("quarantined",)]
    released = post("acme-corp")
    assert released.status_code == 200, released.text
    # Who released it is the key; the name in the body is kept as what it is, a claim (issue 26).
    released_by = released.json()["released_by"]
    assert released.json()["state"] == "released" and released_by.startswith("api-key:")
    assert released_by.endswith("(stated: soc@acme-corp.example)")
    assert site.stack.nango.folder_of(CONNECTION, provider_id(message_id)) == "inbox"
    assert post("acme-corp").status_code == 409
    rows = site.sql("SELECT actor_role, outcome FROM console_audit WHERE action = 'verdict.release' ORDER BY audit_id")
    assert rows == [("api", "failed"), ("api", "ok"), ("api", "refused")]


def test_with_graphs_changing_ids_the_page_and_the_release_follow_the_moved_message(site, archive_on):
    nango = site.stack.nango
    nango.new_ids_on_move = True  # as Graph without immutable ids: every move gives a new id
    try:
        message_id = deliver(site, hostile_message("https://tracker.example/p.gif", marker="moved"))
        original = provider_id(message_id)
        [(junk_id,)] = site.sql("SELECT provider_message_id FROM mailbox_quarantines WHERE message_id = %s",
                                (message_id,))
        assert junk_id != original and nango.folder_of(CONNECTION, junk_id) == "junkemail"
        analyst = site.login(ANALYST)
        assert "moved" in analyst.get(page(message_id)).text  # fetched by its id in Junk Email
        assert analyst.post_form(page(message_id), page(message_id), {"action": "release"}).status_code == 302
        [(inbox_id,)] = site.sql("SELECT provider_message_id FROM mailbox_quarantines WHERE message_id = %s",
                                 (message_id,))
        assert inbox_id not in (original, junk_id) and nango.folder_of(CONNECTION, inbox_id) == "inbox"
        assert "moved" in analyst.get(page(message_id)).text  # and by its id in the inbox after
    finally:
        nango.new_ids_on_move = False
