"""QR codes in images and PDFs: the link of a QR-code lure ("quishing") is in pixels, out of reach of
URL scanning, so the codes are decoded and their URLs join the message's links.

zxing-cpp decodes (a maintained C++ decoder with wheels for x86_64 and manylinux aarch64, no system
library); Pillow reads PNG, JPEG and GIF; pypdf reaches the images a PDF embeds, and the common kinds
of PDF image (Flate-compressed samples, with or without PNG predictors; JPEG) are decoded here in C.
Every step is bounded by counts fixed in advance, so the same message gets the same codes on any
machine: images are only decoded when their header declares a size within the pixel caps (a
decompression bomb is a few bytes declaring gigapixels), a message gets an allowance of images and of
pixels for all its images together, a PDF is only opened with few enough objects, and only its first
pages are read. The analysis budget's timer is checked before each image and PDF as a last resort.
What the limits leave out is listed in `QrScan.skipped` (the verdict names it), and any error in a
hostile image or PDF means "no code found", never an exception. Only messages that carry images or
PDFs pay any of this.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field

import pypdf
import zxingcpp
from PIL import Image

from .budget import AnalysisBudget

# An image file larger than this is a photo, not a lure (a JPEG's decoding costs ~10 ns a byte at any scale:
# a 4 MB phone photo, 50 ms on a busy machine)
MAX_IMAGE_BYTES = 2_000_000
MAX_PDF_BYTES = 10_000_000
MAX_IMAGES = 8  # images decoded per message (attachments, inline parts and PDF images together)
# Decoding the pixels costs more than finding the code (a 1600x1200 PNG screenshot: ~30 ms to inflate,
# ~3 ms in zxing-cpp), so the caps are on pixels decoded. A lure's picture is small; a screenshot or
# a photo is not scanned at full size: a JPEG is decoded at a reduced scale, a bigger PNG/GIF not at all.
MAX_IMAGE_PIXELS = 1_000_000  # decoded per image; a bigger JPEG is decoded at a reduced scale within it
MAX_MESSAGE_PIXELS = 1_000_000  # all images of one message together (~15 ms of decoding and scanning at most)
# Of which big pictures (screenshots, photos) may take all but this, so that a small image after them (a
# lure's code is a few hundred pixels a side) is still decoded.
SMALL_IMAGE_PIXELS = 250_000
MIN_SIDE = 21  # the smallest QR code (version 1) is 21 modules: anything smaller is a spacer or a pixel
MAX_PDF_PAGES = 3  # a lure puts its code on the first page
MAX_PDF_IMAGES_PER_PAGE = 6
MAX_PDFS = 3  # PDFs opened per message
# Objects of a PDF that is opened (pypdf: ~9 µs an object to open, ~65 µs without a cross-reference
# table, when it reads them all to rebuild one); a real invoice or statement has tens to hundreds.
MAX_PDF_OBJECTS = 600
MAX_PDF_OBJECTS_UNINDEXED = 150
MAX_PDF_PAGE_TREE_NODES = 64  # nodes of the page tree visited to reach the first pages
# An image of another kind than those decoded here (LZW, run length, JPEG 2000, 16 bits,
# separations) is left to pypdf, whose pure-Python filters cost ~0.5 µs a pixel: only small ones.
MAX_PYPDF_IMAGE_PIXELS = 40_000
MAX_CODES = 5  # decoded texts kept per message
MAX_CODE_CHARS = 2_000

_FORMATS = ("PNG", "JPEG", "GIF")  # the only decoders Pillow may try on mail content
_PDF_SIZE = re.compile(rb"/Size\s{0,10}(\d{1,9})")
_STARTXREF = re.compile(rb"startxref\s{1,10}(\d{1,12})")
_XREF_AT = re.compile(rb"\s{0,10}(?:xref|\d{1,10}\s{1,10}\d{1,5}\s{1,10}obj)")
_SPACES = {"/DeviceGray": ("L", None), "/G": ("L", None), "/CalGray": ("L", None),
           "/DeviceRGB": ("RGB", None), "/RGB": ("RGB", None), "/CalRGB": ("RGB", None),
           "/DeviceCMYK": ("CMYK", None), "/CMYK": ("CMYK", None)}
_COMPONENTS = {"L": 1, "P": 1, "RGB": 3, "CMYK": 4}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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
    pdfs: int = 0  # PDFs opened
    skipped: list[str] = field(default_factory=list)

    def room(self) -> bool:
        return self.images < MAX_IMAGES and self.pixels < MAX_MESSAGE_PIXELS and len(self.codes) < MAX_CODES

    def skip(self, why: str) -> None:
        if len(self.skipped) < 20:
            self.skipped.append(why)


def _within_budget(budget: AnalysisBudget) -> bool:
    """The timer, the last resort (the counts above decide what is decoded): once the analysis budget is
    spent, no image or PDF is started, and the verdict says the analysis was cut short."""
    return not budget.exceeded("QR codes")


def scan_image(data: bytes, where: str, scan: QrScan, budget: AnalysisBudget) -> None:
    """Decode the QR codes of one PNG/JPEG/GIF image into `scan`. Never raises."""
    if len(scan.codes) >= MAX_CODES:
        return
    if scan.images >= MAX_IMAGES:
        scan.skip(f"{where}: past the {MAX_IMAGES} images decoded per message")
        return
    if not _within_budget(budget):
        scan.skip(f"{where}: analysis budget")
        return
    if len(data) > MAX_IMAGE_BYTES:
        scan.skip(f"{where}: {len(data):,} bytes, over the {MAX_IMAGE_BYTES:,} an image is decoded at")
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
    over = _pixels_over(width, height, scan)
    if over:
        scan.skip(f"{where}: {over}")
        return
    pixels = width * height
    scan.images += 1
    scan.pixels += pixels
    gray = image.convert("L")  # decodes the pixels (the first frame of a GIF)
    for barcode in zxingcpp.read_barcodes(gray, formats=_QR, try_rotate=False):
        text = barcode.text.strip()[:MAX_CODE_CHARS]
        if text and len(scan.codes) < MAX_CODES:
            scan.codes.append((where, text))


def _pdf_objects(data: bytes) -> tuple[int, bool]:
    """The objects a PDF holds (its `endobj`s, or the count its trailer or cross-reference stream declares,
    whichever is more: objects packed in object streams have no `endobj`), and whether `startxref` points
    at a cross-reference table or stream. Counted in C before pypdf reads anything: opening costs pypdf
    ~9 µs an object, and without a usable cross-reference table it reads every object to rebuild one
    (~65 µs each)."""
    declared = max((int(m) for m in _PDF_SIZE.findall(data)), default=0)
    objects = max(data.count(b"endobj"), declared)
    m = _STARTXREF.search(data, max(0, len(data) - 2_048))
    offset = int(m.group(1)) if m else -1
    indexed = 0 <= offset < len(data) and bool(_XREF_AT.match(data, offset))
    return objects, indexed


def _pixels_over(width: int, height: int, scan: QrScan) -> str:
    """Why an image of this size is not decoded now ("" when it is)."""
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        return f"{width}x{height} pixels, over the {MAX_IMAGE_PIXELS:,} decoded per image"
    allowance = MAX_MESSAGE_PIXELS if pixels <= SMALL_IMAGE_PIXELS else MAX_MESSAGE_PIXELS - SMALL_IMAGE_PIXELS
    if scan.pixels + pixels > allowance:
        return f"{width}x{height} pixels, past the {allowance:,} decoded per message"
    return ""


def scan_pdf(data: bytes, where: str, scan: QrScan, budget: AnalysisBudget) -> None:
    """Decode the QR codes of the images on a PDF's first pages into `scan`. Never raises. What the
    limits leave out (PDFs past the count, PDFs with too many objects, pages past the first, images
    past the caps) is listed in `scan.skipped`."""
    if len(scan.codes) >= MAX_CODES:
        return
    if scan.images >= MAX_IMAGES or scan.pixels >= MAX_MESSAGE_PIXELS:
        scan.skip(f"{where}: not opened, the message's {MAX_IMAGES} images or "
                  f"{MAX_MESSAGE_PIXELS:,} pixels were decoded already")
        return
    if scan.pdfs >= MAX_PDFS:
        scan.skip(f"{where}: not opened, past the {MAX_PDFS} PDFs opened per message")
        return
    if not _within_budget(budget):
        scan.skip(f"{where}: analysis budget")
        return
    if len(data) > MAX_PDF_BYTES:
        scan.skip(f"{where}: {len(data):,} bytes, over the {MAX_PDF_BYTES:,} a PDF is opened at")
        return
    objects, indexed = _pdf_objects(data)
    limit = MAX_PDF_OBJECTS if indexed else MAX_PDF_OBJECTS_UNINDEXED
    if objects > limit:
        scan.skip(f"{where}: {objects:,} objects{'' if indexed else ' and no usable cross-reference table'}, "
                  f"over the {limit:,} a PDF is opened with")
        return
    scan.pdfs += 1
    try:
        with pypdf.apply_configuration(**_PDF_LIMITS):
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            pages, declared = _first_pages(reader)
            for page_number, resources in enumerate(pages, 1):
                images = _page_images(resources)
                for image_object in images[:MAX_PDF_IMAGES_PER_PAGE]:
                    if len(scan.codes) >= MAX_CODES:
                        return
                    if not _within_budget(budget):
                        scan.skip(f"{where} page {page_number}: analysis budget")
                        return
                    _pdf_image(image_object, f"{where} page {page_number}", scan)
                if len(images) > MAX_PDF_IMAGES_PER_PAGE:
                    scan.skip(f"{where} page {page_number}: {len(images) - MAX_PDF_IMAGES_PER_PAGE} images past "
                              f"the {MAX_PDF_IMAGES_PER_PAGE} read per page")
            if declared > len(pages) == MAX_PDF_PAGES:
                scan.skip(f"{where}: pages {MAX_PDF_PAGES + 1}-{declared} (codes are looked for on the first "
                          f"{MAX_PDF_PAGES})")
    except Exception:  # noqa: BLE001 - encrypted, broken or hostile PDF: no code found in it
        scan.skip(f"{where}: unreadable PDF")


def _first_pages(reader) -> tuple[list, int]:
    """The resources of the first MAX_PDF_PAGES pages, found by walking the page tree from its root
    (pypdf's `reader.pages` reads the whole tree first: 230 ms for 3,000 pages), with the resources a
    page inherits from its ancestors; and the page count the root declares."""
    root = reader.trailer["/Root"].get_object()["/Pages"].get_object()
    declared = root.get("/Count", 0)
    declared = int(declared) if isinstance(declared, int) else 0
    pages: list = []
    stack = [(root, None)]
    seen: set[int] = set()
    while stack and len(pages) < MAX_PDF_PAGES and len(seen) < MAX_PDF_PAGE_TREE_NODES:
        node, inherited = stack.pop()
        node = node.get_object()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        resources = node.get("/Resources", inherited)
        kids = node.get("/Kids")
        if kids is None:
            pages.append(resources)
            continue
        kids = kids.get_object()
        if isinstance(kids, list):
            stack.extend((kid, resources) for kid in reversed(kids[:MAX_PDF_PAGE_TREE_NODES]))
    return pages, declared


def _page_images(resources) -> list:
    """The image XObjects of a page's resources (pypdf's `page.images` would decode every one of them
    before we could look at their declared sizes)."""
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if isinstance(resources, dict) else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not isinstance(xobjects, dict):
        return []
    out = []
    for ref in list(xobjects.values())[:50]:
        obj = ref.get_object()
        if isinstance(obj, dict) and obj.get("/Subtype") == "/Image":
            out.append(obj)
    return out


def _filters(obj) -> list[str]:
    filters = obj.get("/Filter")
    filters = filters.get_object() if filters is not None else []
    return [str(f) for f in filters] if isinstance(filters, list) else [str(filters)]


def _pdf_image(obj, where: str, scan: QrScan) -> None:
    try:
        width, height = int(obj.get("/Width", 0)), int(obj.get("/Height", 0))
        if min(width, height) < MIN_SIDE:
            return
        filters = _filters(obj)
        if filters and filters[-1] == "/DCTDecode" and all(f == "/FlateDecode" for f in filters[:-1]):
            # the JPEG file itself, decoded by _decode at a reduced scale when it is big
            with Image.open(io.BytesIO(obj.get_data()), formats=("JPEG",)) as image:
                _decode(image, where, scan)
            return
        pixels = width * height
        over = _pixels_over(width, height, scan)
        if over:
            scan.skip(f"{where}: {over}")
            return
        if filters == ["/CCITTFaxDecode"]:
            # pypdf puts the fax data in a TIFF header (no decoding in Python); libtiff decodes it
            with Image.open(io.BytesIO(obj.get_data()), formats=("TIFF",)) as image:
                _decode(image, where, scan)
            return
        image = _flate_image(obj, width, height, filters)
        if image is None:
            # Another filter or colour space: pypdf decodes it, with pure-Python filters (LZW, run length,
            # ASCII, the TIFF predictor) and a PNG written and read back, so only a small image goes there.
            if pixels > MAX_PYPDF_IMAGE_PIXELS:
                scan.skip(f"{where}: {width}x{height} pixels in {' '.join(filters) or 'no filter'}, over the "
                          f"{MAX_PYPDF_IMAGE_PIXELS:,} decoded that way")
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = obj.decode_as_image()
        if image is not None:
            _decode(image, where, scan)
    except Exception:  # noqa: BLE001 - one broken image must not hide the next
        scan.skip(f"{where}: unreadable image")


def _colour_space(space) -> tuple[str, bytes | None] | None:
    """(Pillow mode, palette) of a PDF colour space this module decodes itself; None for the others."""
    space = space.get_object() if space is not None else None
    if isinstance(space, list) and space:
        family = str(space[0].get_object())
        if family == "/ICCBased" and len(space) > 1:
            return {1: ("L", None), 3: ("RGB", None), 4: ("CMYK", None)}.get(int(space[1].get_object().get("/N", 0)))
        if family in ("/Indexed", "/I") and len(space) == 4:
            base = _colour_space(space[1])
            lookup = space[3].get_object()
            lookup = lookup.get_data() if hasattr(lookup, "get_data") else getattr(lookup, "original_bytes", b"")
            if base is None or base[0] not in ("L", "RGB"):
                return None
            if base[0] == "L":
                lookup = bytes(b for value in lookup for b in (value, value, value))
            return "P", lookup[:3 * (int(space[2]) + 1)]
        return _colour_space(space[0]) if len(space) == 1 else _SPACES.get(family)
    return _SPACES.get(str(space)) if space is not None else None


def _flate_image(obj, width: int, height: int, filters: list[str]) -> Image.Image | None:
    """A /FlateDecode image in a gray, RGB, CMYK or indexed colour space of 1 to 8 bits, decoded in C.
    With PNG predictors (how fpdf2 and many others embed a PNG) the stream is exactly a PNG's image
    data, rows that each start with their PNG filter byte: Pillow's PNG decoder inflates it and undoes
    the filters, where pypdf undoes them in Python (~140 ns a byte: 190 ms for a 700x700 picture) and
    then writes a PNG and reads it back. None when the image is of another kind."""
    if filters != ["/FlateDecode"]:
        return None
    bits = int(obj.get("/BitsPerComponent", 8))
    space = _colour_space(obj.get("/ColorSpace"))
    if space is None or bits not in (1, 2, 4, 8) or (bits != 8 and space[0] not in ("L", "P")):
        return None
    mode, palette = space
    colors = _COMPONENTS[mode]
    row_bytes = (width * colors * bits + 7) // 8
    parms = obj.get("/DecodeParms")
    parms = parms.get_object() if parms is not None else None
    if isinstance(parms, list):
        parms = parms[0].get_object() if parms else None
    predictor = int(parms.get("/Predictor", 1)) if isinstance(parms, dict) else 1
    encoded = obj._data  # the stream as stored (pypdf's get_data would undo the predictor in Python)
    if predictor >= 10:
        if int(parms.get("/Columns", 1)) != width or int(parms.get("/Colors", 1)) != colors \
                or int(parms.get("/BitsPerComponent", 8)) != bits:
            return None
        step = max(1, colors * bits // 8)  # bytes a PNG filter looks back: the same in a PNG of this layout
        png_type = {1: 0, 2: 4, 3: 2, 4: 6}[step]  # gray, gray+alpha, RGB, RGBA: 8-bit samples, `step` a pixel
        header = struct.pack(">IIBBBBB", row_bytes // step, height, 8, png_type, 0, 0, 0)
        png = _PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", encoded) + _png_chunk(b"IEND", b"")
        with Image.open(io.BytesIO(png), formats=("PNG",)) as rows:
            samples = rows.tobytes()
    elif predictor == 1:
        samples = zlib.decompressobj().decompress(encoded, row_bytes * height)
    else:
        return None
    samples = samples.ljust(row_bytes * height, b"\0")  # a short stream: the missing rows are blank, as in pypdf
    raw_mode = {1: "1", 2: "L;2", 4: "L;4", 8: "L"}[bits] if mode == "L" else (
        {1: "P;1", 2: "P;2", 4: "P;4", 8: "P"}[bits] if mode == "P" else mode)
    image = Image.frombytes("1" if raw_mode == "1" else mode, (width, height), samples, "raw", raw_mode)
    if palette is not None:
        image.putpalette(palette.ljust(768, b"\0"))
    return image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
