"""Flags (read for auditors, changed by admins through the audited flag path) and deep health,
through the real console on the embedded stack."""

from __future__ import annotations

from tests.security.owasp.conftest import ADMIN, AUDITOR

FLAG = "detector_qr_code_lure"


def test_auditors_read_flags_and_admins_change_them_through_the_audited_path(site):
    auditor = site.login(AUDITOR)
    page = auditor.get("/console/flags")
    assert page.status_code == 200 and FLAG in page.text and ">set</button>" not in page.text
    refused = auditor.post_form("/console/flags", "/console/flags", {"flag": FLAG, "value": "true"})
    assert refused.status_code == 403
    admin = site.login(ADMIN)
    audit_rows = site.sql("SELECT count(*) FROM flag_audit")[0][0]
    try:
        changed = admin.post_form("/console/flags", "/console/flags", {"flag": FLAG, "value": "true", "reason": "trial"})
        assert changed.status_code == 302
        assert '"default": true' in str(site.sql("SELECT after::text FROM flag_audit ORDER BY audit_id DESC LIMIT 1"))
        assert site.sql("SELECT actor, reason FROM flag_audit ORDER BY audit_id DESC LIMIT 1") == [
            (f"console:{ADMIN}", "trial")]
        assert site.sql("SELECT before->>'default', after->>'default' FROM console_audit WHERE action = 'flag.set' "
                        "AND outcome = 'ok'") == [
            ("false", "true")]
        bad = admin.post_form("/console/flags", "/console/flags", {"flag": FLAG, "value": "not json"})
        assert bad.status_code == 400 and "is not JSON" in bad.text  # a refused form is a 400 (issue 26)
    finally:
        admin.post_form("/console/flags", "/console/flags", {"flag": FLAG, "value": "false", "reason": "restore"})
    assert site.sql("SELECT count(*) FROM flag_audit")[0][0] == audit_rows + 2


def test_deep_health_is_for_admins_only(site):
    admin = site.login(ADMIN)
    page = admin.get("/console/health")
    assert page.status_code == 200 and "postgresql" in page.text.lower()
    assert site.login(AUDITOR).get("/console/health").status_code == 403
