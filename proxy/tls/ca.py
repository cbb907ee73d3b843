"""The local certificate authority that TLS interception issues leaf certificates from.

Generated on first use (an EC P-256 key and a self-signed CA certificate) under the user's config
directory, the key written with mode 0600 and never logged; or loaded from `forward.ca_cert` /
`forward.ca_key` (a CA the user made, e.g. mounted from a Kubernetes Secret). Clients trust the CA
certificate (`AWS_CA_BUNDLE`, `curl --cacert`, ...); nothing else ever needs the key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proxy.config import ConfigError
from proxy.tls.authority import CAPaths, LocalCA

CA_LIFETIME = dt.timedelta(days=3650)
# Browsers cap publicly trusted leaves at 398 days; stay below it so no client refuses on length.
LEAF_LIFETIME = dt.timedelta(days=397)
# Issued slightly in the past: a client whose clock is a little behind still accepts the certificate.
BACKDATE = dt.timedelta(days=1)
KEY_MODE = 0o600
DIR_MODE = 0o700


def _signing_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # Ed25519/Ed448 sign the message itself (RFC 8410): no separate digest.
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM: the files that hold it are mode 0600 (or a temporary 0700 directory)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_leaf_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """An EC P-256 key for leaf certificates, and its PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, private_key_pem(key)


def issue_leaf(
    ca: LocalCA, host: str, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.Certificate:
    """A server certificate for `host` (a DNS name or an IP address), signed by `ca`.

    RFC 6125 / CA/Browser Forum: clients match the name against subjectAltName only, so the host
    goes there (an iPAddress entry for an IP, a dNSName otherwise); the CN is informational.
    """
    now = _utc(now)
    not_after = min(now + LEAF_LIFETIME, _utc(ca.certificate.not_valid_after_utc))
    alt_name: x509.GeneralName
    try:
        alt_name = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host.encode("idna").decode("ascii") if not host.isascii() else host)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)] if 0 < len(host) <= 64 else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # An empty subject makes the SAN critical (RFC 5280 §4.2.1.6).
        .add_extension(x509.SubjectAlternativeName([alt_name]), critical=not len(subject))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    return builder.sign(ca.key, _signing_hash(ca.key))


def generate_ca(
    now: dt.datetime, common_name: str | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new self-signed CA: EC P-256, may sign leaf certificates only (pathLen 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigwatch"),
            x509.NameAttribute(
                NameOID.COMMON_NAME,
                (common_name or f"sigwatch local CA ({socket.gethostname()})")[:64],
            ),
        ]
    )
    now = _utc(now)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write a new file created with `mode` from the start (never briefly readable by others)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)  # the umask may have removed bits we want (never adds any)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One creator at a time (sigwatch --workers start together)."""
    fd = os.open(directory / ".ca.lock", os.O_WRONLY | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _error(path: Path, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(str(path), key, problem, fix)


def load_ca(paths: CAPaths, now: dt.datetime) -> LocalCA:
    """Read and check a CA: a CA certificate, a key that matches it, valid now."""
    try:
        certificate = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    except OSError as exc:
        raise _error(paths.cert, "forward.ca_cert", f"cannot read it: {exc.strerror}", _FIX_PATHS) from exc
    except ValueError as exc:
        raise _error(paths.cert, "forward.ca_cert", f"not a PEM certificate ({exc})", _FIX_PEM) from exc
    try:
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    except OSError as exc:
        raise _error(paths.key, "forward.ca_key", f"cannot read it: {exc.strerror}", _FIX_PATHS) from exc
    except (ValueError, TypeError) as exc:
        raise _error(
            paths.key, "forward.ca_key", f"not an unencrypted PEM private key ({exc})", _FIX_PEM
        ) from exc
    if not isinstance(
        key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        raise _error(
            paths.key, "forward.ca_key", f"a {type(key).__name__} cannot sign certificates", _FIX_PEM
        )
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise _error(
            paths.key,
            "forward.ca_key",
            f"this key does not belong to the certificate {paths.cert}",
            _FIX_PAIR,
        )
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise _error(
            paths.cert,
            "forward.ca_cert",
            "not a CA certificate (basicConstraints CA:TRUE is missing)",
            "make one with `openssl req -x509 ... -addext basicConstraints=critical,CA:TRUE`, or leave "
            "forward.ca_cert/ca_key empty so that sigwatch makes its own",
        )
    now = _utc(now)
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise _error(
            paths.cert,
            "forward.ca_cert",
            f"not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d})",
            "make a new CA (for sigwatch's own: delete both files and run `sigwatch ca`)",
        )
    return LocalCA(certificate, key, paths.cert, paths.key)


_FIX_PATHS = "check the path and permissions, or leave forward.ca_cert/ca_key empty for sigwatch's own CA"
_FIX_PEM = "give a PEM certificate and its unencrypted PEM private key (RSA, EC or Ed25519)"
_FIX_PAIR = "give the key that was generated with this certificate"


def load_or_create_ca(paths: CAPaths, now: dt.datetime) -> tuple[LocalCA, bool]:
    """The CA at `paths`, created there first when neither file exists; (ca, created)."""
    cert_exists, key_exists = paths.cert.exists(), paths.key.exists()
    if cert_exists and key_exists:
        return load_ca(paths, now), False
    if cert_exists != key_exists:
        present, missing, setting = (
            (paths.cert, paths.key, "forward.ca_key")
            if cert_exists
            else (paths.key, paths.cert, "forward.ca_cert")
        )
        raise _error(
            missing,
            setting,
            f"missing, while {present} exists",
            "put the matching file there, or delete the other one so that both are created anew",
        )
    directory = paths.key.parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        paths.cert.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        with _locked(directory):
            if paths.cert.exists() and paths.key.exists():  # another worker made it meanwhile
                return load_ca(paths, now), False
            certificate, key = generate_ca(now)
            _write_private(paths.key, private_key_pem(key), KEY_MODE)
            _write_private(paths.cert, certificate_pem(certificate), 0o644)
    except OSError as exc:
        raise _error(
            directory,
            "forward.ca_key",
            f"cannot create the CA there: {exc.strerror}",
            "make the directory writable, set XDG_CONFIG_HOME, or give forward.ca_cert and forward.ca_key",
        ) from exc
    return LocalCA(certificate, key, paths.cert, paths.key), True
