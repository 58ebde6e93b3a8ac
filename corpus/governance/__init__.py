"""Consent-driven erasure, retention purges, PII spans and audit-chain verification."""
