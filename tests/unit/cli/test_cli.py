from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proxy import __version__
from proxy.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"sigwatch {__version__}"


@pytest.mark.parametrize("command", ["run", "emulate", "demo", "check-config", "ca"])
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "example:" in out
    assert "sigwatch" in out


def test_run_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--config",
        "--listen",
        "--upstream",
        "--admin",
        "--mode",
        "--credentials",
        "--log-format",
        "--log-level",
    ):
        assert flag in out


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(REPO / "config" / "sigwatch.example.toml")]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_config_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--keys"]) == 0
    assert "upstream.url" in capsys.readouterr().out


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[upstream]\nread_timeout = "soon"\n')
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "upstream.read_timeout" in err
    assert "fix:" in err


def test_bad_credentials_file_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\n")
    credentials.chmod(0o600)
    config = tmp_path / "sigwatch.toml"
    config.write_text(f'[credentials]\nfile = "{credentials}"\n')
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(credentials) in err
    assert "[default] aws_secret_access_key" in err


def test_run_with_bad_credentials_exits_2_before_listening(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id=AKIAEXAMPLE\naws_secret_access_key=abc\n")
    credentials.chmod(0o644)
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "run", "--credentials", str(credentials), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert str(credentials) in result.stderr
    assert "chmod 600" in result.stderr
    assert "abc" not in result.stderr  # the secret never appears


def test_check_config_offline_does_not_open_named_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pod.toml"
    config.write_text('[credentials]\nfile = "/etc/sigwatch/credentials/credentials"\n')
    assert main(["check-config", str(config)]) == 2  # here the file is missing: an error
    assert "/etc/sigwatch/credentials/credentials" in capsys.readouterr().err
    assert main(["check-config", "--offline", str(config)]) == 0
    assert "--offline" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[validation]\nmode = 'audit'\n")
    assert main(["check-config", "--offline", str(bad)]) == 2  # the file itself is still checked
