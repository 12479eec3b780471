"""Phrase patterns for credential phishing, business-email-compromise and spam language.

Each entry is (label, trigger substrings, regex) over case-folded text; the regex runs only when one of
its triggers occurs (a substring test is far cheaper than a regex scan, and most mail has none). Patterns are deliberately specific phrases rather than
single words ("payment", "invoice", "urgent" alone appear in ordinary business mail every day); the
scorer also needs several distinct patterns before the weight matters.
"""

from __future__ import annotations

CREDENTIAL_PHRASES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("verify account", ('verify', 'validate', 'confirm', 'activate', 'unlock', 'restore'), r"\b(verify|validate|confirm|re-?activate|unlock|restore)\s+(your\s+)?(e-?mail\s+|mailbox\s+|microsoft\s+|office\s*365\s+|apple\s+|paypal\s+)?(account|identity|mailbox|password|credentials|login|details)\b"),
    ("account suspended", ('suspended', 'locked', 'disabled', 'deactivated', 'restricted', 'blocked', 'terminated', 'limited', 'on hold'), r"\b(account|mailbox|access|profile|card)\s+(has\s+been\s+|was\s+|will\s+be\s+|is\s+)?(temporarily\s+)?(suspended|locked|disabled|deactivated|restricted|blocked|terminated|limited|on\s+hold)\b"),
    ("unusual sign-in", ('unusual', 'suspicious', 'unauthori', 'unrecogni'), r"\b(unusual|suspicious|unauthori[sz]ed|unrecogni[sz]ed)\s+(sign-?in|log-?in|activity|access|login\s+attempt)"),
    ("password expiry", ('password',), r"\bpassword\s+(will\s+|is\s+going\s+to\s+)?(expire|expires|expired|expiring)\b|\b(the|your)\s+password\s+(for|of|on)\s+\S{1,80}\s+(will\s+)?(expire|expires|expired|expiring)\b"),
    ("keep password", ('password',), r"\b(keep|continue\s+(with|using))\s+(your\s+|the\s+|my\s+)?(current\s+|same\s+|old\s+)?password\b"),
    ("mailbox full", ('full', 'quota', 'exceeded'), r"\b(mailbox|storage|inbox|disk\s+space|e-?mail\s+storage|e-?mail\s+account)\s+(is\s+)?(almost\s+|nearly\s+)?(full|over\s+quota|exceeded)|\bquota\s+(exceeded|limit)\b"),
    ("held messages", ('messages', 'mails'), r"\b(suspended|pending|held|undelivered|blocked|quarantined)\s+(incoming\s+)?(e-?mails|messages|mails)\b"),
    ("account upgrade", ('requires', 'needs', 'upgrade'), r"\b(account|mailbox|e-?mail)\s+(requires|needs)\s+(an?\s+)?(immediate\s+)?(update|upgrade|verification|validation)\b|\bupgrade\s+(your\s+)?(mailbox|e-?mail\s+account|webmail)\b"),
    ("deactivation notice", ('deactivat', 'terminat', 'shut', 'closure'), r"\b(deactivation|termination|shutdown|closure)\s+(notice|notification|request|scheduled|in\s+progress)\b|\b(mailbox|e-?mail(\s+account)?|account)\s+will\s+be\s+(deactivated|terminated|shut\s+down)\b"),
    ("password notice", ('password',), r"\bpassword\s+(change|update|reset|expiration|expiry)\s+(notification|notice|request|required|alert)\b"),
    ("update billing", ('update',), r"\bupdate\s+(your\s+)?(billing|payment|card|account)\s+(information|info|details|method)\b|\bupdate\s+billing\b"),
    ("click to login", ('click', 'tap', 'follow'), r"\b(click|tap|follow)\s+(here|below|the\s+(link|button)(\s+below)?)\s+to\s+(verify|confirm|log\s*in|sign\s*in|unlock|restore|update|validate|reactivate|keep\s+your)"),
    ("within hours", ('within',), r"\bwithin\s+(the\s+next\s+)?(24|48|72|twenty[- ]four|12)\s+hours\b"),
    ("shared document login", ('sign', 'log'), r"\b(sign|log)\s+in\s+(with\s+your\s+(e-?mail|microsoft|office))\b|\bshared\s+a\s+(secure\s+)?(document|file)\s+with\s+you\b.*\b(sign|log)\s*in\b"),
    ("violation notice", ('violat',), r"\b(violation\s+of|violated)\s+(our|the|\w+'s)\s+(terms|policy|abuse\s+policy|community\s+guidelines)"),
    ("order on hold", ('hold', 'failed', 'declined', 'could not be'), r"\b(order|payment|shipment|package|delivery)\s+(is\s+|has\s+been\s+)?(on\s+hold|failed|declined|could\s+not\s+be\s+(processed|delivered))\b"),
    # Portuguese, Spanish, Japanese and Chinese lures: two thirds of the phishing in the development corpus
    # (Brazilian boleto/NF-e and bank lures, Spanish tax and fine lures, Japanese card and shop lures)
    ("pt/es account lure", ('atualiz', 'actualic', 'bloque', 'suspens', 'desativ', 'desactiv', 'verifique', 'confirme'), r"\b(atualiz[ae]\w*\s+(seus|sua|os\s+seus)\s+(dados|cadastro|conta)|atualiza[çc][ãa]o\s+cadastral|actualic\w+\s+(sus|su)\s+(datos|cuenta)|(sua|su)\s+(conta|cuenta)\s+(foi|será|sera|ha\s+sido|está|esta)\s+(temporariamente\s+|temporalmente\s+)?(bloquead[ao]|suspens[ao]|suspendid[ao]|desativad[ao]|desactivad[ao])|evite\s+o\s+bloqueio|(verifique|confirme)\s+(sua|su)\s+(conta|cuenta|identidade|identidad))"),
    ("pt/es payment lure", ('boleto', 'fatura', 'factura', 'multa', 'deuda', 'pagamento', 'pago'), r"\b(boleto\s+(em\s+aberto|vencido|pendente|dispon[ií]vel)|(fatura|factura)\s+(em\s+aberto|pendente|vencida|impaga)|multa\s+(no\s+pagada|pendiente|registrada|de\s+tr[aá]nsito)|deuda\s+pendiente|pagamento\s+(pendente|recusado|n[ãa]o\s+(foi\s+)?(aprovado|processado))|pago\s+(pendiente|rechazado))"),
    ("ja account lure", ('アカウント', '確認', '停止', '不正', 'お支払い', '認証'), r"アカウント(が|を|の)?(一時的に|一時)?(停止|ロック|制限|凍結)|ご利用確認|本人確認|不正(利用|アクセス|ログイン)|お支払い方法(の|を)?(更新|確認|変更)|利用(を)?(一時)?停止|再認証|アカウント[^。\n]{0,12}(制限|停止|凍結)されて"),
    # Chinese in both scripts (Simplified on the mainland, Traditional in Taiwan and Hong Kong)
    ("zh mailbox lure", ('邮箱', '郵箱', '账户', '帐户', '帳戶', '賬戶', '账号', '帐号', '帳號', '賬號', '密码', '密碼', '邮件', '郵件'), r"(邮箱|郵箱)(已满|已滿|升级|升級|验证|驗證|停用|过期|過期|容量)|(账户|帐户|帳戶|賬戶|账号|帐号|帳號|賬號)(异常|異常|冻结|凍結|停用|验证|驗證)|(密码|密碼)(过期|過期|到期|即将|即將)|(密码|密碼)[^。\n]{0,12}(过期|過期|到期|失效)|(邮箱|郵箱|邮件|郵件|账户|帐户|帳戶|賬戶|账号|帐号|帳號|賬號)[^。\n]{0,10}(已被)?(锁定|鎖定|冻结|凍結|停用|禁用|暂停|暫停|阻止)"),
    # the English "upgrade your mailbox" / "verify your account", verb first (not "verify your email address",
    # a sign-up's wording, nor "activate": the English patterns leave both out too)
    ("zh mailbox upgrade", ('升级', '升級', '备案', '備案', '验证', '驗證'), r"(升级|升級|备案|備案)(您的|你的)?(邮箱|郵箱|账户|帐户|帳戶|账号|帐号|帳號)|(验证|驗證)(您的|你的)(邮箱|郵箱|账户|帐户|帳戶|账号|帐号|帳號)(?!地址)"),
    # the "your company is moving to a new mail system" and "mailbox security notice" notices: a new system or
    # certificate to switch on, sent by nobody's IT department by mail with a link
    ("zh mail system notice", ('邮件系统', '郵件系統', '邮箱系统', '郵箱系統', '新邮件', '新郵件', '邮箱安全', '郵箱安全', '邮件安全', '郵件安全'), r"(启用|啟用|切换|切換|迁移|遷移|升级|升級)(至|到)?新(的)?(邮件|郵件|邮箱|郵箱)(系统|系統)?|(邮件|郵件|邮箱|郵箱)(系统|系統)(升级|升級|迁移|遷移|切换|切換|更新|停用|维护|維護)(通知|提醒)?|(邮箱|郵箱|邮件|郵件)安全(通知|提醒|提示|警告|警报|警報|证书|證書|检测|檢測)"),
    # the English "update your card information" (asked for, not "has been updated") and "unusual sign-in"
    ("ja card details", ('カード', 'アカウント情報', '異常な', '不審な'), r"((クレジット)?カード(情報|番号)|アカウント情報)[^。\n]{0,12}(再確認|再登録|更新(して|を)(ください|下さい|お願い))|(異常な|不審な)(活動|アクティビティ|ログイン|アクセス)"),
)

