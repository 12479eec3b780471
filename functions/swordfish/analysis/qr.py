"""QR codes in images and PDFs: the link of a QR-code lure ("quishing") is in pixels, out of reach of
URL scanning, so the codes are decoded and their URLs join the message's links.

zxing-cpp decodes (a maintained C++ decoder with wheels for x86_64 and manylinux aarch64, no system
library); Pillow reads PNG, JPEG and GIF; pypdf reaches the images a PDF embeds. Every step is bounded:
images are only decoded when their header declares a size within the pixel caps (a decompression bomb
is a few bytes declaring gigapixels), a message gets a pixel allowance for all its images together,
the analysis budget is checked before each image, and any error in a hostile image or PDF means "no
code found", never an exception. Only messages that carry images or PDFs pay any of this.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass, field

import pypdf
import zxingcpp
from PIL import Image

from .budget import AnalysisBudget

MAX_IMAGE_BYTES = 5_000_000  # an image file larger than this is a photo, not a lure
MAX_PDF_BYTES = 10_000_000
MAX_IMAGES = 8  # images decoded per message (attachments, inline parts and PDF images together)
# Decoding the pixels costs more than finding the code (a 1600x1200 PNG screenshot: ~30 ms to inflate,
# ~3 ms in zxing-cpp), so the caps are on pixels decoded. A lure's picture is small; a screenshot or
# a photo is not scanned at full size: a JPEG is decoded at a reduced scale, a bigger PNG/GIF not at all.
MAX_IMAGE_PIXELS = 1_000_000  # decoded per image; a bigger JPEG is decoded at a reduced scale within it
MAX_MESSAGE_PIXELS = 1_500_000  # all images of one message together (~20 ms of decoding at most)
MIN_SIDE = 21  # the smallest QR code (version 1) is 21 modules: anything smaller is a spacer or a pixel
MAX_PDF_PAGES = 3  # a lure puts its code on the first page
MAX_PDF_IMAGES_PER_PAGE = 6
MAX_CODES = 5  # decoded texts kept per message
MAX_CODE_CHARS = 2_000
BUDGET_SHARE = 0.6  # no image is started once this share of the analysis budget is spent

_FORMATS = ("PNG", "JPEG", "GIF")  # the only decoders Pillow may try on mail content
_QR = zxingcpp.BarcodeFormat.QRCode | zxingcpp.BarcodeFormat.MicroQRCode

# pypdf's own limits, far tighter than its defaults (75 MB per stream): an image within MAX_IMAGE_PIXELS
# needs at most a few megabytes, and nothing here may start an external decoder (jbig2dec).
_PDF_LIMITS = {
    "maximum_declared_stream_length": MAX_PDF_BYTES,
    "zlib_maximum_output_length": 4 * MAX_IMAGE_PIXELS,
    "lzw_maximum_output_length": 4 * MAX_IMAGE_PIXELS,
    "run_length_maximum_output_length": 4 * MAX_IMAGE_PIXELS,
    "brotli_maximum_output_length": 4 * MAX_IMAGE_PIXELS,
    "array_based_stream_maximum_output_length": 4 * MAX_IMAGE_PIXELS,
    "image_maximum_buffer_size": 4 * MAX_IMAGE_PIXELS,
    "stream_decoding_work_maximum_length": 8 * MAX_IMAGE_PIXELS,
    "page_tree_maximum_entries": 10_000,
    "jbig2dec_binary": None,
}

# pypdf logs every oddity of a malformed PDF; hostile input must not flood the function's logs.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(slots=True)
class QrScan:
    """What one message's images held, and what was left unscanned (with why)."""

    codes: list[tuple[str, str]] = field(default_factory=list)  # (where, decoded text)
    images: int = 0  # images decoded
    pixels: int = 0
    skipped: list[str] = field(default_factory=list)

    def room(self) -> bool:
        return self.images < MAX_IMAGES and self.pixels < MAX_MESSAGE_PIXELS and len(self.codes) < MAX_CODES

    def skip(self, why: str) -> None:
        if len(self.skipped) < 10:
            self.skipped.append(why)


