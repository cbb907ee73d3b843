"""Signing key derivation, its cache, and the constant-time comparison."""

from __future__ import annotations

from proxy.core.model import Credential
from proxy.core.sigv4.signing import (
    SigningKeyCache,
    derive_signing_key,
    secret_fingerprint,
    sign,
    signatures_equal,
)

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_derived_key_matches_the_aws_example() -> None:
    # AWS's "Examples of how to derive a signing key" (iam, us-east-1, 20120215).
    key = derive_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_cache_hits_and_rotation() -> None:
    cache = SigningKeyCache(maxsize=2)
    credential = Credential("AKID", SECRET)
    first = cache.get(credential, "20150830", "us-east-1", "service")
    assert cache.get(credential, "20150830", "us-east-1", "service") == first
    assert (cache.hits, cache.misses) == (1, 1)
    rotated = Credential("AKID", SECRET.replace("w", "W"))
    assert cache.get(rotated, "20150830", "us-east-1", "service") != first
    assert cache.misses == 2
    cache.get(credential, "20150831", "us-east-1", "service")
    assert len(cache) == 2


def test_repeated_scope_is_served_by_the_last_key_and_follows_each_change() -> None:
    """The previous call's key serves an identical call; any other credential object or scope part is
    looked up (and derives its own key), and clear() forgets it."""
    cache = SigningKeyCache()
    credential = Credential("AKID", SECRET)
    scope = ("20150830", "us-east-1", "iam")
    first = cache.signer(credential, *scope)
    assert cache.signer(credential, *scope) is first
    expected = derive_signing_key(SECRET, *scope)
    assert first.key == expected
    rotated = Credential("AKID", SECRET.replace("w", "W"))
    assert cache.signer(rotated, *scope).key == derive_signing_key(rotated.secret_access_key, *scope)
    for changed in (
        ("20150831", "us-east-1", "iam"),
        ("20150830", "eu-west-1", "iam"),
        ("20150830", "us-east-1", "s3"),
    ):
        assert cache.signer(credential, *changed).key == derive_signing_key(SECRET, *changed)
    assert cache.signer(credential, *scope).key == expected
    assert (cache.hits, cache.misses) == (2, 5)
    cache.clear()
    assert cache.signer(credential, *scope).key == expected
    assert cache.misses == 6


def test_cache_never_shows_a_secret() -> None:
    cache = SigningKeyCache()
    credential = Credential("AKID", SECRET)
    cache.get(credential, "20150830", "us-east-1", "service")
    assert SECRET not in repr(cache)
    assert SECRET not in repr(credential)
    assert secret_fingerprint(SECRET) != SECRET.encode()
    assert secret_fingerprint(SECRET) == secret_fingerprint("".join(SECRET))


def test_sign_and_compare() -> None:
    key = derive_signing_key(SECRET, "20150830", "us-east-1", "service")
    signature = sign(key, "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n")
    assert len(signature) == 64
    assert signatures_equal(signature, signature)
    assert not signatures_equal(signature, signature[:-1] + ("0" if signature[-1] != "0" else "1"))
    assert not signatures_equal(signature, "é")


def test_pre_hashed_pads_sign_exactly_like_hmac() -> None:
    from proxy.core.sigv4.signing import SigningKey

    key = derive_signing_key(SECRET, "20150830", "us-east-1", "service")
    signer = SigningKey(key)
    for message in ("", "AWS4-HMAC-SHA256\n20150830T123600Z\n", "é" * 100, "x" * 200):
        assert signer.sign(message) == sign(key, message)
    assert signer.sign("a") == signer.sign("a")  # the cached pads are copied, never consumed
    assert key.hex() not in repr(signer)
