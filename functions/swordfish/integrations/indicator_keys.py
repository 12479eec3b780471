"""The lookup keys of threat indicators: one definition for the feed loader and the analyser.

Pure functions, no I/O, no Redis. The analyser asks "is any of these keys in a feed?" with the
keys of every URL in a message (``indicator_keys_for_url``); the feed loader stores the keys of every
feed entry (``feed_indicator_keys``). A hit is a key in both sets.

Rules
-----
URL form (``normalise_url``; the analysis engine's ``swordfish.analysis.urls.normalize_url`` is the
single implementation, so both sides agree by construction):

- scheme and host lower-cased; the host in ASCII (punycode) form; a trailing dot dropped;
- the default port dropped (http 80, https 443, ftp 21), any other port kept;
- user-info (``user:pw@``) and the fragment (``#...``) dropped;
- path and query kept exactly as written (an empty path becomes ``/``);
- only http, https and ftp URLs with a host count; a bare ``www.example.com/x`` is read as http.

Keys a URL seen in mail is looked up under (``indicator_keys_for_url``):

- the normalised URL (``https://evil.example/login``),
- its exact host (``login.evil.example``),
- its registered domain, eTLD+1 from the bundled public-suffix snapshot (``evil.example``).

Keys a feed entry is stored under (``feed_indicator_keys``):

- always the normalised URL;
- its exact host, unless the host is a big shared service (``drive.google.com``, ``bit.ly``,
  ``github.com``, ``www.dropbox.com``, free-mail domains ...): a URLhaus URL on Google Drive blocks that one URL, never
  every Drive link, and never google.com;
- never a registered domain that the feed did not list itself. Because mail candidates carry their
  registered domain, a feed entry whose host *is* a registered domain (``http://evil.example/x`` or a
  bare ``evil.example``) also covers its subdomains; a feed entry on ``a.evil.example`` covers only
  that host.
"""

from __future__ import annotations

from functools import lru_cache

from swordfish.analysis.data.hosts import (
    FREE_FILE_HOSTS,
    FREE_FILE_HOSTS_BY_HOST,
    FREEMAIL_DOMAINS,
    URL_SHORTENERS,
)
from swordfish.analysis.urls import normalize_url, registered_domain, url_host

# Registered domains where every host name is a service shared by millions of unrelated users, so
# no host under them may become an indicator by itself (only full URLs on them can).
SHARED_PLATFORM_DOMAINS: frozenset[str] = frozenset({
    "google.com", "googleapis.com", "googleusercontent.com", "gstatic.com", "youtube.com", "youtu.be",
    "microsoft.com", "microsoftonline.com", "live.com", "office.com", "office365.com", "outlook.com",
    "sharepoint.com", "onedrive.com", "1drv.ms", "azureedge.net", "windows.net", "amazonaws.com",
    "amazon.com", "cloudfront.net", "apple.com", "icloud.com", "yahoo.com", "facebook.com",
    "instagram.com", "whatsapp.com", "twitter.com", "x.com", "linkedin.com", "github.com",
    "githubusercontent.com", "github.io", "gitlab.com", "bitbucket.org", "dropbox.com",
    "dropboxusercontent.com", "discord.com", "discordapp.com", "discordapp.net", "t.me",
    "telegram.org", "adobe.com", "pastebin.com", "cloudflare.com", "akamaihd.net",
})


def normalise_url(url: str) -> str:
    """The lookup form of ``url`` (rules in the module docstring).

    Raises ValueError when ``url`` is not an http(s)/ftp URL with a usable host.
    """
    normalised = normalize_url(url)
    if normalised is None:
        raise ValueError(f"not an http(s)/ftp URL with a host: {url[:200]!r}")
    return normalised


def indicator_keys_for_url(url: str) -> set[str]:
    """Keys to look up for a URL seen in mail: normalised URL, exact host, registered domain.

    Never raises: an unusable URL has no keys.
    """
    normalised = normalize_url(url) if url else None
    if normalised is None:
        return set()
    host = url_host(normalised)
    keys = {normalised, host}
    domain = registered_domain(host)
    if domain:
        keys.add(domain)
    return keys


def feed_indicator_keys(entry: str) -> set[str]:
    """Keys to store for one feed entry (a URL, or a bare host/domain): the normalised URL, plus the
    exact host unless it is a shared service. Empty when the entry is not usable."""
    entry = entry.strip() if entry else ""
    if entry and "://" not in entry:
        entry = "http://" + entry  # feeds sometimes list bare hosts or scheme-less URLs
    normalised = normalize_url(entry) if entry else None
    if normalised is None:
        return set()
    host = url_host(normalised)
    if is_shared_host(host):
        return {normalised}
    return {normalised, host}


@lru_cache(maxsize=8192)
def is_shared_host(host: str) -> bool:
    """True for hosts shared by many unrelated users (file hosts, shorteners, big platforms)."""
    domain = registered_domain(host)
    bare = host.removeprefix("www.")
    return (
        host in FREE_FILE_HOSTS_BY_HOST
        or domain in SHARED_PLATFORM_DOMAINS
        or domain in URL_SHORTENERS
        or domain in FREEMAIL_DOMAINS  # mail candidates carry sender domains: never flag all of gmail.com
        # Per-user subdomains of free hosts (evil.000webhostapp.com) are fine as host indicators;
        # the service's own host is not.
        or bare in FREE_FILE_HOSTS
    )
