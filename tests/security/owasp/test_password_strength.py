"""Issue 26, item 4: weak and breached passwords are refused at any length, by a strength estimate
(zxcvbn) that knows the product, the MSP, the tenants and the user's e-mail (NIST SP 800-63B)."""

from __future__ import annotations

import pytest
from swordfish.console import passwords

from tests.security.owasp.conftest import ADMIN


@pytest.mark.parametrize("weak", ["P@ssw0rd1234", "passwordpassword", "Summer2024!!", "trustno1trustno1",
                                  "Swordfish2026!", "swordfish-console-2025", "qwertyuiop123", "123456789012",
                                  "aaaaaaaaaaaaaaaa"])
def test_weak_and_breached_passwords_are_refused_at_any_length(weak):
    with pytest.raises(passwords.PasswordRejected):
        passwords.check_password(weak, email="ann@acme.example")


@pytest.mark.parametrize(("password", "context"), [
    ("AcmeCorp-2026!", ["acme-corp", "Acme Corp"]),  # the tenant's name with a year
    ("Northwind-MSP-2026", ["Northwind MSP"]),  # the MSP's name
])
def test_context_words_make_a_password_weak(password, context):
    passwords.check_password(password + " zebra quill", email="ann@other.example", context=context)  # long: fine
    with pytest.raises(passwords.PasswordRejected):
        passwords.check_password(password, email="ann@other.example", context=context)


def test_the_users_own_e_mail_is_a_context_word():
    with pytest.raises(passwords.PasswordRejected):
        passwords.check_password("jonathan.harker1897", email="jonathan.harker@carfax.example")


@pytest.mark.parametrize("good", ["tangerine ladder quietly", "a brand new passphrase",
                                  "correct horse battery staple", "Vq7#mT2!pL9zR4",
                                  "tangerine ladder quietly over the hill " * 6])  # 234: past zxcvbn's 72
def test_strong_passwords_and_passphrases_pass(good):
    assert passwords.check_password(good, email="ann@acme.example") == good


def test_the_refusal_says_why(site):
    admin = site.login(ADMIN)
    response = admin.post_form("/console/users", "/console/users",
                               {"email": "weak.pw@acme.example", "role": "auditor", "tenants": "acme-corp"})
    link = response.text.split('id="invite-link">')[1].split("<")[0]
    path = link[link.index("/console/invite/"):]
    invitee = site.client()
    refused = invitee.post_form(path, path, {"password": "Summer2024!!", "password_confirm": "Summer2024!!"})
    assert refused.status_code == 400 and "guess" in refused.text


def test_production_hashes_are_argon2id_at_owasp_strength_or_above(production_password_hasher):
    """The test process hashes cheaply (tests/conftest.py); what the console ships is this."""
    from argon2 import extract_parameters

    params = extract_parameters(production_password_hasher.hash("correct horse battery staple"))
    assert (params.type.name, params.time_cost, params.memory_cost, params.parallelism) == ("ID", 3, 65536, 4)
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2  # OWASP's argon2id minimum
