"""Issue 26, items 2 and 3: a lock-out that cannot be turned against a real user, and TOTP guesses
limited per account across sign-ins. The console on the test database and Redis, injected clock."""

from __future__ import annotations

import pytest

from tests.console.helpers import PASSWORD, get, make_harness, post_form

# A user without a second factor: an auditor (every role that can release mail has one).
ADMIN, AUDITOR = "admin@msp.example", "auditor@acme.example"


@pytest.fixture()
def console(database, redis_url):
    harness = make_harness(database, redis_url)
    harness.deps.redis.flushdb()
    harness.add_user(ADMIN, "msp_admin", [])
    harness.add_user(AUDITOR, "auditor", ["acme-corp"])
    yield harness
    harness.deps.redis.flushdb()
    harness.deps.database.close()


def _password(console, client, email, password):
    return post_form(client, "/console/login", "/console/login", {"email": email, "password": password})


def _code(console, client, code):
    return post_form(client, "/console/login/totp", "/console/login/totp", {"code": code})


def _audit(console, action):
    import psycopg

    with psycopg.connect(console.superuser_url) as conn:
        return conn.execute("SELECT count(*) FROM console_audit WHERE action = %s", (action,)).fetchone()[0]


def test_wrong_passwords_from_many_addresses_cannot_keep_an_admin_with_totp_out(console):
    for i in range(12):  # a botnet: one wrong password from each of 12 addresses (the account locks at 10)
        assert _password(console, console.client(f"203.0.113.{i}"), ADMIN, f"guess {i}").status_code in (401, 429)
    owner = console.client("192.0.2.10")
    response = console.login(owner, ADMIN)  # the right password and the right code
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/"), response.status_code
    assert get(owner, "/console/").status_code == 200
    # The pattern is on record (audit and log) for the MSP to see.
    assert _audit(console, "login.attack_suspected") >= 1


def test_a_user_without_totp_is_let_in_from_an_address_that_signed_in_before(console):
    home = console.client("192.0.2.20")
    assert console.login(home, AUDITOR).status_code == 302
    post_form(home, "/console/", "/console/logout", {})
    for i in range(12):
        _password(console, console.client(f"203.0.113.{i}"), AUDITOR, f"guess {i}")
    # From an address never seen, the account's short lock (at most a minute) applies...
    stranger = console.login(console.client("198.51.100.99"), AUDITOR)
    assert stranger.status_code == 429 and int(stranger.headers["Retry-After"]) <= 61
    # ... but not to the address the auditor signed in from before.
    assert console.login(console.client("192.0.2.20"), AUDITOR).status_code == 302


def test_the_account_lock_never_outlasts_a_minute_and_one_guess_a_minute_only_slows(console):
    for i in range(10):
        _password(console, console.client(f"203.0.113.{i}"), AUDITOR, f"guess {i}")
    for minute in range(3):  # one more guess each time the lock ends
        console.clock.advance(61)
        _password(console, console.client(f"203.0.114.{minute}"), AUDITOR, "again")
    waits = []
    for _ in range(3):
        response = console.login(console.client("198.51.100.7"), AUDITOR)
        if response.status_code == 302:
            break
        waits.append(int(response.headers["Retry-After"]))
        console.clock.advance(waits[-1])
    assert response.status_code == 302 and all(w <= 61 for w in waits)


def test_one_source_guessing_one_account_is_locked_even_with_the_right_password(console):
    attacker = console.client("203.0.113.50")
    assert [_password(console, attacker, AUDITOR, f"guess {i}").status_code for i in range(5)] == [401] * 5
    assert console.login(attacker, AUDITOR).status_code == 429
    assert console.login(console.client("192.0.2.30"), AUDITOR).status_code == 302  # the owner elsewhere is not


def test_totp_guesses_are_counted_per_account_across_sign_ins(console):
    attacker = console.client("203.0.113.60")  # knows the password, guesses codes
    statuses = []
    for _ in range(4):
        assert _password(console, attacker, ADMIN, PASSWORD).status_code == 302  # clears nothing of the TOTP count
        for _ in range(3):
            statuses.append(_code(console, attacker, "000000").status_code)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
    # The lock is the account's: another address with the right code waits too, then gets in.
    owner = console.client("192.0.2.40")
    assert _password(console, owner, ADMIN, PASSWORD).status_code == 302
    locked = _code(console, owner, console.totp_code(ADMIN))
    assert locked.status_code == 429
    console.clock.advance(int(locked.headers["Retry-After"]) + 30)  # a fresh step: the code is new
    assert _password(console, owner, ADMIN, PASSWORD).status_code == 302
    assert _code(console, owner, console.totp_code(ADMIN)).status_code == 302
    assert _audit(console, "login.totp_failed") == 5
