"""The slow decoders (PDFs, QR codes in images and PDFs, archives, HTML, big attachments) stop at
deterministic work limits (pages, objects, images, pixels, members, characters, bytes), not at the
analysis budget's timer: the same message gets the same verdict on a fast machine and on a slow one.
What a limit leaves unexamined is named in a CONTENT_NOT_EXAMINED reason (weight 0), never dropped in
silence. The fixtures are built here (corpus mail is not committed): a PDF whose page image needs
PNG predictors undone (fpdf2 embeds PNGs so: what made a 440 KB phishing PDF take 268 ms in one
call), PDFs of thousands of pages, big screenshots and photos, stacks of archives and HTML files.

CPU-time limits here are hang guards (an order of magnitude above the expected time); the assertions
that matter are about what was and was not examined."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib

import pytest
import segno
from fpdf import FPDF
from PIL import Image
from pypdf.filters import FlateDecode
from swordfish.analysis import AnalysisBudget, analyze, parse_message
from swordfish.analysis import parse as parse_module
from swordfish.analysis import qr as qr_module

from .helpers import build

LURE_URL = "https://login.micros0ft-mfa.example/verify?id=8812"
HANG_GUARD_SECONDS = 1.0


def names(verdict) -> set[str]:
    return {r.name for r in verdict.reasons}


def not_examined(verdict) -> str:
    return next((r.evidence for r in verdict.reasons if r.name == "CONTENT_NOT_EXAMINED"), "")


def cpu(fn, *args, **kwargs):
    started = time.thread_time()
    result = fn(*args, **kwargs)
    return result, time.thread_time() - started


def qr_png(text: str, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def noisy_picture(size: tuple[int, int], code: str | None = None, fmt: str = "PNG", mode: str = "RGB",
                  noise: float = 50) -> bytes:
    """A photo-like picture (noise compresses badly, like a photo or a scan; a little of it over a gradient
    compresses like a screenshot), with a QR code pasted in."""
    picture = Image.effect_noise(size, noise)
    if noise < 50:
        picture = Image.blend(picture, Image.linear_gradient("L").resize(size), 0.9)
    picture = picture.convert(mode)
    if code is not None:
        qr = Image.open(io.BytesIO(qr_png(code))).convert(mode)
        picture.paste(qr, (size[0] // 2 - qr.width // 2, size[1] // 2 - qr.height // 2))
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


def pdf_with_pages(pages: int, picture: bytes | None = None) -> bytes:
    """fpdf2 PDF; `picture` (a PNG) on the first page, embedded as fpdf2 embeds PNGs: the PNG's own
    zlib stream under /FlateDecode with /Predictor 15, so each row carries its PNG filter."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=10)
    for number in range(pages):
        pdf.add_page()
        pdf.cell(text=f"Statement page {number + 1}")
        if number == 0 and picture is not None:
            pdf.image(io.BytesIO(picture), x=20, y=30, w=150)
    return bytes(pdf.output())


def zip_of(names_: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names_:
            zf.writestr(name, b"x")
    return buf.getvalue()


class FastClock:
    """The budget's clock running `factor` times faster than the thread's CPU time: the machine seen as
    that much slower (a busy neighbour, a small Lambda)."""

    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self) -> float:
        return time.thread_time() * self.factor


def same_verdict_on_a_slow_machine(raw: bytes) -> tuple:
    normal = analyze(raw)
    slow = analyze(raw, budget=AnalysisBudget(clock=FastClock(20.0)))
    return normal, slow


def summary(verdict) -> tuple:
    return verdict.verdict, verdict.score, sorted((r.name, r.weight, r.evidence) for r in verdict.reasons), \
        verdict.budget_exceeded


# --- PDFs -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_predictor_pdf() -> bytes:
    return pdf_with_pages(2, noisy_picture((800, 800), LURE_URL, noise=5))


def test_a_qr_code_in_a_big_png_predicted_pdf_image_is_decoded_in_c_not_in_pypdfs_python_loop(
        big_predictor_pdf, monkeypatch):
    def python_loop(*_args, **_kwargs):
        raise AssertionError("pypdf's pure-Python PNG predictor ran (~140 ns a byte: 190 ms for this image)")

    monkeypatch.setattr(FlateDecode, "_decode_png_prediction", staticmethod(python_loop))
    raw = build(body="Statement attached.", attachments=[("statement.pdf", big_predictor_pdf, "application/pdf")])
    parsed, seconds = cpu(parse_message, raw)
    assert parsed.qr_codes == [("statement.pdf page 1", LURE_URL)]
    assert seconds < HANG_GUARD_SECONDS


