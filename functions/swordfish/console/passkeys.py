"""Passkeys (WebAuthn) through py_webauthn (the ``webauthn`` package): the options a browser needs
to create or use a passkey, and the checks of what it sends back (challenge, origin, relying-party
id, signature, user verification). A discoverable credential with user verification is a whole
sign-in: the device and its PIN or biometric, bound to this console's origin."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

RP_NAME = "Swordfish console"
CHALLENGE_SECONDS = 300


class PasskeyRefused(ValueError):
    """What the browser sent is not a valid passkey answer to our challenge (the reason, short)."""


def relying_party(host_url: str) -> tuple[str, str]:
    """(rp id, origin) of the console as the browser reached it: the host name, and scheme://host[:port]."""
    parts = urlsplit(host_url)
    return parts.hostname or "", f"{parts.scheme}://{parts.netloc}"


def registration_options(rp_id: str, user_id: int, email: str, display_name: str,
                         existing: list[bytes]) -> tuple[str, bytes]:
    """(options as JSON for the browser, the challenge to keep until the answer)."""
    options = generate_registration_options(
        rp_id=rp_id, rp_name=RP_NAME, user_name=email, user_id=str(user_id).encode(),
        user_display_name=display_name or email,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing])  # one passkey per device
    return options_to_json(options), options.challenge


def verify_registration(credential: str, challenge: bytes, rp_id: str, origin: str) -> tuple[bytes, bytes, int]:
    """(credential id, public key, sign count) of a new passkey, or PasskeyRefused."""
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id, expected_origin=origin,
                                                require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(str(exc)[:200] or type(exc).__name__) from exc
    return verified.credential_id, verified.credential_public_key, verified.sign_count


def authentication_options(rp_id: str) -> tuple[str, bytes]:
    """Options for any of the user's discoverable passkeys (no user named before the answer)."""
    options = generate_authentication_options(rp_id=rp_id, user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options), options.challenge


def credential_id(credential: str) -> bytes:
    """Which passkey answered (to find its public key), or PasskeyRefused."""
    try:
        return parse_authentication_credential_json(credential).raw_id
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(str(exc)[:200] or type(exc).__name__) from exc


def verify_authentication(credential: str, challenge: bytes, rp_id: str, origin: str, public_key: bytes,
                          sign_count: int) -> int:
    """The authenticator's new sign count, or PasskeyRefused (a replayed or cloned authenticator's
    count that does not grow is refused by py_webauthn)."""
    try:
        verified = verify_authentication_response(credential=credential, expected_challenge=challenge,
                                                  expected_rp_id=rp_id, expected_origin=origin,
                                                  credential_public_key=public_key,
                                                  credential_current_sign_count=sign_count,
                                                  require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(str(exc)[:200] or type(exc).__name__) from exc
    return verified.new_sign_count


def body_text(raw: bytes) -> str:
    """The request body as the JSON text py_webauthn parses; PasskeyRefused if it is not JSON at all."""
    try:
        text = raw.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PasskeyRefused("not JSON") from exc
    return text