def _within_budget(budget: AnalysisBudget) -> bool:
    """Decoding stops once BUDGET_SHARE of the budget is spent, leaving the rest for the links and the
    scoring (images left unscanned are listed in QrScan.skipped); a budget spent entirely is recorded as
    such, like at every other step."""
    if budget.exceeded("QR codes"):
        return False
    return budget.spent() <= budget.seconds * BUDGET_SHARE


def scan_image(data: bytes, where: str, scan: QrScan, budget: AnalysisBudget) -> None:
    """Decode the QR codes of one PNG/JPEG/GIF image into `scan`. Never raises."""
    if not scan.room():
        return
    if not _within_budget(budget):
        scan.skip(f"{where}: analysis budget")
        return
    if len(data) > MAX_IMAGE_BYTES:
        scan.skip(f"{where}: {len(data):,} bytes")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about bomb-sized headers; the caps below decide
            with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
                _decode(image, where, scan)
    except Exception:  # noqa: BLE001 - truncated, corrupt or hostile image: no code found in it
        scan.skip(f"{where}: unreadable image")


def _decode(image: Image.Image, where: str, scan: QrScan) -> None:
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        return
    if width * height > MAX_IMAGE_PIXELS and image.format == "JPEG":
        # a JPEG decodes at 1/2, 1/4 or 1/8 scale for a fraction of the cost; draft picks the smallest
        # scale at least the requested size, so ask for a quarter of the cap to land within it (a
        # lure's code has modules of several pixels and survives this)
        factor = math.sqrt(MAX_IMAGE_PIXELS / 4 / (width * height))
        image.draft("L", (max(MIN_SIDE, int(width * factor)), max(MIN_SIDE, int(height * factor))))
        width, height = image.size
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS or scan.pixels + pixels > MAX_MESSAGE_PIXELS:
        scan.skip(f"{where}: {width}x{height} pixels")
        return
    scan.images += 1
    scan.pixels += pixels
    gray = image.convert("L")  # decodes the pixels (the first frame of a GIF)
    for barcode in zxingcpp.read_barcodes(gray, formats=_QR, try_rotate=False):
        text = barcode.text.strip()[:MAX_CODE_CHARS]
        if text and len(scan.codes) < MAX_CODES:
            scan.codes.append((where, text))


def scan_pdf(data: bytes, where: str, scan: QrScan, budget: AnalysisBudget) -> None:
    """Decode the QR codes of the images on a PDF's first pages into `scan`. Never raises."""
    if not scan.room() or not _within_budget(budget):
        return
    if len(data) > MAX_PDF_BYTES:
        scan.skip(f"{where}: {len(data):,} bytes")
        return
    try:
        with pypdf.apply_configuration(**_PDF_LIMITS):
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            for page_number, page in enumerate(reader.pages[:MAX_PDF_PAGES], 1):
                for image_object in _page_images(page)[:MAX_PDF_IMAGES_PER_PAGE]:
                    if not scan.room() or not _within_budget(budget):
                        return
                    _pdf_image(image_object, f"{where} page {page_number}", scan)
    except Exception:  # noqa: BLE001 - encrypted, broken or hostile PDF: no code found in it
        scan.skip(f"{where}: unreadable PDF")


def _page_images(page) -> list:
    """The image XObjects a page draws, read from its resources (pypdf's `page.images` would decode
    every one of them before we could look at their declared sizes)."""
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is None:
        return []
    out = []
    for ref in list(xobjects.get_object().values())[:50]:
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            out.append(obj)
    return out


def _pdf_image(obj, where: str, scan: QrScan) -> None:
    try:
        width, height = int(obj.get("/Width", 0)), int(obj.get("/Height", 0))
        if min(width, height) < MIN_SIDE:
            return
        is_jpeg = obj.get("/Filter") == "/DCTDecode"
        if width * height > MAX_IMAGE_PIXELS and not is_jpeg:  # a JPEG is scaled down while decoding
            scan.skip(f"{where}: {width}x{height} pixels")
            return
        if is_jpeg:
            raw = obj.get_data()  # the JPEG file itself
            with Image.open(io.BytesIO(raw), formats=("JPEG",)) as image:
                _decode(image, where, scan)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = obj.decode_as_image()
        if image is not None:
            _decode(image, where, scan)
    except Exception:  # noqa: BLE001 - one broken image must not hide the next
        scan.skip(f"{where}: unreadable image")
