from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ConfigError, Settings, describe_keys, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sigwatch.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_source() -> None:
    settings = load_settings(environ={})
    assert settings == Settings(source="defaults")
    assert settings.listen.address == "127.0.0.1:8080"
    assert settings.admin.address == "127.0.0.1:9090"
    assert settings.validation.mode == "observe"


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[validation]\nmode = "enforce"\nmax_skew_seconds = 600\n[upstream]\nread_timeout = 5\n'
    )
    from_file = load_settings(path, environ={})
    assert from_file.validation.mode == "enforce"
    assert from_file.validation.max_skew_seconds == 600.0
    assert from_file.upstream.read_timeout == 5.0

    env = {"SIGWATCH_VALIDATION_MODE": "observe", "SIGWATCH_UPSTREAM_READ_TIMEOUT": "7.5"}
    from_env = load_settings(path, environ=env)
    assert from_env.validation.mode == "observe"
    assert from_env.upstream.read_timeout == 7.5
    assert from_env.validation.max_skew_seconds == 600.0  # the file still counts where env is silent

    from_flags = load_settings(path, environ=env, overrides={"validation": {"mode": "enforce"}})
    assert from_flags.validation.mode == "enforce"
    assert from_flags.source == f"defaults < {path} < environment < command line"


def test_env_lists_and_booleans() -> None:
    settings = load_settings(
        environ={"SIGWATCH_CATALOGS_EXTRA": "a.json, b.json", "SIGWATCH_UPSTREAM_VERIFY_TLS": "false"}
    )
    assert settings.catalogs.extra == ("a.json", "b.json")
    assert settings.upstream.verify_tls is False


def test_unrelated_sigwatch_variables_are_not_config() -> None:
    assert load_settings(environ={"SIGWATCH_SHARED": "/x"}).source == "defaults"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[validation]\nmode = 'audit'\n", "validation.mode", "'audit' is not a mode"),
        ("[validaton]\nmode = 'observe'\n", "validaton", "unknown section"),
        ("[upstream]\nurl_ = 'http://x'\n", "upstream.url_", "unknown key"),
        ("[upstream]\nread_timeout = 'soon'\n", "upstream.read_timeout", "expected a number"),
        ("[upstream]\nurl = 'ftp://x'\n", "upstream.url", "is not an http(s) URL"),
        ("[upstream]\nurl = 'http://x/prefix'\n", "upstream.url", "a path or query"),
        ("[listen]\naddress = '8080'\n", "listen.address", "is not HOST:PORT"),
        ("[listen]\nworkers = 0\n", "listen.workers", "at least 1"),
        ("[limits]\nheader_timeout = 0\n", "limits.header_timeout", "must be above 0"),
        ("[validation]\nwarn_skew_seconds = 1000\n", "validation.warn_skew_seconds", "at most"),
        ("[credentials]\nfrom_environment = 'maybe'\n", "credentials.from_environment", "true or false"),
        ("[upstream\n", "(syntax)", "Expected"),
    ],
)
def test_bad_file_names_file_key_problem_and_fix(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    error = caught.value
    assert error.source == str(path)
    assert error.key == key
    assert problem in error.problem
    assert error.fix
    assert str(path) in str(error) and key in str(error)


def test_bad_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SIGWATCH_UPSTREAM_URLL": "http://x"})
    assert caught.value.source == "environment variable SIGWATCH_UPSTREAM_URLL"
    assert "SIGWATCH_UPSTREAM_URL" in caught.value.fix


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_every_key_is_documented() -> None:
    rows = describe_keys()
    assert rows and all(doc for _, doc, _ in rows)


def test_example_configs_are_valid() -> None:
    config_dir = Path(__file__).resolve().parents[3] / "config"
    files = sorted(config_dir.glob("*.toml"))
    assert {f.name for f in files} >= {"sigwatch.example.toml", "sidecar.toml", "local-debugging.toml"}
    for path in files:
        load_settings(path, environ={})


def test_example_config_mentions_every_key() -> None:
    text = (Path(__file__).resolve().parents[3] / "config" / "sigwatch.example.toml").read_text()
    for key, _, _ in describe_keys():
        section, name = key.split(".")
        assert f"[{section}]" in text, section
        assert f"{name} =" in text, key