def _png_rows(image: Image.Image) -> bytes:
    """The zlib stream of a PNG's IDAT chunks: rows, each with its PNG filter byte (Pillow picks them)."""
    out = io.BytesIO()
    image.save(out, "PNG")
    png, at, idat = out.getvalue(), 8, b""
    while at < len(png):
        length = struct.unpack(">I", png[at:at + 4])[0]
        if png[at + 4:at + 8] == b"IDAT":
            idat += png[at + 8:at + 8 + length]
        at += 12 + length
    return idat


def image_pdf(image: Image.Image, predictor: bool) -> bytes:
    """A one-page PDF written by hand around one image XObject: its samples under /FlateDecode, with the
    PNG predictors (/Predictor 15) or without, in the colour space of the image's mode."""
    width, height = image.size
    bpc, space, colors = {"1": (1, b"/DeviceGray", 1), "L": (8, b"/DeviceGray", 1), "RGB": (8, b"/DeviceRGB", 3),
                          "CMYK": (8, b"/DeviceCMYK", 4), "P": (8, b"", 1)}[image.mode]
    if image.mode == "P":
        palette = bytes(image.getpalette()[:768])
        space = b"[/Indexed /DeviceRGB %d <%s>]" % (len(palette) // 3 - 1, palette.hex().encode())
    if predictor:
        data = _png_rows(image)
        parms = b"/DecodeParms << /Predictor 15 /Columns %d /Colors %d /BitsPerComponent %d >>" % (width, colors, bpc)
    else:
        data, parms = zlib.compress(image.tobytes()), b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent %d "
        b"/Filter /FlateDecode %s /Length %d >>\nstream\n%s\nendstream" % (width, height, space, bpc, parms, len(data), data),
        b"<< /Length 31 >>\nstream\nq 300 0 0 300 50 400 cm /Im0 Do Q\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


@pytest.mark.parametrize("mode, predictor", [("L", True), ("RGB", True), ("P", True), ("1", True),
                                             ("L", False), ("RGB", False), ("CMYK", False), ("P", False)])
def test_pdf_images_in_each_colour_space_are_decoded_from_their_samples(mode, predictor):
    picture = Image.open(io.BytesIO(noisy_picture((300, 300), LURE_URL))).convert(mode)
    scan = qr_module.QrScan()
    qr_module.scan_pdf(image_pdf(picture, predictor), "p.pdf", scan, AnalysisBudget(seconds=60.0))
    assert scan.codes == [("p.pdf page 1", LURE_URL)], scan.skipped


def test_a_pdf_over_the_object_limit_is_not_opened_and_the_verdict_says_so():
    huge = pdf_with_pages(3_000)
    assert huge.count(b"endobj") > qr_module.MAX_PDF_OBJECTS
    raw = build(body="Statement attached.", attachments=[("statement.pdf", huge, "application/pdf")])
    verdict, seconds = cpu(analyze, raw)
    assert seconds < HANG_GUARD_SECONDS  # pypdf took 280 ms to open it and walk its page tree
    assert "statement.pdf" in not_examined(verdict) and "objects" in not_examined(verdict)
    reason = next(r for r in verdict.reasons if r.name == "CONTENT_NOT_EXAMINED")
    assert reason.weight == 0.0 and not verdict.budget_exceeded


def test_a_pdf_whose_cross_reference_table_is_broken_gets_a_lower_object_limit():
    pdf = pdf_with_pages(100)
    broken = pdf[:pdf.rfind(b"startxref")] + b"startxref\n9\n%%EOF\n"  # pypdf then reads every object to rebuild it
    scan = qr_module.QrScan()
    _, seconds = cpu(qr_module.scan_pdf, broken, "b.pdf", scan, AnalysisBudget(seconds=60.0))
    assert seconds < HANG_GUARD_SECONDS
    assert scan.skipped and "cross-reference" in scan.skipped[0]
    scan = qr_module.QrScan()
    qr_module.scan_pdf(pdf, "ok.pdf", scan, AnalysisBudget(seconds=60.0))  # the same PDF, intact: opened
    assert not any("objects" in s for s in scan.skipped)


def test_only_the_first_pages_are_read_and_the_rest_is_named():
    pdf = pdf_with_pages(150, qr_png(LURE_URL))
    scan = qr_module.QrScan()
    qr_module.scan_pdf(pdf, "long.pdf", scan, AnalysisBudget(seconds=60.0))
    assert scan.codes == [("long.pdf page 1", LURE_URL)]
    assert any(f"pages {qr_module.MAX_PDF_PAGES + 1}-150" in s for s in scan.skipped)


def test_pdfs_past_the_per_message_count_are_not_opened_and_are_named():
    pdfs = [(f"doc{i}.pdf", pdf_with_pages(1, qr_png(f"https://pdf{i}.example/x")), "application/pdf")
            for i in range(qr_module.MAX_PDFS + 2)]
    verdict = analyze(build(body="Documents attached.", attachments=pdfs))
    parsed = parse_message(build(body="Documents attached.", attachments=pdfs))
    assert [url for _, url in parsed.qr_codes] == [f"https://pdf{i}.example/x" for i in range(qr_module.MAX_PDFS)]
    assert f"doc{qr_module.MAX_PDFS}.pdf" in not_examined(verdict)


# --- images -----------------------------------------------------------------------------------------


def test_images_past_the_pixel_allowance_are_named_in_the_verdict():
    shots = [(f"shot{i}.png", noisy_picture((900, 700), noise=5), "image/png") for i in range(3)]
    verdict = analyze(build(body="Screenshots of the error.", attachments=shots))
    assert "shot1.png" in not_examined(verdict) and "900x700" in not_examined(verdict)
    assert "CONTENT_NOT_EXAMINED" in names(verdict) and not verdict.budget_exceeded


def test_a_phone_photo_over_the_byte_limit_is_not_decoded_and_is_named():
    photo = noisy_picture((2600, 2000), fmt="JPEG", noise=60)  # a JPEG decodes at ~10 ns a byte, at any scale
    assert qr_module.MAX_IMAGE_BYTES < len(photo) < parse_module.MAX_DECODED_BYTES
    verdict = analyze(build(body="Photos from the site visit.", attachments=[("IMG_2231.jpg", photo, "image/jpeg")]))
    assert "IMG_2231.jpg" in not_examined(verdict) and f"over the {qr_module.MAX_IMAGE_BYTES:,}" in not_examined(verdict)


def test_data_uri_images_past_the_image_count_are_named():
    import base64

    out = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 120, 200)).save(out, "PNG")  # a banner, no code
    png = base64.b64encode(out.getvalue()).decode()
    verdict = analyze(build(html="<p>Hi</p>" + f'<img src="data:image/png;base64,{png}">' * 12))
    assert f"images in the HTML body past the {qr_module.MAX_IMAGES} images" in not_examined(verdict)


