"""RDS Proxy's connection pool as the code now uses it: transaction multiplexing, nothing that
pins sessions or sets session state, and a borrow that fails fast enough to be retried.

With no pinning, every transaction borrows a database connection from the proxy. When all of them
are busy, the proxy makes the client wait up to ConnectionBorrowTimeout (AWS's default: 120 s),
longer than any function that talks to the database may run: a saturated database would show up
as function timeouts with no reason recorded, instead of DatabaseUnavailable and a retry.
"""

from __future__ import annotations

from cdk_helpers import only
from swordfish import constants

AWS_DEFAULT_BORROW_TIMEOUT_SECONDS = 120
DATABASE_FUNCTION_TIMEOUTS = (constants.PROCESSOR_TIMEOUT_SECONDS, constants.API_TIMEOUT_SECONDS,
                              constants.REMEDIATION_TIMEOUT_SECONDS)


def pool_config(synthesised) -> dict:
    return only(synthesised.templates["data"], "AWS::RDS::DBProxyTargetGroup").get(
        "ConnectionPoolConfigurationInfo", {})


def test_a_connection_borrow_fails_within_a_third_of_the_shortest_function_timeout(prod, dev):
    for synthesised in (prod, dev):
        borrow = pool_config(synthesised).get("ConnectionBorrowTimeout", AWS_DEFAULT_BORROW_TIMEOUT_SECONDS)
        assert borrow == constants.DB_PROXY_BORROW_TIMEOUT_SECONDS
        assert borrow * 3 <= min(DATABASE_FUNCTION_TIMEOUTS)


def test_the_proxy_sets_no_session_state_and_keeps_its_share_of_the_database(prod):
    config = pool_config(prod)
    # An init query would run on every database connection: session state the code no longer
    # needs (the roles carry their timeouts); pinning filters exist for MySQL only.
    assert "InitQuery" not in config and "SessionPinningFilters" not in config
    assert config["MaxConnectionsPercent"] == 90
