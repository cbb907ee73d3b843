"""Server-side TLS contexts for intercepted hosts: one leaf certificate per host, cached.

Every leaf shares one EC P-256 key made at start-up (only certificates differ per host), so a new
host costs one signature (about a millisecond), not a key generation. Python's ssl module loads
certificates from files only: each leaf is written to a private temporary directory, loaded, and
deleted at once.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.tls.authority import LocalCA

MAX_CACHED_HOSTS = 1024
# A cached leaf is replaced this long before it expires.
RENEW_BEFORE = dt.timedelta(days=1)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class _Leaf:
    context: ssl.SSLContext
    not_after: dt.datetime


class LeafContexts:
    """`context_for(host)`: an SSLContext presenting a certificate for `host` issued by the CA."""

    def __init__(
        self,
        ca: LocalCA,
        *,
        max_hosts: int = MAX_CACHED_HOSTS,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.ca = ca
        self.max_hosts = max_hosts
        self.clock = clock
        # cryptography is imported here (already loaded with the CA), not when the proxy starts.
        from proxy.tls.ca import new_leaf_key

        self._key, self._key_pem = new_leaf_key()
        self._cache: OrderedDict[str, _Leaf] = OrderedDict()
        self.issued = 0  # leaves made so far (a cache hit makes none)

    def context_for(self, host: str) -> ssl.SSLContext:
        now = self.clock()
        leaf = self._cache.get(host)
        if leaf is not None and now < leaf.not_after - RENEW_BEFORE:
            self._cache.move_to_end(host)
            return leaf.context
        leaf = self._make(host, now)
        self._cache[host] = leaf
        self._cache.move_to_end(host)
        while len(self._cache) > self.max_hosts:
            self._cache.popitem(last=False)
        return leaf.context

    def _make(self, host: str, now: dt.datetime) -> _Leaf:
        from proxy.tls.ca import certificate_pem

        certificate = self.ca.issue_leaf(host, self._key.public_key(), now)
        chain = certificate_pem(certificate) + self.ca.cert_pem
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # The decrypted side is served by an HTTP/1.1 parser: never let a client negotiate h2.
        context.set_alpn_protocols(["http/1.1"])
        with tempfile.TemporaryDirectory(prefix="sigwatch-leaf-") as private:  # mode 0700
            cert_file, key_file = Path(private) / "leaf.pem", Path(private) / "leaf-key.pem"
            cert_file.write_bytes(chain)
            key_file.touch(mode=0o600)
            key_file.write_bytes(self._key_pem)
            context.load_cert_chain(cert_file, key_file)
        self.issued += 1
        return _Leaf(context, certificate.not_valid_after_utc)
