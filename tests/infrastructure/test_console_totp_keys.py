"""The key secret the console's TOTP secrets are encrypted under: provisioned like the API-key pepper,
readable by the console function only."""

from __future__ import annotations

import json

from cdk_helpers import by_property, policy_statements
from swordfish import constants


def test_the_totp_key_secret_is_generated_and_only_the_console_and_alert_rules_read_it(prod):
    secret = by_property(prod.templates["data"], "AWS::SecretsManager::Secret", "Name",
                         constants.CONSOLE_TOTP_KEYS_SECRET_NAME)
    generator = secret["GenerateSecretString"]
    assert generator["PasswordLength"] >= 32 and generator["ExcludePunctuation"] is True  # one valid key
    readers = [(concern, lid) for concern, template in prod.templates.items()
               for lid, statement in policy_statements(template)
               if "secretsmanager:GetSecretValue" in json.dumps(statement.get("Action"))
               and "ConsoleTotpKeys" in json.dumps(statement.get("Resource"))]
    # The console (TOTP, and webhook rules' signing secrets), the API (webhook rules made with a key)
    # and the alerts dispatcher (it opens those secrets to sign): nobody else.
    assert {(concern, lid.split("Role")[0]) for concern, lid in readers} == {
        ("api", "ConsoleConsoleFunction"), ("api", "ApiFunction"), ("pipeline", "AlertsDispatcher")}
