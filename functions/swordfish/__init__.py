"""Swordfish: email-security analysis for MSP tenants."""
