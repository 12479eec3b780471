"""Hosting services that phishing abuses: URL shorteners, free file hosts, free mail providers.

Entries are registered domains (eTLD+1) unless noted; `FREE_FILE_HOSTS_BY_HOST` holds full host names for
services that share a registered domain with unrelated products (docs.google.com vs www.google.com).
"""

from __future__ import annotations

# Not goo.gl: Google's shortener has made no link since March 2019 and cut the unused ones on 25 August 2025, so
# where a goo.gl link still leads was chosen years before the mail (kernel bots' reports link their docs through it).
URL_SHORTENERS: frozenset[str] = frozenset({
    "bit.ly", "bitly.com", "tinyurl.com", "ow.ly", "t.co", "is.gd", "buff.ly", "rebrand.ly",
    "cutt.ly", "shorturl.at", "rb.gy", "tiny.cc", "t.ly", "s.id", "v.gd", "bl.ink", "short.io",
    "shorte.st", "adf.ly", "lnkd.in", "qrco.de", "tr.im", "x.co", "po.st", "soo.gd", "clck.ru",
    "u.to", "urlz.fr", "bit.do", "mcaf.ee", "1url.com", "2.gp", "shorturl.com", "tiny.one",
    "surl.li", "urlr.me", "gg.gg", "shrtco.de", "qr.net", "linktr.ee", "dub.sh", "t2m.io",
})

FREE_FILE_HOSTS: frozenset[str] = frozenset({
    "dropboxusercontent.com", "wetransfer.com", "we.tl", "mediafire.com", "mega.nz", "mega.io",
    "sendspace.com", "4shared.com", "zippyshare.com", "file.io", "transfer.sh", "anonfiles.com",
    "gofile.io", "pixeldrain.com", "filetransfer.io", "ufile.io", "catbox.moe", "files.fm",
    "box.com", "hightail.com", "sendgb.com", "easyupload.io", "filebin.net", "1drv.ms",
    "formstack.com", "jotform.com",
})

# Free site and object hosting where anyone gets a page under the service's domain in a minute:
# people share files through the hosts above every day, but rarely mail a link to a page hosted
# here, which is where credential-harvesting pages live. Weighed apart from file sharing.
FREE_SITE_HOSTS: frozenset[str] = frozenset({
    "ipfs.io", "dweb.link", "cloudflare-ipfs.com", "web.app", "firebaseapp.com", "glitch.me",
    "000webhostapp.com", "weebly.com", "wixsite.com", "netlify.app", "pages.dev", "workers.dev",
    "r2.dev", "blogspot.com", "notion.site", "vercel.app", "onrender.com", "herokuapp.com",
    "azurewebsites.net", "webflow.io", "godaddysites.com", "mystrikingly.com", "square.site",
    "framer.website", "replit.app", "ngrok.io", "ngrok-free.app", "trycloudflare.com",
    "linodeobjects.com", "digitaloceanspaces.com", "backblazeb2.com", "appspot.com", "translate.goog",
    "jimdosite.com", "yolasite.com", "carrd.co", "ghost.io", "typedream.app", "surge.sh",
    # more IPFS gateways and pinning services' public gateways
    "fleek.co", "w3s.link", "nftstorage.link", "4everland.link", "mypinata.cloud", "infura-ipfs.io",
})

# IPFS: content addressed by hash and served by any public gateway, so no host to take down. Pinned lure
# pages live there; ordinary mail does not link to it. Besides these gateways, any host with an "/ipfs/<hash>"
# path or a content hash as its first label counts (signals.ipfs_link).
IPFS_GATEWAYS: frozenset[str] = frozenset({
    "ipfs.io", "dweb.link", "cloudflare-ipfs.com", "w3s.link", "nftstorage.link", "4everland.link",
    "4everland.io", "mypinata.cloud", "infura-ipfs.io", "fleek.co", "lighthouse.storage", "pinata.cloud",
    "ipfs.tech", "storry.tv", "dappling.network", "cf-ipfs.com", "ipfs.runfission.com", "filebase.io",
})