BEC_PHRASES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("wire transfer", ('transfer', 'wire'), r"\b(wire\s+transfer|bank\s+transfer|wire\s+(the\s+)?(funds|payment|money)|swift\s+transfer)\b"),
    ("gift cards", ('card',), r"\b(gift\s*cards?|itunes\s+cards?|google\s+play\s+cards?|steam\s+cards?|amazon\s+cards?)\b"),
    ("bank details change", ('details', 'information', 'info', 'account'), r"\b(change|update|new)\s+(of\s+|in\s+|to\s+)?(our\s+|the\s+)?(bank|banking|account|remittance|payment)\s+(details|information|info|account)\b"),
    ("are you available", ('are you', 'do you have', 'favo'), r"\b(are\s+you\s+(available|at\s+your\s+desk|free)|do\s+you\s+have\s+a\s+(moment|minute|sec)|quick\s+favou?r|i\s+need\s+a\s+favou?r)\b"),
    ("w-2 request", ('w2', 'w-2'), r"\bw-?2s?\b.*\b(send|need|forward|copy|copies)\b|\b(send|need|forward)\b.*\bw-?2s?\b"),
    ("urgent payment", ('urgent', 'immediate', 'asap', 'today'), r"\b(urgent(ly)?|immediate(ly)?|asap|today)\b.{0,60}\b(payment|transfer|invoice|wire|pay)\b|\b(payment|transfer|invoice|wire)\b.{0,60}\b(urgent(ly)?|immediately|asap)\b"),
    ("confidential request", ('confidential', 'between us', 'quiet', 'tell', 'mention'), r"\b(keep\s+this\s+(confidential|between\s+us|quiet)|strictly\s+confidential|don'?t\s+(tell|mention)\s+(anyone|this))\b"),
    ("overdue invoice", ('overdue', 'outstanding', 'past due', 'unpaid'), r"\b(overdue|outstanding|past\s+due|unpaid)\s+(invoice|payment|balance)\b"),
    ("phone number request", ('me your',), r"\b(send|text)\s+me\s+your\s+(personal\s+)?(cell|mobile|phone|whatsapp)(\s+number)?\b"),
    ("payroll change", ('deposit', 'payroll'), r"\b(direct\s+deposit|payroll)\s+(details|information|account|change)\b|\bchange\s+my\s+(direct\s+deposit|payroll)\b"),
)

