from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ConfigError, CredentialsSettings
from proxy.credentials import load_credentials, read_credentials_file

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_profiles_become_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n"
        "[temp]\naws_access_key_id=ASIAEXAMPLE2\naws_secret_access_key=s2\naws_session_token=tok\n"
        "[roleonly]\nregion = us-east-1\n",
    )
    found = read_credentials_file(path)
    assert set(found) == {"AKIAIOSFODNN7EXAMPLE", "ASIAEXAMPLE2"}
    assert found["ASIAEXAMPLE2"].session_token == "tok"
    assert SECRET not in repr(found)  # the repr hides secrets


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[p]\naws_secret_access_key = x\n", "[p] aws_access_key_id", "missing"),
        ("[p]\naws_access_key_id = AKIA1\n", "[p] aws_secret_access_key", "missing"),
        ("[p]\naws_access_key_id = AK-IA\naws_secret_access_key = x\n", "[p] aws_access_key_id", "not an"),
        ("aws_access_key_id = AKIA1\n", "(syntax)", "no section headers"),
        (
            "[a]\naws_access_key_id=AKIA1\naws_secret_access_key=x\n"
            "[b]\naws_access_key_id=AKIA1\naws_secret_access_key=y\n",
            "[b] aws_access_key_id",
            "two profiles",
        ),
    ],
)
def test_bad_credentials_files(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_credentials_file(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem.lower() or problem in caught.value.problem
    assert "x" not in caught.value.problem.split() and "y" not in caught.value.problem.split()


def test_world_readable_file_is_refused_unless_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, f"[d]\naws_access_key_id=AKIA1\naws_secret_access_key={SECRET}\n", mode=0o644)
    with pytest.raises(ConfigError) as caught:
        read_credentials_file(path)
    assert "chmod 600" in caught.value.fix
    assert "0644" in caught.value.problem
    assert read_credentials_file(path, allow_insecure=True)["AKIA1"].secret_access_key == SECRET


def test_environment_credentials_and_file_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, "[d]\naws_access_key_id=AKIA1\naws_secret_access_key=fromfile\n")
    env = {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "fromenv", "AWS_SESSION_TOKEN": "t"}
    found = load_credentials(CredentialsSettings(file=str(path)), environ=env)
    assert found["AKIA1"].secret_access_key == "fromfile"
    only_env = load_credentials(CredentialsSettings(), environ=env)
    assert only_env["AKIA1"].session_token == "t"
    assert load_credentials(CredentialsSettings(from_environment=False), environ=env) == {}
