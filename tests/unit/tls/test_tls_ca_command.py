"""`sigwatch ca` prints where the CA is and exactly how to trust it; `run --intercept` turns it on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from proxy.cli import _overrides, build_parser, main


@pytest.fixture
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("SIGWATCH_FORWARD_CA_CERT", "SIGWATCH_FORWARD_CA_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path / "sigwatch"


def test_ca_prints_the_path_and_the_trust_instructions(
    config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ca"]) == 0
    out = capsys.readouterr().out
    cert, key = config_home / "sigwatch-ca.pem", config_home / "sigwatch-ca-key.pem"
    assert "created now" in out
    assert f"certificate: {cert}" in out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "mode 0600" in out
    for instruction in (
        f"export AWS_CA_BUNDLE={cert}",
        f"export REQUESTS_CA_BUNDLE={cert}",
        f"curl --cacert {cert}",
        "export HTTPS_PROXY=http://127.0.0.1:8080",
        f"sudo cp {cert} /usr/local/share/ca-certificates/sigwatch-ca.crt && sudo update-ca-certificates",
        f"sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {cert}",
    ):
        assert instruction in out
    assert "BEGIN" not in out  # neither the certificate nor, above all, the key is printed

    assert main(["ca"]) == 0
    assert "(existing)" in capsys.readouterr().out
    assert main(["ca", "--path"]) == 0
    assert capsys.readouterr().out == f"{cert}\n"


def test_ca_uses_the_configured_files(
    config_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGWATCH_FORWARD_CA_CERT", str(tmp_path / "mounted" / "ca.crt"))
    monkeypatch.setenv("SIGWATCH_FORWARD_CA_KEY", str(tmp_path / "mounted" / "ca.key"))
    assert main(["ca", "--path"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'mounted' / 'ca.crt'}\n"
    assert stat.S_IMODE((tmp_path / "mounted" / "ca.key").stat().st_mode) == 0o600
    assert not config_home.exists()


def test_a_bad_ca_file_exits_2_naming_it(
    config_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ca.crt").write_text("# PLACEHOLDER, NOT A CERTIFICATE\n")
    (tmp_path / "ca.key").write_text("# PLACEHOLDER, NOT A KEY\n")
    monkeypatch.setenv("SIGWATCH_FORWARD_CA_CERT", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("SIGWATCH_FORWARD_CA_KEY", str(tmp_path / "ca.key"))
    assert main(["ca"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "ca.crt") in err and "forward.ca_cert" in err


def test_run_intercept_flag_sets_forward_intercept() -> None:
    parser = build_parser()
    assert _overrides(parser.parse_args(["run", "--intercept"]))["forward"] == {"intercept": True}
    assert "forward" not in _overrides(parser.parse_args(["run"]))