# The parcel-delivery lure (DHL, USPS, Correios, Royal Mail impersonated: among the brands most used in
# phishing in 2022-26): a fee to pay, an address to confirm, a package about to go back. A receipt names a
# shipping charge and a real notice a delivery day, so the scorer needs two of these before it says anything.
DELIVERY_PHRASES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("shipping fee", ('fee', 'cost', 'charge', 'dut', 'taxa', 'gastos', 'zoll', 'frais'), r"\b(shipping|delivery|re-?delivery|customs|postage|handling|clearance)\s+(fees?|costs?|charges?|dut(y|ies))\b|\btaxa\s+(de\s+)?(entrega|envio|reenvio|importa\w+|desembara\w+)\b|\bgastos\s+de\s+(env[ií]o|aduana|entrega)\b|\bzollgeb[üu]hr\w*|\bfrais\s+de\s+(livraison|port|douane|r[ée]exp[ée]dition)\b"),
    ("not delivered", ('deliver', 'entreg', 'zugestellt', 'livr'), r"\b(package|parcel|shipment|delivery|item|order)\s+(could\s+not|cannot|can'?t|couldn'?t|was\s+not|wasn'?t|has\s+not\s+been|is\s+not)\s+(be\s+|been\s+)?delivered\b|\b(unable|failed\s+attempt|attempt(ed)?)\s+to\s+deliver\b|\bn[ãa]o\s+(foi\s+)?(poss[ií]vel\s+)?entreg\w+|\bno\s+(pudo\s+ser\s+|se\s+pudo\s+)entreg\w+|\bnicht\s+zugestellt\b|\bn'a\s+pas\s+pu\s+[êe]tre\s+livr\w+"),
    ("returned to sender", ('sender', 'remetente', 'remitente', 'absender', 'expéditeur', 'expediteur'), r"\breturned\s+to\s+(the\s+)?sender\b|\bdevolvid[oa]\s+ao\s+remetente\b|\bdevuelt[oa]\s+al\s+remitente\b|\bzur[üu]ck\s+an\s+den\s+absender\b|\bretourn[ée]e?\s+[àa]\s+l'exp[ée]diteur\b"),
    ("confirm address", ('address', 'details', 'information', 'endereço', 'endereco', 'dirección', 'direccion', 'adresse'), r"\b(update|confirm|verify|correct)\s+(your\s+)?(shipping|delivery|home|postal)\s+(address|details|information)\b|\b(confirme|atualize|actualice|confirma)\s+(seu\s+|su\s+|tu\s+)?(endere[çc]o|direcci[óo]n)\b|\b(best[äa]tigen|aktualisieren)\s+sie\s+ihre\s+(lieferadresse|adresse)\b|\b(confirmez|mettez\s+[àa]\s+jour)\s+votre\s+adresse\b"),
    ("arrange delivery", ('deliver', 'entrega', 'livraison'), r"\b(schedule|reschedule|arrange|book)\s+(your\s+|the\s+|a\s+|new\s+)?(re-?delivery|delivery)\b|\b(agendar|reagendar|programar|reprogramar)\s+(a\s+|la\s+|sua\s+|su\s+)?(nova\s+|nueva\s+)?entrega\b|\b(programmer|reprogrammer)\s+(la\s+|votre\s+)?livraison\b"),
)