# Host names a cloud provider gives a rented machine, and dynamic-DNS names anyone registers in a minute:
# a company mails links to its own domain, not to "billing.eastus.cloudapp.azure.com" or a no-ip name; the
# lure pages of 2022-2026 sit there (a fresh VM per campaign, no domain to register or take down).
# Matched as host-name suffixes (the provider's zone; the registered domain alone, azure.com or
# amazonaws.com, also serves their own pages).
CLOUD_MACHINE_HOST_SUFFIXES: tuple[str, ...] = (
    ".cloudapp.azure.com", ".cloudapp.net", ".compute.amazonaws.com", ".compute-1.amazonaws.com",
    ".bc.googleusercontent.com", ".contaboserver.net", ".vps.ovh.net", ".vps.ovh.ca", ".ip-ptr.tech",
    ".secureserver.net", ".linodeusercontent.com", ".vultrusercontent.com", ".your-server.de",
    ".hostwindsdns.com", ".static.hostinger.com", ".hosted-by-vdsina.ru", ".aeza.network",
)
DYNAMIC_DNS_DOMAINS: frozenset[str] = frozenset({
    # No-IP
    "ddns.net", "hopto.org", "zapto.org", "sytes.net", "servehttp.com", "serveftp.org", "servehumour.com",
    "myftp.biz", "myftp.org", "redirectme.net", "bounceme.net", "myvnc.com", "servebeer.com", "serveblog.net",
    "servecounterstrike.com", "servegame.com", "servehalflife.com", "servemp3.com", "servepics.com",
    "servequake.com", "damnserver.com", "ditchyourip.com", "dnsiskinky.com", "geekgalaxy.com", "gotdns.ch",
    "webhop.me", "3utilities.com", "blogsyte.com", "ddnsking.com", "freedynamicdns.net", "freedynamicdns.org",
    "loginto.me", "mmafan.biz", "onthewifi.com", "viewdns.net", "hopto.me", "sytes.org",
    # Dyn's historical names (still resolvable customer zones)
    "dyndns.org", "dyndns.biz", "dyndns.info", "homeip.net", "dynalias.com", "dnsalias.com", "dnsalias.net",
    "dnsalias.org", "is-an-artist.com", "isa-geek.com", "isa-geek.net", "isa-geek.org", "is-a-geek.com",
    "is-a-geek.net", "is-a-geek.org", "kicks-ass.net", "selfip.com", "selfip.net", "gotdns.com", "gotdns.org",
    "homelinux.com", "homelinux.net", "homeunix.com", "game-server.cc", "blogdns.com", "mine.nu",
    # others
    "duckdns.org", "dynu.net", "dynu.com", "freeddns.org", "mooo.com", "us.to", "chickenkiller.com",
    "ddns.me", "dns-dynamic.net", "dnsdojo.com", "dynv6.net", "nsupdate.info", "ooguy.com", "kozow.com",
    "accesscam.org", "camdvr.org", "giize.com", "gleeze.com", "loseyourip.com", "casacam.net", "theworkpc.com",
    "ydns.eu", "changeip.com", "2waky.com", "dns04.com", "ddns.info", "publicvm.com", "serveo.net",
    "localtunnel.me", "loca.lt", "pagekite.me", "localhost.run",
})

FREE_FILE_HOSTS_BY_HOST: frozenset[str] = frozenset({
    "docs.google.com", "drive.google.com", "onedrive.live.com", "dl.dropboxusercontent.com",
    "forms.office.com", "forms.gle",
})

FREE_SITE_HOSTS_BY_HOST: frozenset[str] = frozenset({
    "sites.google.com", "storage.googleapis.com", "firebasestorage.googleapis.com", "s3.amazonaws.com",
})
# Object-storage zones where each customer's account is a host name of its own ("insolvency4850.blob.core.
# windows.net"): matched as suffixes (as exact hosts they never matched a link). Not S3's bucket hosts: CI
# systems link their reports' artifacts there (150 CKI reports in the corpus).
FREE_SITE_HOST_ZONES: tuple[str, ...] = (".blob.core.windows.net", ".web.core.windows.net")

FREEMAIL_DOMAINS: frozenset[str] = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
    "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com", "me.com",
    "mail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "yandex.com", "yandex.ru", "mail.ru",
    "protonmail.com", "proton.me", "zoho.com", "tutanota.com", "qq.com", "163.com", "126.com",
})
