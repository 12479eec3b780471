"""JSON Schemas for the two OCSF 1.5.0 classes the SIEM export writes, from the class definitions
(ocsf-schema: events/network/email_activity.json, events/application/api_activity.json, the base
event, the metadata, product, email and api objects, the security_control profile): every
attribute the class marks required, the enums we use, and no attribute the class does not define."""

from __future__ import annotations

BASE = ["activity_id", "activity_name", "category_name", "category_uid", "class_name", "class_uid", "count",
        "duration", "end_time", "enrichments", "message", "metadata", "observables", "raw_data", "severity",
        "severity_id", "start_time", "status", "status_code", "status_detail", "status_id", "time",
        "timezone_offset", "type_name", "type_uid", "unmapped"]
SECURITY_CONTROL = ["action", "action_id", "attacks", "authorizations", "disposition", "disposition_id",
                    "firewall_rule", "malware", "policy", "risk_level", "risk_level_id"]
EMAIL_ACTIVITY = ["attempt", "banner", "command", "direction", "direction_id", "dst_endpoint", "email",
                  "email_auth", "from", "message_trace_uid", "protocol_name", "smtp_hello", "src_endpoint", "to"]
API_ACTIVITY = ["actor", "api", "dst_endpoint", "http_request", "http_response", "resources", "src_endpoint"]

METADATA = {"type": "object", "required": ["version", "product"],
            "properties": {"version": {"const": "1.5.0"},
                           "product": {"type": "object", "required": ["vendor_name"],
                                       "properties": {"vendor_name": {"type": "string", "minLength": 1},
                                                      "name": {"type": "string"}, "version": {"type": "string"}}},
                           "uid": {"type": "string"}, "tenant_uid": {"type": "string"},
                           "correlation_uid": {"type": ["string", "null"]}, "logged_time": {"type": "integer"},
                           "profiles": {"type": "array", "items": {"type": "string"}}},
            "additionalProperties": False}
SEVERITY = {"enum": [0, 1, 2, 3, 4, 5, 6, 99]}
STATUS = {"enum": [0, 1, 2, 99]}


def _common(class_uid: int, category_uid: int, activities: list[int], extra: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid"],
        "properties": {
            "class_uid": {"const": class_uid}, "category_uid": {"const": category_uid},
            "activity_id": {"enum": activities}, "type_uid": {"type": "integer"}, "time": {"type": "integer"},
            "severity_id": SEVERITY, "status_id": STATUS, "metadata": METADATA, "message": {"type": "string"},
        },
        "propertyNames": {"enum": BASE + extra},
    }


EMAIL_ACTIVITY_SCHEMA = _common(4009, 4, [0, 1, 2, 3, 4, 5, 99], EMAIL_ACTIVITY + SECURITY_CONTROL)
EMAIL_ACTIVITY_SCHEMA["required"] += ["email", "direction_id"]
EMAIL_ACTIVITY_SCHEMA["properties"] |= {
    "direction_id": {"enum": [0, 1, 2, 3, 99]},
    "disposition_id": {"enum": list(range(0, 28)) + [99]},
    "email": {"type": "object", "required": ["from", "to"],
              "properties": {"from": {"type": "string", "minLength": 1},
                             "to": {"type": "array", "items": {"type": "string"}},
                             "subject": {"type": "string"}, "uid": {"type": "string"},
                             "message_uid": {"type": "string"}, "reply_to": {"type": "string"}},
              "propertyNames": {"enum": ["cc", "delivered_to", "from", "message_uid", "raw_header", "reply_to",
                                         "size", "smtp_from", "smtp_to", "subject", "to", "x_originating_ip", "uid"]}},
}

API_ACTIVITY_SCHEMA = _common(6003, 6, [0, 1, 2, 3, 4, 99], API_ACTIVITY)
API_ACTIVITY_SCHEMA["required"] += ["actor", "api", "src_endpoint"]
API_ACTIVITY_SCHEMA["properties"] |= {
    "actor": {"type": "object", "minProperties": 1},
    "api": {"type": "object", "required": ["operation"], "properties": {"operation": {"type": "string"}}},
    "src_endpoint": {"type": "object", "minProperties": 1},
}
