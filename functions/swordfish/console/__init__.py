"""The MSP console: server-rendered pages on Flask for MSP admins, tenant analysts and auditors."""
