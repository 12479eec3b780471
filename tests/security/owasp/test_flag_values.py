"""Issue 26, item 10: a flag's value is checked against the flag's declared type before any
deployment; NaN and Infinity are refused whatever the type."""

from __future__ import annotations

import pytest

from tests.security.owasp.conftest import ADMIN

FLAG = "auto_quarantine"  # declared boolean


def _deployed(site) -> dict:
    from swordfish import wiring

    return wiring.build_console_dependencies().flag_document()[1]


def test_a_boolean_flag_takes_only_true_or_false_from_the_console(site):
    admin = site.login(ADMIN)
    audit_rows = site.sql("SELECT count(*) FROM flag_audit")[0][0]
    before = _deployed(site)[FLAG]
    for value in ('"true"', "[true]", "1", "0", "Infinity", "-Infinity", "NaN", '{"a": 1}', "null"):
        response = admin.post_form("/console/flags", "/console/flags", {"flag": FLAG, "value": value})
        assert response.status_code in (200, 400), (value, response.status_code)  # the form with its error
        assert "refused" in response.text or "not JSON" in response.text, value
    assert _deployed(site)[FLAG] == before
    assert site.sql("SELECT count(*) FROM flag_audit")[0][0] == audit_rows


def test_the_flag_admin_refuses_a_value_of_the_wrong_type_whoever_calls_it(site):
    from swordfish import wiring
    from swordfish.features.admin import FlagChangeError

    admin = wiring.build_console_dependencies().flag_admin("test")
    for value in (float("nan"), float("inf"), "yes", [True], 1):
        with pytest.raises(FlagChangeError, match="boolean|finite"):
            admin.set_default(FLAG, value)
        with pytest.raises(FlagChangeError, match="boolean|finite"):
            admin.target(FLAG, tenants=["acme-corp"], value=value)
    assert _deployed(site)[FLAG].get("default") is False