SPAM_PHRASES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("free offer", ('free',), r"\b(100%\s+free|absolutely\s+free|free\s+(gift|trial|offer|money|access|quote))\b"),
    ("act now", ('now', 'limited time', 'expires', 'miss out'), r"\b(act\s+now|order\s+now|buy\s+now|limited\s+time\s+(offer|only)|offer\s+expires|don'?t\s+miss\s+out)\b"),
    ("money", ('make', 'earn', 'cash', 'double your', 'freedom'), r"\b(make|earn)\s+(\$|money|cash|extra\s+income)|\b(cash\s+bonus|double\s+your\s+(money|income)|financial\s+freedom)\b"),
    ("pharma", ('viagra', 'cialis', 'levitra', 'pharmacy', 'prescription', 'weight', 'diet'), r"\b(viagra|cialis|levitra|pharmacy|prescription\s+drugs|weight\s+loss|lose\s+weight|diet\s+pills)\b"),
    ("credit", ('credit', 'mortgage', 'interest', 'debt', 'refinanc'), r"\b(no\s+credit\s+check|lower\s+(your\s+)?(mortgage|interest)\s+rate|debt\s+(relief|consolidation)|refinanc\w+)\b"),
    ("winner", ('won', 'selected', 'congratulations', 'claim'), r"\b(you\s+(have\s+)?(won|been\s+selected)|congratulations[!,]?\s+you|claim\s+your\s+(prize|reward))\b"),
    ("remove me", ('remove', 'unsubscribe', 'not spam', 'opt'), r"\b(to\s+be\s+removed|remove\s+yourself|to\s+unsubscribe\s+reply|this\s+is\s+not\s+spam|opt[- ]out\s+below)\b"),
    ("guarantee", ('risk', 'guarantee', 'obligation'), r"\b(risk[- ]free|satisfaction\s+guaranteed|money[- ]back\s+guarantee|no\s+obligation)\b"),
    ("casino adult", ('casino', 'adult', 'singles', 'xxx'), r"\b(online\s+casino|adult\s+(site|content|dating)|hot\s+singles|xxx)\b"),
    ("shouting dollars", ('$$$', 'million', 'mlm', 'multi'), r"\$\$\$|\bmillions?\s+of\s+dollars\b|\bmlm\b|\bmulti[- ]level\s+marketing\b"),
)

QR_LURE_PHRASES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("scan qr", ('scan', 'qr'), r"\bscan\b.{0,40}\b(qr|barcode|code)\b|\bqr[- ]?code\b.{0,60}\b(scan|camera|phone)\b"),
)

# Multi-factor and authenticator language: what a QR-code lure asks the reader to "re-enable" or "set up".
MFA_PHRASES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("mfa", ('mfa', 'factor', '2fa', 'authenticat', 'security key'), r"\b(mfa|2fa|multi-?factor|two-?factor|authenticator\s+app|security\s+key|re-?authenticat\w*)\b"),
)

GTUBE = "xjs*c4jdbqadn1.nsbn3*2idnen*gtube-standard-anti-ube-test-email*c.34x"
