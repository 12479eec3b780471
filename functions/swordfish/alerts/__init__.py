"""Alerts to the MSP (signed webhooks and e-mail) and the SIEM export (OCSF JSON lines).

``events`` is what can happen (pure); ``rules`` where each kind goes (PostgreSQL); ``signing`` the
webhook signature; ``channels`` the webhook and e-mail senders; ``dispatcher`` the delivery with
retries and a dead-letter queue of its own; ``rate_monitor`` the phishing-rate check; ``ocsf`` and
``export`` the SIEM stream. An adapter-layer package: the processor and the pages use it, it uses
the store and the ports.
"""
