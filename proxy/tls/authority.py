"""Where the local CA lives and the LocalCA value, without importing cryptography.

cryptography costs about 8 MB of resident memory once imported, and only TLS interception needs it:
the proxy imports this package at start-up (proxy/server/forward.py), and cryptography is loaded when
a CA is loaded or made (proxy/tls/ca.py), that is when interception is on or `sigwatch ca` runs.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.config import ForwardSettings

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

CA_CERT_NAME = "sigwatch-ca.pem"
CA_KEY_NAME = "sigwatch-ca-key.pem"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/sigwatch`, else `~/.config/sigwatch` (the XDG base-directory default)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = (
        Path(base) if base and Path(base).is_absolute() else Path(env.get("HOME") or Path.home()) / ".config"
    )
    return root / "sigwatch"


@dataclass(frozen=True, slots=True)
class CAPaths:
    cert: Path
    key: Path
    configured: bool  # True: forward.ca_cert / forward.ca_key; False: sigwatch's own, under config_dir()


def ca_paths(forward: ForwardSettings, environ: Mapping[str, str] | None = None) -> CAPaths:
    if forward.ca_cert and forward.ca_key:
        return CAPaths(Path(forward.ca_cert).expanduser(), Path(forward.ca_key).expanduser(), True)
    directory = config_dir(environ)
    return CAPaths(directory / CA_CERT_NAME, directory / CA_KEY_NAME, False)


@dataclass(frozen=True, slots=True)
class LocalCA:
    """A CA certificate with its key, and where they are stored. Only proxy/tls/ca.py makes one, so
    cryptography is loaded by the time a method runs."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        from proxy.tls.ca import certificate_pem

        return certificate_pem(self.certificate)

    def issue_leaf(
        self, host: str, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
    ) -> x509.Certificate:
        """A server certificate for `host` (a DNS name or an IP address), signed by this CA."""
        from proxy.tls.ca import issue_leaf

        return issue_leaf(self, host, public_key, now)
