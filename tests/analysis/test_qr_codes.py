"""QR-code lures: real QR codes (segno) in PNG attachments, inline images, HTML data: images and PDFs
(Pillow's and fpdf2's), decoded and put through the same link analysis as body links; images without a
code, hostile images and PDFs give no signal and never raise, within bounds."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from email.message import EmailMessage

import pytest
import segno
from fpdf import FPDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from swordfish.analysis import AnalysisBudget, TenantPolicy, VerdictKind, analyze, parse_message
from swordfish.analysis import qr as qr_module
from swordfish.analysis.parse import MAX_LINKS

from .helpers import build

LURE_URL = "https://login.micros0ft-mfa.example/verify?id=8812"
BENIGN_URL = "https://www.example.org/events/2026"
LURE_TEXT = ("Your multi-factor authentication expires today. Scan the QR code below with your phone camera "
             "to re-enable MFA on your mailbox.")


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


def reason(verdict, name):
    return next(r for r in verdict.reasons if r.name == name)


def qr_png(text: str, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_image(text: str, fmt: str, size: tuple[int, int] = (640, 480)) -> bytes:
    """The code pasted into a bigger picture with other content, in a given format."""
    code = Image.open(io.BytesIO(qr_png(text))).convert("RGB")
    canvas = Image.new("RGB", size, (245, 245, 250))
    canvas.paste(code, (size[0] // 2 - code.width // 2, size[1] // 2 - code.height // 2))
    out = io.BytesIO()
    canvas.save(out, fmt)
    return out.getvalue()


def plain_png(size: tuple[int, int] = (300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def pillow_pdf(text: str) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(qr_png(text))).convert("RGB").save(out, "PDF")  # the image as a DCT (JPEG) stream
    return out.getvalue()


def fpdf_pdf(text: str | None) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Invoice 2026-1182: payment details")
    if text is not None:
        pdf.image(io.BytesIO(qr_png(text)), x=30, y=40, w=60)  # the PNG as a Flate stream
    return bytes(pdf.output())


def inline_image_message(png: bytes, body: str = LURE_TEXT) -> bytes:
    msg = EmailMessage()
    msg["From"] = "IT Service Desk <it-desk@helpdesk-notices.example>"
    msg["To"] = "j.doe@example.com"
    msg["Subject"] = "Action required: MFA"
    msg.set_content(body)
    msg.add_alternative(f"<p>{body}</p><img src=\"cid:qr1\">", subtype="html")
    msg.get_payload()[1].add_related(png, maintype="image", subtype="png", cid="<qr1>")
    return bytes(msg)


# --- decoded, and analysed like a link --------------------------------------------------------------


def test_a_qr_code_in_a_png_attachment_becomes_a_link_and_a_strong_signal_with_mfa_language():
    raw = build(sender="IT Service Desk <it-desk@helpdesk-notices.example>", subject="Action required: MFA",
                body=LURE_TEXT, attachments=[("scan-me.png", qr_png(LURE_URL), "image/png")])
    parsed = parse_message(raw)
    assert parsed.qr_codes == [("scan-me.png", LURE_URL)]
    assert any(link.url == LURE_URL and link.source == "qr" for link in parsed.links)
    v = analyze(raw)
    qr = reason(v, "QR_CODE_URL")
    assert qr.value == 3.0  # MFA/scan language, and the code is the only link
    assert LURE_URL in qr.evidence and "scan-me.png" in qr.evidence
    assert v.verdict != VerdictKind.CLEAN


def test_a_qr_code_to_a_benign_url_next_to_ordinary_links_is_only_the_weak_signal():
    raw = build(sender="Events <events@example.org>", subject="Your ticket",
                body=f"Thanks for registering. Programme: {BENIGN_URL}/programme and https://example.org/venue",
                attachments=[("ticket.png", qr_png(BENIGN_URL), "image/png")])
    v = analyze(raw)
    assert reason(v, "QR_CODE_URL").value == 1.0
    assert v.verdict == VerdictKind.CLEAN


def test_the_decoded_url_goes_through_the_threat_feed_lookup_like_any_link():
    raw = build(body="Please see the attached notice.", attachments=[("notice.png", qr_png(LURE_URL), "image/png")])
    parsed = parse_message(raw)
    assert LURE_URL in parsed.indicator_candidates()
    v = analyze(raw, indicator_hits_for=lambda c: {LURE_URL: "openphish"} if LURE_URL in c else {})
    assert "URL_IN_THREAT_FEED" in names(v) and v.verdict == VerdictKind.PHISHING
    benign = analyze(build(attachments=[("notice.png", qr_png(BENIGN_URL), "image/png")]),
                     indicator_hits_for=lambda c: {LURE_URL: "openphish"} if LURE_URL in c else {})
    assert "URL_IN_THREAT_FEED" not in names(benign)


def test_a_qr_code_to_an_ip_literal_or_a_tenant_lookalike_gets_those_signals_too():
    ip = analyze(build(attachments=[("pay.png", qr_png("http://203.0.113.77/pay/invoice"), "image/png")]))
    assert {"QR_CODE_URL", "IP_URL"} <= names(ip)
    policy = TenantPolicy(domains=["contoso.com"])
    look = analyze(build(attachments=[("sso.png", qr_png("https://sso.c0ntoso.com/login"), "image/png")]), policy)
    assert "contoso.com" in reason(look, "TENANT_LOOKALIKE_DOMAIN").evidence
    own = analyze(build(attachments=[("sso.png", qr_png("https://sso.contoso.com/login"), "image/png")]), policy)
    assert not {"LOOKALIKE_DOMAIN", "TENANT_LOOKALIKE_DOMAIN"} & names(own)


def test_inline_image_part_and_jpeg_and_gif_are_decoded():
    parsed = parse_message(inline_image_message(qr_png(LURE_URL)))
    assert parsed.qr_codes and parsed.qr_codes[0][1] == LURE_URL
    for fmt, ctype in (("JPEG", "image/jpeg"), ("GIF", "image/gif")):
        raw = build(attachments=[(f"code.{fmt.lower()}", qr_image(LURE_URL, fmt), ctype)])
        assert [url for _, url in parse_message(raw).qr_codes] == [LURE_URL], fmt


def test_an_image_inlined_as_a_data_uri_in_the_html_is_decoded():
    data = base64.b64encode(qr_png(LURE_URL)).decode()
    raw = build(body=LURE_TEXT, html=f"<p>{LURE_TEXT}</p><img src=\"data:image/png;base64,{data}\">")
    v = analyze(raw)
    assert "QR_CODE_URL" in names(v) and LURE_URL in reason(v, "QR_CODE_URL").evidence


@pytest.mark.parametrize("make_pdf", [pillow_pdf, fpdf_pdf], ids=["pillow-jpeg-stream", "fpdf2-flate-stream"])
def test_a_qr_code_on_a_pdf_page_is_decoded(make_pdf):
    raw = build(body="Invoice attached.", attachments=[("invoice.pdf", make_pdf(LURE_URL), "application/pdf")])
    parsed = parse_message(raw)
    assert parsed.qr_codes == [("invoice.pdf page 1", LURE_URL)]
    assert "QR_CODE_URL" in names(analyze(raw))


def test_images_and_pdfs_without_a_code_give_no_signal():
    raw = build(body=LURE_TEXT, attachments=[("logo.png", plain_png(), "image/png"),
                                             ("invoice.pdf", fpdf_pdf(None), "application/pdf")])
    parsed = parse_message(raw)
    assert parsed.qr_codes == [] and not [link for link in parsed.links if link.source == "qr"]
    assert "QR_CODE_URL" not in names(analyze(raw))


def test_a_code_that_is_not_a_link_is_not_a_qr_url():
    raw = build(attachments=[("wifi.png", qr_png("WIFI:S:Guest;T:WPA;P:welcome2026;;"), "image/png"),
                             ("ticket.png", qr_png("TICKET-7781-AA-0042"), "image/png")])
    parsed = parse_message(raw)
    assert parsed.qr_codes == [] and "QR_CODE_URL" not in names(analyze(raw))


def test_a_bare_domain_in_a_code_is_read_as_the_link_a_phone_would_open():
    parsed = parse_message(build(attachments=[("c.png", qr_png("micros0ft-login.example/a"), "image/png")]))
    assert parsed.qr_codes == [("c.png", "http://micros0ft-login.example/a")]


# --- hostile images: no exception, bounded work ------------------------------------------------------


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + \
        chunk(b"IEND", b"")


def test_truncated_corrupt_and_bomb_images_never_raise_and_are_not_decoded():
    good = qr_png(LURE_URL)
    hostile = [("truncated.png", good[: len(good) // 2]), ("garbage.png", b"\x89PNG\r\n\x1a\n" + b"\xff" * 500),
               ("bomb.png", _png_declaring(60_000, 60_000)), ("wide.png", _png_declaring(2_000_000, 1)),
               ("fake.jpg", b"\xff\xd8\xff" + b"\x00" * 100), ("fake.gif", b"GIF89a" + b"\x01" * 40)]
    raw = build(attachments=[(name, data, "image/png") for name, data in hostile])
    started = time.thread_time()
    parsed = parse_message(raw)
    assert time.thread_time() - started < 5.0  # hang guard only
    assert parsed.qr_codes == []
    v = analyze(raw)
    assert "ANALYSIS_ERROR" not in names(v) and "QR_CODE_URL" not in names(v)


def test_hostile_pdfs_never_raise():
    pdf = fpdf_pdf(LURE_URL)
    for data in (pdf[: len(pdf) // 2], pdf.replace(b"/Width", b"/Width 99999999 /X"), b"%PDF-1.7\n" + b"\x00" * 300,
                 b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"):
        scan = qr_module.QrScan()
        qr_module.scan_pdf(data, "x.pdf", scan, AnalysisBudget())
        v = analyze(build(attachments=[("x.pdf", data, "application/pdf")]))
        assert "ANALYSIS_ERROR" not in names(v)


_VALID = {"png": qr_png(LURE_URL), "pdf": pillow_pdf(LURE_URL)}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["png", "pdf"]), seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 40),
       junk=st.binary(max_size=64))
def test_mutated_images_and_pdfs_never_raise(kind, seed, edits, junk):
    """Real PNGs and PDFs with bytes overwritten and junk spliced in: decoding never raises."""
    import random

    rng = random.Random(seed)
    data = bytearray(_VALID[kind])
    for _ in range(edits):
        at = rng.randrange(8, len(data))  # keep the magic bytes: the decoders, not the sniffer, must cope
        data[at:at + len(junk) // 4 + 1] = junk[: len(junk) // 4 + 1] or b"\x00"
    scan = qr_module.QrScan()
    scanner = qr_module.scan_pdf if kind == "pdf" else qr_module.scan_image
    scanner(bytes(data), "m", scan, AnalysisBudget(seconds=5.0))
    assert len(scan.codes) <= qr_module.MAX_CODES
    verdict = analyze(build(attachments=[(f"m.{kind}", bytes(data), "application/octet-stream")]))
    assert "ANALYSIS_ERROR" not in names(verdict)


def test_two_hundred_images_are_bounded_by_the_image_cap(monkeypatch):
    png = qr_png(LURE_URL)
    raw = build(attachments=[(f"img{i}.png", png if i == 150 else plain_png((100, 100)), "image/png")
                             for i in range(200)])
    scanned: list[str] = []
    original = qr_module._decode

    def counting(image, where, scan):
        scanned.append(where)
        original(image, where, scan)

    monkeypatch.setattr(qr_module, "_decode", counting)
    parsed = parse_message(raw, budget=AnalysisBudget(seconds=60.0))
    assert len(scanned) == qr_module.MAX_IMAGES
    assert parsed.qr_codes == []  # the code was in image 150, past the cap: bounded, not exhaustive


def test_big_images_are_bounded_by_pixels_and_a_big_jpeg_is_decoded_scaled_down():
    screenshot = plain_png((1920, 1080))  # over the per-image cap: not decoded at all
    scan = qr_module.QrScan()
    qr_module.scan_image(screenshot, "s.png", scan, AnalysisBudget(seconds=60.0))
    assert scan.images == 0 and scan.skipped == ["s.png: 1920x1080 pixels, over the 1,000,000 decoded per image"]
    photo = qr_image(LURE_URL, "JPEG", size=(2400, 1800))  # 4.3 Mpx: decoded at half scale, code found
    scan = qr_module.QrScan()
    qr_module.scan_image(photo, "p.jpg", scan, AnalysisBudget(seconds=60.0))
    assert scan.codes == [("p.jpg", LURE_URL)] and scan.pixels <= qr_module.MAX_IMAGE_PIXELS


def _costly_decoding(monkeypatch, now: list[float], cost: float) -> None:
    original = qr_module._decode

    def slow(image, where, scan):  # each decode "costs" `cost` budget seconds
        original(image, where, scan)
        now[0] += cost

    monkeypatch.setattr(qr_module, "_decode", slow)


THREE_CODES = [f"https://one-of-three.example/{i}" for i in range(3)]
THREE_IMAGES = build(attachments=[(f"{i}.png", qr_png(url), "image/png") for i, url in enumerate(THREE_CODES)])


def test_decoding_stops_at_the_analysis_budget_only_when_it_is_spent(monkeypatch):
    now = [0.0]
    _costly_decoding(monkeypatch, now, 7.0)  # the timer is the last resort: no share of it stops decoding early
    parsed = parse_message(THREE_IMAGES, budget=AnalysisBudget(seconds=10.0, clock=lambda: now[0]))
    assert [url for _, url in parsed.qr_codes] == THREE_CODES[:2]  # the second started at 7 s of 10
    assert parsed.budget_exceeded  # 14 s spent before the third: not started, and the verdict says so


def test_a_budget_spent_entirely_on_decoding_says_so(monkeypatch):
    now = [0.0]
    _costly_decoding(monkeypatch, now, 11.0)
    parsed = parse_message(THREE_IMAGES, budget=AnalysisBudget(seconds=10.0, clock=lambda: now[0]))
    assert [url for _, url in parsed.qr_codes] == THREE_CODES[:1] and parsed.budget_exceeded
    now[0] = 0.0
    v = analyze(THREE_IMAGES, budget=AnalysisBudget(seconds=10.0, clock=lambda: now[0]))
    assert "ANALYSIS_BUDGET_EXCEEDED" in names(v)


def test_a_message_without_images_does_not_touch_the_decoder(monkeypatch):
    def fail(*_args, **_kwargs):
        raise AssertionError("decoder called for a message without images")

    monkeypatch.setattr(qr_module, "_decode", fail)
    v = analyze(build(body=f"See {BENIGN_URL}", attachments=[("notes.txt", b"plain text", "text/plain")]))
    assert "QR_CODE_URL" not in names(v)


def test_a_codes_url_is_not_crowded_out_by_a_pdf_full_of_links():
    uris = b"".join(b"<< /URI (https://filler%d.example/) >>\n" % i for i in range(400))
    filler = b"%PDF-1.4\n" + uris + b"%%EOF"
    raw = build(attachments=[("links.pdf", filler, "application/pdf"), ("code.png", qr_png(LURE_URL), "image/png")])
    parsed = parse_message(raw)
    assert len(parsed.links) == MAX_LINKS and any(link.url == LURE_URL and link.source == "qr" for link in parsed.links)
