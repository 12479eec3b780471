"""Hosting services that phishing abuses: URL shorteners, free file hosts, free mail providers.

Entries are registered domains (eTLD+1) unless noted; `FREE_FILE_HOSTS_BY_HOST` holds full host names for
services that share a registered domain with unrelated products (docs.google.com vs www.google.com).
"""

from __future__ import annotations

URL_SHORTENERS: frozenset[str] = frozenset({
    "bit.ly", "bitly.com", "tinyurl.com", "goo.gl", "ow.ly", "t.co", "is.gd", "buff.ly", "rebrand.ly",
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
})

FREE_FILE_HOSTS_BY_HOST: frozenset[str] = frozenset({
    "docs.google.com", "drive.google.com", "onedrive.live.com", "dl.dropboxusercontent.com",
    "forms.office.com", "forms.gle",
})

FREE_SITE_HOSTS_BY_HOST: frozenset[str] = frozenset({
    "sites.google.com", "storage.googleapis.com", "firebasestorage.googleapis.com", "s3.amazonaws.com",
    "blob.core.windows.net", "web.core.windows.net",
})

FREEMAIL_DOMAINS: frozenset[str] = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
    "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com", "me.com",
    "mail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "yandex.com", "yandex.ru", "mail.ru",
    "protonmail.com", "proton.me", "zoho.com", "tutanota.com", "qq.com", "163.com", "126.com",
})
