"""The JSON Schema AppConfig validates flag deployments with (functions/swordfish/features/flags.schema.json)
agrees with Powertools' own feature-flag SchemaValidator: what Powertools would refuse at run time,
AppConfig refuses at deployment."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from aws_lambda_powertools.utilities.feature_flags.exceptions import SchemaValidationError
from aws_lambda_powertools.utilities.feature_flags.schema import RuleAction, SchemaValidator

from stacks.flags_stack import FLAGS_FILE, FLAGS_SCHEMA_FILE

SCHEMA = json.loads(FLAGS_SCHEMA_FILE.read_text())
FLAGS = json.loads(FLAGS_FILE.read_text())
RULE = {"when_match": True, "conditions": [{"action": "EQUALS", "key": "tenant_id", "value": "acme"}]}


def schema_accepts(document) -> bool:
    try:
        jsonschema.Draft4Validator(SCHEMA).validate(document)
    except jsonschema.ValidationError:
        return False
    return True


def powertools_accepts(document) -> bool:
    try:
        SchemaValidator(copy.deepcopy(document)).validate()
    except SchemaValidationError:
        return False
    return True


def test_the_schema_is_a_valid_draft4_schema():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-04/schema#"  # what AppConfig validators take


def test_the_repo_flags_file_is_accepted():
    assert schema_accepts(FLAGS) and powertools_accepts(FLAGS)


def test_every_powertools_rule_action_and_nothing_else_is_allowed():
    actions = SCHEMA["definitions"]["condition"]["properties"]["action"]["enum"]
    assert sorted(actions) == sorted(a.value for a in RuleAction)


GOOD = [
    {},  # every flag removed: Powertools serves nothing, callers get their defaults
    {"kill_switch": {"default": True}},
    {"flag": {"default": False, "rules": {"tenants": {"when_match": True, "conditions": [
        {"action": "KEY_IN_VALUE", "key": "tenant_id", "value": ["acme", "globex"]}]}}}},
    {"flag": {"default": False, "boolean_type": True, "rules": {"acme": RULE}}},
    {"tier": {"default": {"limit": 5}, "boolean_type": False,
              "rules": {"acme": {"when_match": {"limit": 50}, "conditions": RULE["conditions"]}}}},
    {"flag": {"default": False, "rules": {"window": {"when_match": True, "conditions": [
        {"action": "MODULO_RANGE", "key": "tenant_bucket", "value": {"BASE": 100, "START": 0, "END": 9}}]}}}},
]
BROKEN = {
    "not an object": ["auto_quarantine"],
    "no default": {"auto_quarantine": {"rules": {"acme": RULE}}},
    "null default": {"auto_quarantine": {"default": None}},
    "string default on a boolean flag": {"auto_quarantine": {"default": "false"}},
    "non-boolean when_match on a boolean flag": {"auto_quarantine": {"default": False, "rules": {
        "acme": {"when_match": "yes", "conditions": RULE["conditions"]}}}},
    "rules is a list": {"auto_quarantine": {"default": False, "rules": [RULE]}},
    "no conditions": {"auto_quarantine": {"default": False, "rules": {"acme": {"when_match": True}}}},
    "empty conditions": {"auto_quarantine": {"default": False, "rules": {
        "acme": {"when_match": True, "conditions": []}}}},
    "unknown action": {"auto_quarantine": {"default": False, "rules": {"acme": {"when_match": True, "conditions": [
        {"action": "EQUALS_IGNORE_CASE", "key": "tenant_id", "value": "acme"}]}}}},
    "empty key": {"auto_quarantine": {"default": False, "rules": {"acme": {"when_match": True, "conditions": [
        {"action": "EQUALS", "key": "", "value": "acme"}]}}}},
    "null value": {"auto_quarantine": {"default": False, "rules": {"acme": {"when_match": True, "conditions": [
        {"action": "EQUALS", "key": "tenant_id", "value": None}]}}}},
    "feature is empty": {"auto_quarantine": {}},
}


@pytest.mark.parametrize("document", GOOD)
def test_documents_powertools_accepts_are_accepted(document):
    assert powertools_accepts(document)
    assert schema_accepts(document)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_flag_document_is_rejected(name):
    document = BROKEN[name]
    assert not schema_accepts(document), name
    if isinstance(document, dict):  # Powertools refuses it too: the schema is not stricter than the runtime
        assert not powertools_accepts(document), name
