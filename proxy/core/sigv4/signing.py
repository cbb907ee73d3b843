"""Task 3 of SigV4: the derived signing key, the signature, and a constant-time comparison.

    derived key = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")

Deriving a key costs four HMACs; a key is valid for one (date, region, service), so it is cached. The
cache is keyed by a fingerprint of the secret (a SHA-256 under a fixed label), never by the secret itself,
so neither a cache key nor a debug dump of the cache exposes a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from proxy.core.frozen import remember, slot_constructor
from proxy.core.model import Credential, RequestHead
from proxy.core.sigv4.auth import TERMINATOR, SigV4Authorization
from proxy.core.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    string_to_sign,
)

_FINGERPRINT_LABEL = b"sigwatch signing-key cache\x00"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode("utf-8"), "sha256")


def derive_signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key for one credential scope (uncached)."""
    k_date = _hmac(("AWS4" + secret_access_key).encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, TERMINATOR)


def secret_fingerprint(secret_access_key: str) -> bytes:
    """A one-way identity for a secret: equal secrets, equal fingerprints; the secret is not recoverable."""
    return hashlib.sha256(_FINGERPRINT_LABEL + secret_access_key.encode("utf-8")).digest()


class SigningKey:
    """A derived key with its HMAC-SHA256 pads pre-hashed: signing one string costs two SHA-256 copies
    instead of a fresh HMAC context (half the time of hmac.digest, measured by tools/bench_verify.py).

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) (RFC 2104), K padded to SHA-256's 64-byte block.
    """

    __slots__ = ("_inner", "_outer", "key")

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0")
        self.key = key
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    def __repr__(self) -> str:  # a derived key signs for a whole day: never shown
        return "SigningKey(<derived>)"

    def sign(self, message: str) -> str:
        inner = self._inner.copy()
        inner.update(message.encode("utf-8", "surrogateescape"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class SigningKeyCache:
    """An LRU of derived keys keyed by (access key id, secret fingerprint, date, region, service).

    The access key id is part of the key so a rotated secret for the same id never reuses a stale key;
    the fingerprint (not the secret) tells two secrets apart.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        self._maxsize = maxsize
        self._keys: OrderedDict[tuple[str, bytes, str, str, str], SigningKey] = OrderedDict()
        self._fingerprints: dict[str, tuple[str, bytes]] = {}
        self._lock = Lock()
        self._last: tuple[Credential, str, str, str, SigningKey] | None = None
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:  # never show keys or fingerprints
        return f"SigningKeyCache(size={len(self._keys)}, hits={self.hits}, misses={self.misses})"

    def __len__(self) -> int:
        return len(self._keys)

    def _fingerprint(self, credential: Credential) -> bytes:
        # Memoised per access key id: hashing the secret on every request would cost as much as the
        # signature itself. The memo keeps a reference to the secret object it fingerprinted and is only
        # used while the credential still holds that very object, so a reloaded secret is re-hashed.
        memo = self._fingerprints.get(credential.access_key_id)
        secret = credential.secret_access_key
        if memo is not None and memo[0] is secret:
            return memo[1]
        fingerprint = secret_fingerprint(secret)
        remember(self._fingerprints, credential.access_key_id, (secret, fingerprint), self._maxsize)
        return fingerprint

    def signer(self, credential: Credential, date: str, region: str, service: str) -> SigningKey:
        """The (cached) signing key of a credential scope, ready to sign."""
        last = self._last
        # The same Credential object (frozen: the same secret) and scope as the previous call: a client
        # signs request after request with one key and scope.
        if (
            last is not None
            and last[0] is credential
            and last[1] == date
            and last[2] == region
            and last[3] == service
        ):
            self.hits += 1
            return last[4]
        found = self._signer(credential, date, region, service)
        self._last = (credential, date, region, service, found)
        return found

    def _signer(self, credential: Credential, date: str, region: str, service: str) -> SigningKey:
        cache_key = (credential.access_key_id, self._fingerprint(credential), date, region, service)
        found = self._keys.get(cache_key)
        if found is not None:
            self.hits += 1
            try:  # noqa: SIM105 - contextlib.suppress costs 0.3 µs per hit
                self._keys.move_to_end(cache_key)
            except KeyError:  # evicted by another thread meanwhile
                pass
            return found
        self.misses += 1
        found = SigningKey(derive_signing_key(credential.secret_access_key, date, region, service))
        with self._lock:
            self._keys[cache_key] = found
            if len(self._keys) > self._maxsize:
                self._keys.popitem(last=False)
        return found

    def get(self, credential: Credential, date: str, region: str, service: str) -> bytes:
        """The (cached) derived key bytes of a credential scope."""
        return self.signer(credential, date, region, service).key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._fingerprints.clear()
            self._last = None


DEFAULT_KEY_CACHE = SigningKeyCache()


def sign(signing_key: bytes, string_to_sign: str) -> str:
    """The hex signature of a string to sign."""
    return hmac.digest(signing_key, string_to_sign.encode("utf-8", "surrogateescape"), "sha256").hex()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison (`hmac.compare_digest`) of secret-derived text (signatures, digests,
    session tokens); accepts non-ASCII text on either side instead of raising."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogateescape"), provided.encode("utf-8", "surrogateescape")
    )


@dataclass(frozen=True, slots=True)
class RequestSignature:
    """The proxy's side of a signature check: what it signed and the signature it expects.

    `signing_key` is derived (not the secret) but still lets one sign for a day: kept out of repr.
    """

    canonical_request: str
    string_to_sign: str
    expected: str
    signing_key: bytes = field(repr=False)

    def matches(self, provided: str) -> bool:
        return signatures_equal(self.expected, provided)


def compute_request_signature(
    head: RequestHead,
    auth: SigV4Authorization,
    credential: Credential,
    *,
    amz_date: str,
    payload_hash: str,
    normalize_path: bool,
    cache: SigningKeyCache = DEFAULT_KEY_CACHE,
    drop_security_token: bool = False,
) -> RequestSignature:
    """Canonical request, string to sign and signature of `head`, as AWS computes them to verify it.

    `normalize_path`: every service but S3 (see canonical_uri). For a presigned request X-Amz-Signature
    is left out of the canonical query; `drop_security_token` also leaves out X-Amz-Security-Token (the
    services that expect it appended after signing).
    """
    return request_signature(
        head, auth, credential, amz_date, payload_hash, normalize_path, cache, drop_security_token
    )


def request_signature(  # noqa: PLR0917 - compute_request_signature's arguments, positional
    head: RequestHead,
    auth: SigV4Authorization,
    credential: Credential,
    amz_date: str,
    payload_hash: str,
    normalize_path: bool,
    cache: SigningKeyCache,
    drop_security_token: bool,
) -> RequestSignature:
    """compute_request_signature() with positional arguments, for the verify check (keywords cost)."""
    scope = auth.credential
    path, query = head.path, head.query
    canonical = canonical_request(
        head.method,
        "/" if path == "/" else canonical_uri(path, normalize=normalize_path),  # "/" is its own canonical URI
        canonical_query(query, drop_signature=auth.presigned, drop_security_token=drop_security_token)
        if query
        else "",
        canonical_headers(head, auth.signed_headers),
        auth.signed_headers_line,
        payload_hash,
    )
    to_sign = string_to_sign(amz_date, scope.scope, canonical)
    signer = cache.signer(credential, scope.date, scope.region, scope.service)
    return _make_signature(canonical, to_sign, signer.sign(to_sign), signer.key)


_make_signature = slot_constructor(RequestSignature)
