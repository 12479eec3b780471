"""scripts/corpus_build.py: the labels it gives the mail of taken-over lists, and what it takes from the
SpamAssassin npm package (never the 2002 easy_ham, which is an independent evaluation set)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile

import pytest

from .helpers import REPO, build

sys.path.insert(0, str(REPO / "scripts"))
import corpus_build  # noqa: E402

LIST_FOOTER = ("\n_______________________________________________\nOsst-users mailing list\n"
               "Osst-users@lists.sourceforge.net\nhttps://lists.sourceforge.net/lists/listinfo/osst-users\n")


@pytest.mark.parametrize(("kwargs", "label"), [
    ({"subject": "[Osst-users] Your mailbox password expires today",
      "body": "Keep your password: https://mail-keep.example.net/login" + LIST_FOOTER}, "phishing"),
    ({"subject": "[Osst-users] Atualização necessária. Banco do Brasil",
      "body": "Acesse http://bb-atualiza.example.com/" + LIST_FOOTER}, "phishing"),
    ({"subject": "[Osst-users] Quotation", "body": "See attached." + LIST_FOOTER,
      "attachments": [("Quotation sheet.html", b"<form><input type=password></form>", "text/html")]}, "phishing"),
    ({"subject": "[Osst-users] Purchase Order", "body": "See attached." + LIST_FOOTER,
      "attachments": [("PO.rar", b"Rar!\x1a\x07\x00", "application/octet-stream")]}, "malware"),
    # a lure word with no link but the list's own footer is not phishing; the offer is spam
    ({"subject": "[Osst-users] Verify your account", "body": "Reply to this mail." + LIST_FOOTER}, "spam"),
    ({"subject": "[Osst-users] Toner compatibili a basso costo",
      "body": "Chiedici un preventivo: http://toner.example.it/" + LIST_FOOTER}, "spam"),
    ({"subject": "[Osst-users] Undelivered Mail Returned to Sender", "sender": "MAILER-DAEMON@example.org",
      "body": "This is the mail system." + LIST_FOOTER}, None),
    ({"subject": "[Osst-users] [PATCH] scsi: osst: Use struct_size()",
      "body": "Signed-off-by: A Developer <dev@example.org>" + LIST_FOOTER}, None),
])
def test_taken_list_labels(kwargs, label):
    assert corpus_build.label_taken_list(build(**kwargs)) == label


def _npm_tarball(tmp_path, files):
    path = tmp_path / "stdlib.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_stdlib_package_gives_ham_2_hard_ham_and_spam_2_but_never_easy_ham_1(tmp_path):
    def entry(folder, body, good=True):
        md5 = hashlib.md5(body if good else b"other").hexdigest()  # noqa: S324 - the corpus's own checksum
        return f"{folder}/00001.{md5}.txt", body
    files = dict([entry("easy-ham-1", b"Subject: forbidden\n\nx\n"), entry("easy-ham-2", b"Subject: ham2\n\nx\n"),
                  entry("hard-ham-1", b"Subject: hard\n\nx\n"), entry("spam-2", b"Subject: spam\n\nx\n"),
                  entry("spam-1", b"Subject: other spam\n\nx\n"), entry("hard-ham-1", b"Subject: bad md5\n\nx\n", False)])
    files["easy-ham-2/00001.json"] = b"{}"
    sets = corpus_build._stdlib_sa_messages(_npm_tarball(tmp_path, files))
    assert sets == {"legit-sa-easy-ham-2": [b"Subject: ham2\n\nx\n"], "legit-sa-hard-ham": [b"Subject: hard\n\nx\n"],
                    "spam-sa-2003": [b"Subject: spam\n\nx\n"]}


def test_build_writes_taken_list_sets_into_out(tmp_path):
    repo = tmp_path / "list.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    messages = [build(subject="[L] Mailbox quota", body="Upgrade: https://quota.example.net/" + LIST_FOOTER),
                build(subject="[L] Cheap bearings", body="Buy now" + LIST_FOOTER),
                build(subject="[L] Delivery Status Notification (Failure)", body="failed" + LIST_FOOTER)]
    for i, raw in enumerate(messages):  # public-inbox v2: one message per commit, in the file `m`
        (work / "m").write_bytes(raw)
        subprocess.run(["git", "-C", str(work), "add", "m"], check=True)
        subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.org",
                        "commit", "-q", "-m", f"m{i}"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    out = tmp_path / "raw"
    assert corpus_build.main(["--taken-list", f"demo={repo}", "--out", str(out)]) == 0
    assert len(list((out / "phishing-list-demo").iterdir())) == 1
    assert len(list((out / "spam-list-demo").iterdir())) == 1
    assert not (out / "legit-list-demo").exists()
    assert (out / "manifest.json").exists()


def test_a_legit_lists_one_off_posts_outside_any_thread_are_left_out():
    """The spam an open list lets through (SEO offers, pharmacy, invoice lures) is not the list's
    conversation: a one-off sender starting no thread is left out, not labelled legitimate."""
    threaded = build(subject="Re: [PATCH] kasan: fix", sender="a@example.org", body="Looks good.",
                     headers={"In-Reply-To": "<x@example.org>"})
    patch = build(subject="[PATCH] kasan: add test", sender="b@example.org", body="Signed-off-by: B <b@example.org>")
    regular_1 = build(subject="question on KASAN", sender="c@example.org", body="How do I enable it?")
    regular_2 = build(subject="another question", sender="C@example.org", body="And on arm64?")
    one_off = build(subject="Unlock Your Site's Potential", sender="lucy@seo.example", body="Backlinks!")
    rewritten = build(subject="cheap meds", sender='"X via kasan-dev" <kasan-dev@googlegroups.com>', body="Pills",
                      headers={"X-Original-From": "pills@spam.example"})
    kept, left_out = corpus_build.list_conversation([threaded, patch, regular_1, regular_2, one_off, rewritten])
    assert kept == [threaded, patch, regular_1, regular_2] and left_out == 2


# --- legitimate notification mail of real services (issue 16: modern transactional mail with DKIM) ------

def _signed(domain: str) -> dict[str, str]:
    return {"DKIM-Signature": f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=pf2023; h=From:To; b=abc"}


GITHUB_PUSH = {"subject": "[bluez/bluez] 192876: gatt-client: implement error handling",
               "body": "  Branch: refs/heads/master\n  Home:   https://github.com/bluez/bluez\n"}


@pytest.mark.parametrize(("kwargs", "service"), [
    ({"sender": '"github-actions[bot]" <noreply@github.com>', "headers": _signed("github.com"), **GITHUB_PUSH},
     "github"),
    # Google Groups rewrites From and re-signs; the first hop's verdict on GitHub's signature is in ARC
    ({"sender": "\"'Jan' via Jailhouse\" <jailhouse-dev@googlegroups.com>", **GITHUB_PUSH,
      "headers": {**_signed("googlegroups.com"), "X-Original-From": "Jan <noreply@github.com>",
                  "ARC-Authentication-Results": "i=1; gmr-mx.google.com; dkim=pass (test mode) "
                                                "header.i=@github.com header.s=pf2014 header.b=xgVYPr7t"}},
     "github"),
    ({"sender": "bugzilla-daemon@bugzilla.kernel.org", "subject": "[Bug 215528] Excessive logging",
      "headers": _signed("kernel.org")}, "bugzilla"),
    ({"sender": "patchwork-bot+bluetooth@kernel.org", "subject": "Re: [PATCH v1] Bluetooth: HIDP: Fix UAF",
      "headers": _signed("kernel.org")}, "patchwork"),
    # the right sender without the service's signature: anybody can write that From
    ({"sender": "GitHub <noreply@github.com>", **GITHUB_PUSH}, None),
    ({"sender": "GitHub <noreply@github.com>", "headers": _signed("github-security.example"), **GITHUB_PUSH}, None),
    ({"sender": "GitHub <noreply@github.com>", "headers": _signed("com"), **GITHUB_PUSH}, None),
    ({"sender": "GitHub <noreply@github.com>", **GITHUB_PUSH,
      "headers": {"Authentication-Results": "mx; dkim=fail header.d=github.com"}}, None),
    # a signed "noreply" of some other domain that got onto an open list is not a known service
    ({"sender": "noreply@carnivalassure.example", "subject": "Bidding invitation",
      "headers": _signed("carnivalassure.example")}, None),
    ({"sender": "Luiz <luiz.dentz@gmail.com>", "subject": "Re: [PATCH] Bluetooth: fix",
      "headers": _signed("gmail.com")}, None),
])
def test_service_notification_needs_a_known_sender_and_its_signature(kwargs, service):
    assert corpus_build.service_notification(build(**kwargs)) == service


AMAZON_HTML = "<html><body>" + "<p>Your package is on its way. <a href='https://www.amazon.com/gp/css/'>" \
    "Track package</a></p>" * 40 + "</body></html>"


@pytest.mark.parametrize(("name", "kwargs", "real"), [
    ("amazon_shipped.eml", {"sender": '"Amazon.com" <shipment-tracking@amazon.com>',
                            "subject": "Your Amazon.com order #123-1234567-1234567 has shipped", "html": AMAZON_HTML},
     True),
    ("amazon_fwd.eml", {"sender": '"Amazon.com" <shipment-tracking@amazon.com>', "subject": "Shipped",
                        "html": AMAZON_HTML}, False),
    ("amazon_delivered_ssrf.eml", {"sender": '"Amazon.com" <order-update@amazon.com>', "subject": "Delivered",
                                   "html": AMAZON_HTML}, False),
    ("informed_delivery.eml", {"sender": "<testuser@fake.email>", "subject": "Your Daily Digest",
                               "html": AMAZON_HTML}, False),
    ("amazon_note.eml", {"sender": "Test User <testuser@email.com>", "subject": "Fwd: Your Amazon.com order",
                         "html": AMAZON_HTML}, False),
    ("usps_delivered.eml", {"sender": "auto-reply@usps.com", "subject": "USPS Item Delivered",
                            "body": "Delivered."}, False),  # a stub cut down to a few lines
])
def test_real_service_fixture_leaves_out_a_projects_own_constructs(name, kwargs, real):
    assert corpus_build.real_service_fixture(name, build(**kwargs)) is real


def test_real_service_fixture_leaves_out_messages_cut_by_hand():
    whole = build(sender='"Amazon.com" <shipment-tracking@amazon.com>', subject="Your order has shipped",
                  html=AMAZON_HTML)
    head, _, body = whole.partition(b"\n\n")
    boundary = body.split(b"\n", 1)[0]
    assert boundary.startswith(b"--")
    assert corpus_build.real_service_fixture("amazon_shipped.eml", whole)
    # the blank line after the headers was cut away, so the boundary line reads as a header
    assert not corpus_build.real_service_fixture("amazon_shipped.eml", head + b"\n" + body)
    # the message cut off before its closing boundary
    assert not corpus_build.real_service_fixture("amazon_shipped.eml", whole[:whole.rindex(boundary)])


def _mirror(tmp_path, name, files_per_commit):
    """A bare git repository with one commit per {path: bytes} dict (public-inbox keeps one file `m`)."""
    work, repo = tmp_path / f"{name}-work", tmp_path / f"{name}.git"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    for i, files in enumerate(files_per_commit):
        for path, raw in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_bytes(raw)
            subprocess.run(["git", "-C", str(work), "add", path], check=True)
        sender = corpus_build.email.utils.parseaddr(
            corpus_build.email.message_from_bytes(next(iter(files.values()))).get("From", ""))[1] or "t@example.org"
        subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", f"user.email={sender}",
                        "commit", "-q", "-m", f"c{i}"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    return repo


def test_build_writes_notification_and_fixture_sets(tmp_path):
    pushes = [build(sender="GitHub <noreply@github.com>", headers=_signed("github.com"),
                    subject=f"[bluez/bluez] {i:06x}: fix", body=GITHUB_PUSH["body"]) for i in range(6)]
    forged = build(sender="GitHub <noreply@github.com>", subject="[bluez/bluez] Verify your account",
                   body="https://github-verify.example/login")
    bug = build(sender="bugzilla-daemon@kernel.org", headers=_signed("kernel.org"), subject="[Bug 1] New: oops")
    human = build(sender="Luiz <luiz@example.org>", subject="Re: [PATCH] fix", headers=_signed("example.org"))
    mirror = _mirror(tmp_path, "bt", [{"m": raw} for raw in [*pushes, forged, bug, human]])
    shipped = build(sender='"Amazon.com" <shipment-tracking@amazon.com>', subject="Your order has shipped",
                    html=AMAZON_HTML)
    fixtures = _mirror(tmp_path, "fx", [
        {"tests/emails/amazon_shipped.eml": shipped, "tests/emails/amazon_fwd.eml": shipped + b"\n"},
        {"tests/emails/amazon_shipped.eml": shipped + b"\n\n"},  # a later edit: the newest version is taken
        {"tests/other/ups.eml": shipped + b"ups"},
    ])
    out = tmp_path / "raw"
    assert corpus_build.main(["--legit-mirror", f"bt={mirror}", "--per-service", "3",
                              "--legit-fixtures", f"parcels={fixtures}:tests/emails", "--out", str(out)]) == 0
    notify = sorted(p.read_bytes() for p in (out / "legit-notify-bt").iterdir())
    assert notify == sorted([pushes[0], pushes[2], pushes[4], bug])  # every 2nd of 6 pushes, 3 at most
    assert [p.read_bytes() for p in (out / "legit-fixtures-parcels").iterdir()] == [shipped + b"\n\n"]


def test_fixture_set_takes_named_files_of_several_repositories(tmp_path):
    """One set from several repositories: folders or single files (brackets in a name are not a glob), and
    the same NAME again adds to the set instead of replacing it."""
    notices = {tag: build(sender='"Amazon.com" <shipment-tracking@amazon.com>', html=AMAZON_HTML,
                          subject=f"Your order {tag} has shipped") for tag in "abcdef"}
    shipped = notices.__getitem__
    first = _mirror(tmp_path, "first", [{"public/[uber.com]receipt.eml": shipped("a"), "public/rreceipt.eml": shipped("b"),
                                         "unit/own_test.eml": shipped("c"), "unit/amazon.eml": shipped("d")}])
    second = _mirror(tmp_path, "second", [{"test/data/original/Fastmail from CNN.eml": shipped("e"),
                                           "test/data/rfc.eml": shipped("f")}])
    out = tmp_path / "raw"
    assert corpus_build.main(["--legit-fixtures", f"receipts={first}:public/[uber.com]receipt.eml, unit/amazon.eml",
                              "--legit-fixtures", f"receipts={second}:test/data/original",
                              "--out", str(out)]) == 0
    kept = sorted(p.read_bytes() for p in (out / "legit-fixtures-receipts").iterdir())
    assert kept == sorted([shipped("a"), shipped("d"), shipped("e")])


# --- issue 23: lists that tag subjects or add footers without rewriting From -------------------------

def test_human_list_leaves_out_robots_and_service_notifications():
    """A list's human conversation: bots' posts (CI, test robots, GitHub, patchwork) are left out even when
    they reply in a thread or post often, so the set is people's mail and never takes a notification set's
    messages."""
    human = build(subject="Re: [Bridge] vlan filtering question", sender="Ann <ann@gmail.com>",
                  headers={"In-Reply-To": "<q@example.org>"})
    patch = build(subject="[PATCH net-next] bridge: fix mdb", sender="Bo <bo@kernel.org>",
                  body="Signed-off-by: Bo <bo@kernel.org>")
    robot = build(subject="Re: [PATCH] bridge: fix", sender="kernel test robot <lkp@intel.com>",
                  headers={"In-Reply-To": "<p@example.org>"})
    github = build(subject="[siemens/jailhouse] fe7ec7: Documentation", sender="\"'Jan' via Jailhouse\" "
                   "<jailhouse-dev@googlegroups.com>", headers={"X-Original-From": "Jan <noreply@github.com>"})
    patchwork = build(subject="Re: [PATCH] fix", sender="patchwork-bot+netdevbpf@kernel.org",
                      headers={"In-Reply-To": "<p@example.org>"})
    ci = build(subject="[CI-NOTIFY]: TCWG Bisect", sender="ci_notify@linaro.org",
               headers={"In-Reply-To": "<p@example.org>"})
    kept, left_out = corpus_build.human_conversation([human, patch, robot, github, patchwork, ci, ci])
    assert kept == [human, patch] and left_out == 5


def test_build_human_list_takes_every_kth_human_post(tmp_path):
    """--human-list takes every k-th post of a mirror (at most --per-human-list) and keeps the human ones;
    the notification of the same mirror stays in its notification set."""
    people = [build(subject=f"Re: [Bridge] question {i}", sender=f"p{i}@gmail.com",
                    headers={"In-Reply-To": f"<q{i}@example.org>"}) for i in range(8)]
    push = build(sender="GitHub <noreply@github.com>", headers=_signed("github.com"),
                 subject="[bluez/bluez] 0a1b2c: fix", body=GITHUB_PUSH["body"])
    mirror = _mirror(tmp_path, "br", [{"m": raw} for raw in [*people, push]])
    out = tmp_path / "raw"
    assert corpus_build.main(["--legit-mirror", f"notes={mirror}", "--human-list", f"aaa={mirror}",
                              "--per-human-list", "4", "--out", str(out)]) == 0
    assert [p.read_bytes() for p in (out / "legit-notify-notes").iterdir()] == [push]
    kept = sorted(p.read_bytes() for p in (out / "legit-list-aaa").iterdir())
    assert kept == sorted([people[0], people[2], people[4], people[6]])  # every 2nd of the 9 commits, 4 at most


def test_sets_of_the_new_sources_never_take_an_older_sets_message(tmp_path):
    """A message that an older kind of set already holds stays there even when a new set's name sorts
    first, so a corpus grown with new sources keeps its old sets byte for byte."""
    people = [build(subject=f"Re: question {i}", sender=f"p{i}@gmail.com",
                    headers={"In-Reply-To": f"<q{i}@example.org>"}) for i in range(3)]
    mirror = _mirror(tmp_path, "li", [{"m": raw} for raw in people])
    out = tmp_path / "raw"
    assert corpus_build.main(["--list", f"zzz={mirror}", "--human-list", f"aaa={mirror}",
                              "--out", str(out)]) == 0
    assert sorted(p.read_bytes() for p in (out / "legit-list-zzz").iterdir()) == sorted(people)
    assert not list((out / "legit-list-aaa").iterdir())


# --- issue 23: a mail filter's own inbox samples (lures delivered directly, not through a list) --------

def _received(raw: bytes, by: str = "juliett.example.com") -> bytes:
    return (f"Received: from mx.sender.example (mx.sender.example [192.0.2.7])\n\tby {by} (8.18.1/8.18.1) "
            "with ESMTPS id 5BIK0a1h020350\n\tfor <user@example.com>; Thu, 18 Dec 2025 20:00:36 GMT\n").encode() + raw


def test_inbox_sample_must_have_been_received_by_the_inbox():
    """A filter project's samples are real when its own mail server received them; the project's
    constructed test messages have no Received header of it, and a file whose first line is a tool's
    output is not a message."""
    lure = build(sender='"PayPal" <security@paypa1-alerts.example>', subject="Your account is suspended",
                 body="Restore access: https://paypa1-restore.example/login")
    assert corpus_build.inbox_sample(_received(lure))
    assert corpus_build.inbox_sample(_received(lure, by="hotel.baddomain.com"))
    assert not corpus_build.inbox_sample(lure)
    assert not corpus_build.inbox_sample(_received(lure, by="mail.sender.example"))
    assert not corpus_build.inbox_sample(b"Loading configuration: ../foff-milter.toml\n" + _received(lure))


def test_build_writes_inbox_sets_labelled_from_the_message_alone(tmp_path):
    lure = _received(build(sender='"Schwab" <donotreply@schwab-secure.example>', subject="Schwab Alert",
                           body="Verify your account: https://schwab-secure.example/verify"))
    offer = _received(build(sender="deals@solar.example", subject="Solar for $0 out of pocket",
                            body="Get a quote: https://solar.example/quote"))
    constructed = build(sender="billing@fake-company.example", subject="URGENT: Overdue Invoice",
                        body="Pay now: https://pay.example/")
    newsletter = _received(build(sender="Lovepop <magic@magic.lovepop.com>", subject="Birthday cards",
                                 html=AMAZON_HTML))
    repo = _mirror(tmp_path, "foff", [{"tests/positive/schwab_alert.eml": lure, "tests/positive/solar.eml": offer,
                                       "tests/positive/constructed.eml": constructed,
                                       "tests/negative/lovepop_legitimate.eml": newsletter}])
    out = tmp_path / "raw"
    assert corpus_build.main(["--inbox-unwanted", f"foff={repo}:tests/positive",
                              "--inbox-legit", f"foff={repo}:tests/negative", "--out", str(out)]) == 0
    assert [p.read_bytes() for p in (out / "phishing-inbox-foff").iterdir()] == [lure]
    assert [p.read_bytes() for p in (out / "spam-inbox-foff").iterdir()] == [offer]
    assert [p.read_bytes() for p in (out / "legit-inbox-foff").iterdir()] == [newsletter]


def test_inbox_labels_read_lures_written_in_styled_letters_and_leave_out_constructs():
    """Lures that spell their words in mathematical bold letters or with zero-width spaces (to slip past
    keyword filters) are read as the letters they show; the project's own constructed scam ('John Scammer'
    at a 'fake-' domain) is left out even though it was sent through the inbox's server."""
    styled = _received(build(sender="Cloud Storage <notice@cloud-store.example>",
                             subject="𝑵𝑶𝑻𝑬: 𝑨𝒍𝒍 𝒔𝒕𝒐𝒓𝒂𝒈𝒆 𝒔𝒑𝒂𝒄𝒆 𝒊𝒔 𝒊𝒏 𝒖𝒔𝒆",
                             body="Your m\u200bailbox is full: https://cloud-store.example/upgrade"))
    assert corpus_build.label_taken_list(styled) == "spam"
    assert corpus_build.label_inbox_sample(styled) == "phishing"
    construct = _received(build(sender="John Scammer <gerald@fake-investment.example>", subject="Investment",
                                body="Send your bank details: https://fake-investment.example/"))
    assert not corpus_build.inbox_sample(construct)


def test_human_list_keeps_new_threads_only_of_people_who_take_part_in_the_conversation():
    """Open lists let through spammers who post again and again (crypto-recovery and airline-booking spam
    on greybus-dev, drug offers on jailhouse-dev) and answer their own posts, but talk to nobody: a post
    starting a thread is kept when its sender sent a patch or replied on a topic someone else posted on."""
    spam = [build(subject=f"[greybus-dev] TOP 8 BEST CRYPTO RECOVERY EXPERT {i}", sender="jack@gmail.com",
                  body="Contact them now") for i in range(3)]
    question = build(subject="[greybus-dev] mikroBUS on BeaglePlay?", sender="Ayush <ayush@beagleboard.org>")
    asked = build(subject="[greybus-dev] uart flow control", sender="Vaibhav <vaibhav@gmail.com>")
    answer = build(subject="Re: [greybus-dev] uart flow control", sender="Ayush <ayush@beagleboard.org>",
                   headers={"In-Reply-To": "<u@example.org>"})
    kept, left_out = corpus_build.human_conversation([*spam, question, asked, answer])
    # Vaibhav's question starts a thread too, and Vaibhav neither replied nor sent a patch in the sample
    assert kept == [question, answer] and left_out == 4
