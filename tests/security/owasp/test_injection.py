"""SQL injection and NoSQL-style operators in query parameters, paths and bodies: refused or taken
literally, never a server error, never another tenant's rows."""

from __future__ import annotations

import base64
from urllib.parse import quote

import requests

from tests.console.helpers import add_verdict
from tests.security.owasp.conftest import ANALYST

SQL_PROBES = ("' OR '1'='1", "'; DROP TABLE verdicts; --", "1) OR (1=1", "%' OR tenant_id LIKE '%", "\\'; SELECT pg_sleep(5); --")


def test_console_filters_take_sql_probes_literally(site):
    add_verdict(site.stack.info.owner_url, "acme-corp", "acme-1", subject="quarterly invoice")
    add_verdict(site.stack.info.owner_url, "globex", "globex-1", subject="globex secret plans")
    analyst = site.login(ANALYST)
    for probe in SQL_PROBES:
        for field in ("subject", "sender"):
            response = analyst.get(f"/console/tenants/acme-corp/verdicts?{field}={quote(probe)}")
            assert response.status_code == 200, (field, probe)
            assert "No verdicts match." in response.text and "globex secret plans" not in response.text
        assert analyst.get(f"/console/tenants/acme-corp/verdicts?verdict={quote(probe)}").status_code == 400
        assert analyst.get(f"/console/tenants/acme-corp/verdicts?limit={quote(probe)}").status_code == 400
        assert analyst.get(f"/console/tenants/{quote(probe, safe='')}/verdicts").status_code == 404
    # LIKE wildcards are escaped: '%' finds only subjects with a literal percent sign.
    assert "No verdicts match." in analyst.get("/console/tenants/acme-corp/verdicts?subject=%25").text
    assert "quarterly invoice" in analyst.get("/console/tenants/acme-corp/verdicts?subject=invoice").text
    assert site.sql("SELECT count(*) FROM verdicts")[0][0] == 2


def test_console_login_takes_operators_and_sql_as_plain_text(site):
    client = site.client()
    for email, password in (("' OR '1'='1' --", "x"), (ANALYST + "' --", "anything at all"),
                            ("admin@msp.example", "' OR '1'='1")):
        response = client.post_form("/console/login", "/console/login", {"email": email, "password": password})
        assert response.status_code == 401
    token = client.token("/console/login")
    operator = client.request("POST", "/console/login", data={"csrf_token": token, "email[$ne]": "x",
                                                              "password[$gt]": ""})
    assert operator.status_code == 401


def test_api_query_parameters_and_bodies_refuse_probes(site):
    add_verdict(site.stack.info.owner_url, "globex", "globex-2", subject="globex only")
    key = site.api_key("acme-corp")
    auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    base = f"{site.url}/v1/tenants/acme-corp"
    for probe in SQL_PROBES:
        assert requests.get(f"{base}/verdicts?verdict={quote(probe)}", headers=auth, timeout=10).status_code == 400
        assert requests.get(f"{base}/verdicts?limit={quote(probe)}", headers=auth, timeout=10).status_code == 400
        assert requests.get(f"{base}/verdicts?before={quote(probe)}", headers=auth, timeout=10).status_code == 400
        assert requests.get(f"{base}/verdicts/{quote(probe, safe='')}", headers=auth, timeout=10).status_code == 404
    for params in ("verdict[$ne]=clean", "verdict[$gt]=", "limit[$gt]=0"):
        response = requests.get(f"{base}/verdicts?{params}", headers=auth, timeout=10)
        assert response.status_code in (200, 400) and response.status_code < 500, params
        if response.status_code == 200:
            assert response.json()["verdicts"] == []  # never another tenant's rows
    for body in ({"raw_mime_b64": {"$gt": ""}}, {"raw_mime_b64": ["a"]}, {"$where": "1 == 1"},
                 {"raw_mime_b64": base64.b64encode(b"Subject: x\r\n\r\nhi").decode(), "message_id": {"$ne": None}}):
        response = requests.post(f"{base}/submissions", json=body, headers=auth, timeout=10)
        assert response.status_code == 400, body
    mime = base64.b64encode(b"Subject: x\r\n\r\nhi").decode()
    response = requests.post(f"{base}/submissions", json={"raw_mime_b64": mime, "message_id": SQL_PROBES[1]},
                             headers=auth, timeout=10)
    assert response.status_code == 202 and response.json()["message_id"] == SQL_PROBES[1]
    assert site.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'verdicts'")[0][0] == 1
