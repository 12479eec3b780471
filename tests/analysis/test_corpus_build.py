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
