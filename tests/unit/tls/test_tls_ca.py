"""The local CA: made on first use with a 0600 key, loaded and checked when given, and the leaf
certificates it issues verify in a real TLS handshake (strict X.509 checks on)."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.config import ConfigError, ForwardSettings, load_settings
from proxy.server.forward import ForwardProxy
from proxy.tls import CAPaths, LeafContexts, ca_paths, config_dir, load_or_create_ca
from proxy.tls.ca import LEAF_LIFETIME

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def own_paths(tmp_path: Path) -> CAPaths:
    return ca_paths(ForwardSettings(), {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})


def test_config_dir_follows_xdg_then_home(tmp_path: Path) -> None:
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "sigwatch"
    assert config_dir({"HOME": str(tmp_path)}) == tmp_path / ".config" / "sigwatch"
    # A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
    assert config_dir({"XDG_CONFIG_HOME": "rel", "HOME": str(tmp_path)}) == tmp_path / ".config" / "sigwatch"
    given = ca_paths(ForwardSettings(ca_cert="~/ca.crt", ca_key="/k/ca.key"), {})
    assert given.configured and given.cert == Path("~/ca.crt").expanduser() and given.key == Path("/k/ca.key")


def test_first_use_creates_a_ca_with_a_private_key_file(tmp_path: Path) -> None:
    paths = own_paths(tmp_path)
    ca, created = load_or_create_ca(paths, NOW)
    assert created and not paths.configured
    assert paths.key.parent == tmp_path / "xdg" / "sigwatch"
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.key.parent.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" not in paths.cert.read_bytes()  # the file clients trust holds no key
    certificate = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert certificate.not_valid_before_utc <= NOW < certificate.not_valid_after_utc
    again, created_again = load_or_create_ca(paths, NOW)
    assert not created_again
    assert again.certificate == ca.certificate


def test_a_ca_made_with_openssl_as_deploy_readme_says_is_accepted(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "ca.crt", tmp_path / "ca.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "365", "-subj", "/CN=sigwatch interception CA", "-keyout", str(key), "-out", str(cert),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o440)  # as mounted from the Kubernetes Secret: accepted, it is the user's file
    ca, created = load_or_create_ca(CAPaths(cert, key, configured=True), dt.datetime.now(dt.UTC))
    assert not created
    context = LeafContexts(ca).context_for("storagegateway.us-east-2.amazonaws.com")
    handshake(context, ca.cert_pem, "storagegateway.us-east-2.amazonaws.com")


def test_broken_ca_files_are_config_errors_naming_file_and_key(tmp_path: Path) -> None:
    first = own_paths(tmp_path)
    load_or_create_ca(first, NOW)
    second = ca_paths(ForwardSettings(), {"XDG_CONFIG_HOME": str(tmp_path / "other")})
    load_or_create_ca(second, NOW)

    mixed = CAPaths(first.cert, second.key, configured=True)
    with pytest.raises(ConfigError) as caught:
        load_or_create_ca(mixed, NOW)
    assert (caught.value.source, caught.value.key) == (str(second.key), "forward.ca_key")
    assert "does not belong" in caught.value.problem

    half = CAPaths(first.cert, tmp_path / "absent.key", configured=True)
    with pytest.raises(ConfigError) as caught:
        load_or_create_ca(half, NOW)
    assert (caught.value.source, caught.value.key) == (str(tmp_path / "absent.key"), "forward.ca_key")

    leaf = trustme.CA().issue_cert("not-a-ca.example")
    leaf_cert, leaf_key = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    leaf.cert_chain_pems[0].write_to_path(str(leaf_cert))
    leaf.private_key_pem.write_to_path(str(leaf_key))
    with pytest.raises(ConfigError) as caught:
        load_or_create_ca(CAPaths(leaf_cert, leaf_key, configured=True), dt.datetime.now(dt.UTC))
    assert caught.value.key == "forward.ca_cert" and "not a CA" in caught.value.problem

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("# PLACEHOLDER, NOT A CERTIFICATE\n")
    with pytest.raises(ConfigError) as caught:
        load_or_create_ca(CAPaths(garbage, first.key, configured=True), NOW)
    assert caught.value.key == "forward.ca_cert" and "PEM" in caught.value.problem

    with pytest.raises(ConfigError) as caught:
        load_or_create_ca(first, NOW + dt.timedelta(days=20 * 365))
    assert "not valid now" in caught.value.problem


def test_interception_stops_start_up_on_a_bad_ca(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    settings = load_settings(
        environ={},
        overrides={"forward": {"intercept": True, "ca_cert": f"{missing}.crt", "ca_key": f"{missing}.key"}},
    )
    (tmp_path / "missing.crt").write_text("x")
    with pytest.raises(ConfigError) as caught:
        ForwardProxy(settings, clock=lambda: NOW)
    assert caught.value.key == "forward.ca_key"
    # Interception off: the CA is not even looked at.
    off = load_settings(
        environ={}, overrides={"forward": {"ca_cert": f"{missing}.crt", "ca_key": f"{missing}.key"}}
    )
    assert ForwardProxy(off, clock=lambda: NOW).ca is None


def handshake(server_context: ssl.SSLContext, ca_pem: bytes, server_hostname: str) -> dict[str, object]:
    """A complete TLS handshake in memory; returns the certificate the client verified."""
    client_context = ssl.create_default_context(cadata=ca_pem.decode())
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 clients do by default
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    assert server.selected_alpn_protocol() in {None, "http/1.1"}
    peer = client.getpeercert()
    assert peer is not None
    return peer


@pytest.mark.parametrize(
    ("host", "san"),
    [
        ("storagegateway.us-east-2.amazonaws.com", ("DNS", "storagegateway.us-east-2.amazonaws.com")),
        ("127.0.0.1", ("IP Address", "127.0.0.1")),
        ("::1", ("IP Address", "0:0:0:0:0:0:0:1")),
    ],
)
def test_leaf_certificates_verify_for_names_and_addresses(
    tmp_path: Path, host: str, san: tuple[str, str]
) -> None:
    ca, _ = load_or_create_ca(own_paths(tmp_path), dt.datetime.now(dt.UTC))
    leaves = LeafContexts(ca)
    peer = handshake(leaves.context_for(host), ca.cert_pem, host)
    assert peer["subjectAltName"] == (san,)


def test_leaves_are_cached_per_host_renewed_before_expiry_and_bounded(tmp_path: Path) -> None:
    ca, _ = load_or_create_ca(own_paths(tmp_path), NOW)
    clock = [NOW]
    leaves = LeafContexts(ca, max_hosts=2, clock=lambda: clock[0])
    first = leaves.context_for("a.amazonaws.com")
    assert leaves.context_for("a.amazonaws.com") is first
    assert leaves.issued == 1
    leaves.context_for("b.amazonaws.com")
    assert leaves.issued == 2
    leaves.context_for("c.amazonaws.com")  # a third host evicts the least recently used (a)
    leaves.context_for("a.amazonaws.com")
    assert leaves.issued == 4
    clock[0] = NOW + LEAF_LIFETIME - dt.timedelta(hours=1)  # about to expire: made anew
    assert leaves.context_for("a.amazonaws.com") is not first
    assert leaves.issued == 5


def test_a_leaf_never_outlives_its_ca(tmp_path: Path) -> None:
    ca, _ = load_or_create_ca(own_paths(tmp_path), NOW)
    late = ca.certificate.not_valid_after_utc - dt.timedelta(days=10)
    leaf = ca.issue_leaf("s3.amazonaws.com", ec.generate_private_key(ec.SECP256R1()).public_key(), late)
    assert leaf.not_valid_after_utc == ca.certificate.not_valid_after_utc
    assert leaf.issuer == ca.certificate.subject
