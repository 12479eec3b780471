"""Where alerts go: a signed HTTP POST (webhooks) or an e-mail (SMTP where the stack has a relay,
else SES). Each ``send`` returns on success and raises ``DeliveryFailed`` otherwise, saying whether
trying again could help (a 5xx, 408, 429 or a network error could; any other 4xx will not)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from ipaddress import ip_address
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3

from swordfish.alerts.events import AlertEvent
from swordfish.alerts.rules import AlertRule
from swordfish.alerts.signing import signed_headers

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "Swordfish-Alerts/1"


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False, status: int | None = None):
        super().__init__(reason)
        self.reason, self.permanent, self.status = reason[:500], permanent, status


class Channel(Protocol):
    def send(self, rule: AlertRule, event: AlertEvent, attempt: int) -> None: ...


def post_signed(http: urllib3.PoolManager, url: str, secret: str, body: bytes, *, now: float, timeout: float,
                headers: dict[str, str] | None = None) -> int:
    """POST ``body`` signed with ``secret``; the status on 2xx, else ``DeliveryFailed``. Redirects
    are not followed (a signed body goes where the rule says, nowhere else)."""
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {}),
                   **signed_headers(secret, int(now), body)}
    try:
        response = http.request("POST", url, body=body, headers=all_headers, redirect=False, retries=False,
                                timeout=urllib3.Timeout(connect=timeout, read=timeout), preload_content=False)
        try:
            response.read(4096, decode_content=False)  # a little of the answer, never a whole page
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if 200 <= response.status < 300:
        return response.status
    raise DeliveryFailed(f"the receiver answered HTTP {response.status}", status=response.status,
                         permanent=response.status not in RETRYABLE_STATUS and response.status < 500)


def private_address(url: str) -> str | None:
    """The first private, loopback, link-local or reserved address the URL's host resolves to, or
    None. A rule's URL was checked when it was made; its name may resolve inside the VPC since."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # unresolvable: the request itself fails and is retried
    for info in infos:
        address = ip_address(info[4][0].split("%")[0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved \
                or address.is_multicast or address.is_unspecified:
            return str(address)
    return None


class WebhookChannel:
    def __init__(self, *, clock: Callable[[], float], timeout: float = 5.0, http: urllib3.PoolManager | None = None,
                 allow_private: bool = False):
        self.clock, self.timeout, self.allow_private = clock, timeout, allow_private
        self.http = http or urllib3.PoolManager(num_pools=8, maxsize=4, retries=False, block=False)

    def send(self, rule: AlertRule, event: AlertEvent, attempt: int) -> None:
        if not rule.secret:
            raise DeliveryFailed("the rule has no signing secret", permanent=True)
        inside = None if self.allow_private else private_address(rule.target)
        if inside:
            raise DeliveryFailed(f"the webhook's host resolves to a private address ({inside})", permanent=True)
        post_signed(self.http, rule.target, rule.secret, event.to_json().encode(), now=self.clock(),
                    timeout=self.timeout,
                    headers={"X-Swordfish-Event": event.kind, "X-Swordfish-Event-Id": event.event_id,
                             "X-Swordfish-Delivery-Attempt": str(attempt), "X-Swordfish-Rule": str(rule.rule_id)})


def alert_email(sender: str, rule: AlertRule, event: AlertEvent) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, rule.target
    message["Subject"] = f"[Swordfish] {event.summary}"[:250].replace("\r", " ").replace("\n", " ")
    message["X-Swordfish-Event-Id"] = event.event_id
    lines = [event.summary, "", f"kind: {event.kind}", f"tenants: {', '.join(event.tenant_ids)}",
             f"at: {event.occurred_at}", ""]
    lines += [f"{key}: {value}" for key, value in event.details.items()]
    lines += ["", f"rule {rule.rule_id} ({rule.label or 'no label'}); event {event.event_id}"]
    message.set_content("\n".join(lines))
    return message


class SmtpEmailChannel:
    """Through an SMTP relay (``smtp://host:port`` or ``smtps://``; STARTTLS when the server offers it)."""

    def __init__(self, url: str, sender: str, *, timeout: float = 10.0, username: str | None = None,
                 password: str | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("the SMTP relay is smtp://host:port or smtps://host:port")
        self.host, self.port, self.tls = parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25), \
            parts.scheme == "smtps"
        self.sender, self.timeout, self.username, self.password = sender, timeout, username, password

    def send(self, rule: AlertRule, event: AlertEvent, attempt: int) -> None:
        message = alert_email(self.sender, rule, event)
        try:
            if self.tls:
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if not self.tls and client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"the relay refused the recipient: {exc}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


class SesEmailChannel:
    """Through Amazon SES (``sesv2``): the sender must be a verified identity."""

    def __init__(self, ses_client: Any, sender: str):
        self.ses, self.sender = ses_client, sender

    def send(self, rule: AlertRule, event: AlertEvent, attempt: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        message = alert_email(self.sender, rule, event)
        try:
            self.ses.send_email(FromEmailAddress=self.sender, Destination={"ToAddresses": [rule.target]},
                                Content={"Raw": {"Data": message.as_bytes()}})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise DeliveryFailed(f"SES refused: {code}", permanent=code in ("MessageRejected", "BadRequestException",
                                                                            "MailFromDomainNotVerifiedException")
                                 ) from exc
        except BotoCoreError as exc:
            raise DeliveryFailed(f"SES unreachable: {exc}") from exc
