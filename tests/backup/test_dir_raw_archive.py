"""The embedded stack's raw archive on disk (issue 25: moto's S3 lost it with a restart): the same
objects, entries and listing as the S3 archive, whole files only, and no key outside its folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from swordfish.integrations.raw_archive import ArchiveEntryMissing, DirRawMailArchive
from swordfish.pipeline.ports import IncomingRecord


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 7, 10, 59, 59, tzinfo=UTC)

    def __call__(self):
        return self.now


def test_entries_written_to_disk_are_read_back_by_key_line_and_time(tmp_path):
    clock = Clock()
    archive = DirRawMailArchive(tmp_path / "raw", clock=clock)
    first = archive.archive([IncomingRecord("q1", '{"a": 1}', clock.now), IncomingRecord("q2", '{"b": 2}', None)])
    clock.now += timedelta(seconds=2)  # the next hour's folder
    second = archive.archive([IncomingRecord("q3", '{"c": 3}', clock.now)])
    assert archive.archive([]) is None

    assert archive.entry(first, 1)["body"] == '{"b": 2}'
    # a new archive object over the same folder (a restarted stack) reads what the first wrote
    again = DirRawMailArchive(tmp_path / "raw", clock=clock)
    assert [e["queue_message_id"] for e in again.since(clock.now - timedelta(hours=2))] == ["q1", "q2", "q3"]
    assert [e["queue_message_id"] for e in again.since(clock.now - timedelta(seconds=1))] == ["q3"]
    assert second.split("/")[1:5] == ["2026", "12", "07", "11"]
    assert not list((tmp_path / "raw").rglob(".tmp-*"))  # written under a temporary name, then renamed


def test_missing_entries_and_keys_outside_the_archive_are_refused(tmp_path):
    archive = DirRawMailArchive(tmp_path / "raw")
    key = archive.archive([IncomingRecord("q1", "{}", None)])
    with pytest.raises(ArchiveEntryMissing, match="no line 3"):
        archive.entry(key, 3)
    with pytest.raises(ArchiveEntryMissing, match="gone"):
        archive.entry(key.replace(".jsonl.gz", "x.jsonl.gz"), 0)
    (tmp_path / "secret.txt").write_text("not mail")
    with pytest.raises(ArchiveEntryMissing):
        archive.entry("raw-submissions/../../secret.txt", 0)


def test_the_whole_archive_streams_in_time_order_across_years_without_walking_empty_hours(tmp_path):
    """Issue 25: the start's re-enqueue looked back 48 hours only. Reading from a year back must list
    the folders that exist (a few), not the 8,760 hours in between."""
    clock = Clock()
    archive = DirRawMailArchive(tmp_path / "raw", clock=clock)
    written = []
    for age in (timedelta(days=300), timedelta(days=40), timedelta(hours=72), timedelta(0)):
        clock.now = datetime(2026, 12, 7, 11, 0, 1, tzinfo=UTC) - age
        written.append(archive.archive([IncomingRecord(f"q{age.days}-{age.seconds}", "{}", None)]))
    listed: list[str] = []
    folders = archive._folders
    archive._folders = lambda prefix: listed.append(prefix) or folders(prefix)

    now = datetime(2026, 12, 7, 11, 30, tzinfo=UTC)
    assert list(archive.keys_from(now - timedelta(days=365))) == written
    assert len(listed) < 20, listed
    # after a key (the re-enqueue's cursor): only newer objects, the older folders not even listed
    listed.clear()
    assert list(archive.keys_from(now - timedelta(days=365), after=written[1])) == written[2:]
    assert not any(prefix.endswith(("/2026/02/", "/2026/03/")) for prefix in listed), listed
    assert [e["queue_message_id"] for e in archive.entries(now - timedelta(days=50))] == [
        "q40-0", "q3-0", "q0-0"]
    assert [e["queue_message_id"] for e in archive.entries()] == ["q300-0", "q40-0", "q3-0", "q0-0"]
    # since within an hour folder: entries before it in the same hour are left out
    assert [e["queue_message_id"] for e in archive.entries(datetime(2026, 12, 7, 11, 0, 2, tzinfo=UTC))] == []