# --- archives, HTML, big attachments ---------------------------------------------------------------


def test_archives_past_the_per_message_count_are_not_opened_and_are_named():
    zips = [(f"part{i}.zip", zip_of([f"doc{i}.txt"]), "application/zip") for i in range(parse_module.MAX_ARCHIVES + 3)]
    parsed = parse_message(build(attachments=zips))
    opened = [a for a in parsed.attachments if a.members]
    assert len(opened) == parse_module.MAX_ARCHIVES
    verdict = analyze(build(attachments=zips))
    assert f"part{parse_module.MAX_ARCHIVES}.zip" in not_examined(verdict)


def test_an_archive_over_the_entry_limit_is_named_and_one_within_it_is_listed():
    crowded = zip_of([f"f{i}.txt" for i in range(parse_module.MAX_ARCHIVE_ENTRIES + 1)])
    verdict = analyze(build(attachments=[("many.zip", crowded, "application/zip")]))
    assert "many.zip" in not_examined(verdict) and "entries" in not_examined(verdict)
    fine = analyze(build(attachments=[("few.zip", zip_of(["a.txt", "b.txt"]), "application/zip")]))
    assert "CONTENT_NOT_EXAMINED" not in names(fine)


def test_an_archive_inside_an_archive_is_named_as_not_opened():
    inner = zip_of(["payload.exe"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.zip", inner)
        zf.writestr("readme.txt", b"x")
    parsed = parse_message(build(attachments=[("outer.zip", buf.getvalue(), "application/zip")]))
    assert parsed.attachments[0].members == ("inner.zip", "readme.txt")
    assert any("outer.zip" in n and "inner.zip" in n for n in parsed.not_examined)


def test_html_attachments_past_the_per_message_characters_are_named():
    page = ("<p>" + "word " * 60_000 + '<a href="https://x.example/">x</a></p>').encode()
    count = parse_module.MAX_MESSAGE_HTML_CHARS // len(page) + 2
    verdict = analyze(build(attachments=[(f"p{i}.html", page, "text/html") for i in range(count)]))
    assert f"p{count - 1}.html" in not_examined(verdict)


def test_attachment_bytes_past_the_per_message_limit_are_not_opened_and_are_named():
    chunk = parse_module.MAX_DECODED_BYTES // 2
    raw = build(body="Logs attached.", attachments=[("a.bin", os.urandom(chunk), "application/octet-stream"),
                                                     ("b.bin", os.urandom(chunk), "application/octet-stream"),
                                                     ("tool.exe", b"MZ\x90\x00" * 10, "application/octet-stream")])
    verdict = analyze(raw)
    assert "EXECUTABLE_ATTACHMENT" in names(verdict)  # a small attachment after the big ones is still opened
    assert "b.bin" in not_examined(verdict) and not verdict.budget_exceeded


# --- the same verdict on a slow machine --------------------------------------------------------------


def heavy_messages() -> dict[str, bytes]:
    """Built like the heaviest mail of the bench corpus (0.5-2 MB: screenshots, photos, PDFs with pictures,
    archives, HTML), with more of each kind than a limit lets through."""
    photo = noisy_picture((2400, 1800), LURE_URL, fmt="JPEG", noise=20)
    return {
        "pdf-heavy": build(subject="Statement", body="Your statement is attached.",
                           attachments=[("statement.pdf", pdf_with_pages(2, noisy_picture((600, 600), LURE_URL, noise=5)),
                                         "application/pdf"),
                                        ("annex.pdf", pdf_with_pages(150), "application/pdf"),
                                        ("long.pdf", pdf_with_pages(700), "application/pdf")]),
        "qr-images": build(subject="Action required: MFA", body="Scan the code to re-enable MFA.",
                           attachments=[("photo.jpg", photo, "image/jpeg"),
                                        *[(f"shot{i}.png", noisy_picture((700, 500), noise=5), "image/png")
                                          for i in range(4)],
                                        ("code.png", qr_png(LURE_URL), "image/png")]),
        "archives": build(subject="Invoices", body="All invoices attached.",
                          attachments=[(f"inv{i}.zip", zip_of([f"inv{i}-{j}.pdf" for j in range(n)]), "application/zip")
                                       for i, n in enumerate([900, 1_500, 300, 300, 300, 300, 300, 300])]),
        "html": build(subject="Newsletter", html="<p>" + '<a href="https://n.example/a">a</a> text ' * 10_000,
                      attachments=[(f"page{i}.html", ("<p>word</p>" * 30_000).encode(), "text/html")
                                   for i in range(3)]),
    }


def test_heavy_messages_get_the_same_verdict_with_a_clock_twenty_times_faster():
    """The verdict is decided by the work limits, not by the timer: with the budget's clock running 20x
    faster than real (a machine 20x slower), the heavy messages get the same verdict, reasons and
    evidence, and none of them reaches the timer."""
    for name, raw in heavy_messages().items():
        normal, slow = same_verdict_on_a_slow_machine(raw)
        assert summary(slow) == summary(normal), name
        assert not normal.budget_exceeded and "CONTENT_NOT_EXAMINED" in names(normal), name


def test_the_timer_is_still_the_last_resort():
    class Stepping:
        def __init__(self):
            self.now = 0.0

        def __call__(self):
            self.now += 10.0  # every read of the clock: ten seconds
            return self.now

    raw = build(body="hello", attachments=[("a.png", qr_png(LURE_URL), "image/png")])
    verdict = analyze(raw, budget=AnalysisBudget(clock=Stepping()))
    assert verdict.budget_exceeded and "ANALYSIS_BUDGET_EXCEEDED" in names(verdict)
