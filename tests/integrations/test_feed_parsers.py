"""Feed parsers on the real sample files and on broken downloads."""

from __future__ import annotations

import io
import zipfile

import pytest
from swordfish.integrations.feeds import parse_feed, parse_openphish, parse_phishtank, parse_urlhaus

from devstack.feed_server import DEFAULT_FEED_FOLDER as FEED_SAMPLES


def test_urlhaus_sample_yields_every_row_and_skips_comments():
    parsed = parse_urlhaus((FEED_SAMPLES / "urlhaus.csv").read_bytes())
    assert (parsed.rows, parsed.bad_rows) == (8, 0)
    assert "http://62.16.101.59/livesex.htm" in parsed.indicators
    assert "lv724super.supereva.it" in parsed.indicators


def test_urlhaus_url_on_shared_host_is_stored_as_exact_url_only():
    parsed = parse_urlhaus((FEED_SAMPLES / "urlhaus.csv").read_bytes())
    drive = "https://drive.google.com/file/d/1qtm5hdD1b-Z4XPhkvoWHH72jbQaJyRu8/view?usp=sharing"
    assert drive in parsed.indicators
    assert not {"drive.google.com", "google.com", "docs.google.com", "bit.ly"} & parsed.indicators


def test_openphish_sample_yields_urls_and_hosts():
    parsed = parse_openphish((FEED_SAMPLES / "openphish.txt").read_bytes())
    assert (parsed.rows, parsed.bad_rows) == (2, 0)
    assert "https://ehawkerbd.com/wp/wp-admin/js/office365/auth.php" in parsed.indicators
    assert "ottobenecker.org" in parsed.indicators


def test_phishtank_sample_skips_header_and_reads_url_column():
    parsed = parse_phishtank((FEED_SAMPLES / "phishtank.csv").read_bytes())
    assert (parsed.rows, parsed.bad_rows) == (2, 0)
    assert "http://www.nlcmacon.com/login/www.made-in-china.com/Made-in-China.htm" in parsed.indicators
    assert "www.anatolialamps.com" in parsed.indicators


def test_phishtank_columns_are_found_by_header_name():
    data = b"phish_id,target,verified,url\n123,Other,yes,http://moved-columns.example/x\n"
    parsed = parse_phishtank(data)
    assert "http://moved-columns.example/x" in parsed.indicators


def test_urlhaus_bad_lines_are_counted_and_good_lines_kept():
    data = (
        b'# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n'
        b'"1","2025-01-01 00:00:00","http://good.example/a","online","","malware_download","","l","r"\n'
        b'"2","2025-01-01 00:00:00","not a url","online","","malware_download","","l","r"\n'
        b'"3","2025-01-01 00:00:00","http://short-row.example/\n'
        b'"4","2025-01-01 00:00:00","http://nul\x00.example/","online","","m","","l","r"\n'
        b'<html><body>502 Bad Gateway</body></html>\n'
        b'"5","2025-01-01 00:00:00","http://good.example/b","online","","malware_download","","l","r"\n'
    )
    parsed = parse_urlhaus(data)
    assert parsed.rows == 2
    assert parsed.bad_rows == 4
    assert len(parsed.bad_examples) == 4
    assert {"http://good.example/a", "http://good.example/b", "good.example"} == parsed.indicators


def test_openphish_html_error_page_is_all_bad_lines():
    parsed = parse_openphish(b"<html>\n<head><title>503 Service Unavailable</title></head>\n</html>\n")
    assert (parsed.rows, parsed.bad_rows) == (0, 3)
    assert parsed.indicators == set()


def test_invalid_utf8_and_crlf_do_not_break_parsing():
    parsed = parse_openphish(b"\xef\xbb\xbfhttp://bom.example/x\r\nhttp://latin1-\xe9.example/\r\n\xff\xfe\r\n")
    assert "http://bom.example/x" in parsed.indicators
    assert parsed.rows + parsed.bad_rows == 3


def test_zipped_urlhaus_dump_is_unpacked():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("csv.txt", (FEED_SAMPLES / "urlhaus.csv").read_bytes())
    assert parse_urlhaus(buffer.getvalue()).rows == 8


def test_unknown_feed_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown threat feed 'spamhaus'"):
        parse_feed("spamhaus", b"")
