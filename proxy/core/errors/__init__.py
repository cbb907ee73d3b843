"""Error responses: extraction (what the body and headers say, as botocore reads them) and
classification (what it means against the service's catalog)."""

from __future__ import annotations
