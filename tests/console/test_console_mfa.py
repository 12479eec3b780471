"""Second factor: a QR code to enrol (the same otpauth URI as the printed key), and a way back for
a sole admin who lost the phone: `swordfish console reset-user`, audited with the operator."""

from __future__ import annotations

import base64
import io
import re

import psycopg
from swordfish.cli import main

from tests.console.helpers import get

ADMIN = "admin@msp.example"


def test_enrolment_shows_a_qr_code_of_the_key(console):
    import zxingcpp
    from PIL import Image

    console.add_user(ADMIN, "msp_admin", [], totp=False)
    client = console.client()
    assert console.login(client, ADMIN).headers["Location"].endswith("/console/login/totp/enrol")
    page = get(client, "/console/login/totp/enrol").get_data(as_text=True)
    uri = re.search(r"<code>(otpauth://[^<]+)</code>", page).group(1).replace("&amp;", "&")
    png = base64.b64decode(re.search(r'id="totp-qr" src="data:image/png;base64,([^"]+)"', page).group(1))
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert decoded.text == uri


def test_a_sole_admin_who_lost_the_phone_is_reset_from_the_cli_and_it_is_audited(console, settings_env, capsys):
    settings_env(operator="olivia@msp.example", admin_database_url=console.owner_url)
    user_id = console.add_user(ADMIN, "msp_admin", [])
    assert main(["console", "reset-user", ADMIN, "--base-url", "https://console.example"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://console.example/console/invite/")
    with psycopg.connect(console.superuser_url) as conn:
        row = conn.execute("SELECT password_hash, totp_secret, totp_enabled FROM console_users WHERE user_id = %s",
                           (user_id,)).fetchone()
        audit = conn.execute("SELECT actor, actor_role, action, object_id FROM console_audit "
                             "WHERE action = 'user.reset'").fetchall()
    assert row == (None, None, False)
    assert audit == [("olivia@msp.example", "cli", "user.reset", str(user_id))]
    client = console.client()
    assert console.login(client, ADMIN).status_code != 302  # the old password no longer works
    assert get(client, link.removeprefix("https://console.example")).status_code == 200  # the link does
    assert main(["console", "reset-user", "nobody@msp.example"]) == 1
