"""AWS Signature Version 4: parsing, canonicalization, signing and aws-chunked payloads (pure, sans-IO)."""

from __future__ import annotations
