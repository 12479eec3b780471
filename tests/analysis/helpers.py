"""Paths to real mail (the repo's samples/ and the shared corpus beside the repo) and a message builder."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
CORPUS = REPO.parent / "shared" / "corpus"
SA = CORPUS / "spamassassin-t-data"
SUBLIME = CORPUS / "sublime-emls"


def mail(path: Path) -> bytes:
    return path.read_bytes()


def build(*, sender: str = '"Sam Jones" <sam@partner-firm.com>', subject: str = "Hello",
          body: str = "Hi,\n\nsee you tomorrow.\n", html: str | None = None,
          headers: dict[str, str] | None = None,
          attachments: list[tuple[str, bytes, str]] | None = None) -> bytes:
    """A well-formed message for tests of one signal at a time."""
    msg = EmailMessage()
    for name, value in (headers or {}).items():
        msg[name] = value
    msg["From"] = sender
    msg["To"] = "j.doe@example.com"
    msg["Subject"] = subject
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, ctype in attachments or []:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)
