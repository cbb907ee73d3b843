"""TLS interception support: the local CA, leaf certificates per host, and how to trust the CA.

Importing this package does not import cryptography (about 8 MB resident): loading or making the CA
does, so a proxy without interception never pays for it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from proxy.tls.authority import CAPaths, LocalCA, ca_paths, config_dir
from proxy.tls.leaf import LeafContexts


def load_ca(paths: CAPaths, now: dt.datetime) -> LocalCA:
    """Read and check a CA: a CA certificate, a key that matches it, valid now."""
    from proxy.tls import ca

    return ca.load_ca(paths, now)


def load_or_create_ca(paths: CAPaths, now: dt.datetime) -> tuple[LocalCA, bool]:
    """The CA at `paths`, created there first when neither file exists; (ca, created)."""
    from proxy.tls import ca

    return ca.load_or_create_ca(paths, now)


def trust_instructions(cert_path: Path) -> str:
    """Exactly how to make clients trust the CA certificate at `cert_path` (printed by `sigwatch ca`)."""
    path = str(cert_path)
    return f"""\
Trust it in the clients whose HTTPS sigwatch intercepts (`sigwatch run --intercept`):

  AWS CLI, boto3, botocore:  export AWS_CA_BUNDLE={path}
  Python requests:           export REQUESTS_CA_BUNDLE={path}
  curl:                      curl --cacert {path} ...
  then send them through sigwatch:
                             export HTTPS_PROXY=http://127.0.0.1:8080

  Whole system, Debian/Ubuntu:
    sudo cp {path} /usr/local/share/ca-certificates/sigwatch-ca.crt && sudo update-ca-certificates
  Whole system, macOS:
    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {path}

AWS_CA_BUNDLE replaces the default trust store for that client: with it set, only hosts whose
certificates sigwatch issues (that is, calls going through sigwatch) are trusted.
The key beside it never leaves this machine; delete both files to make a new CA."""


__all__ = [
    "CAPaths",
    "LeafContexts",
    "LocalCA",
    "ca_paths",
    "config_dir",
    "load_ca",
    "load_or_create_ca",
    "trust_instructions",
]
