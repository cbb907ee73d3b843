"""The secrets sigwatch verifies signatures with: an AWS shared-credentials file and/or the environment.

Secrets live only in Credential objects (whose repr hides them); nothing here logs or formats one.
"""

from __future__ import annotations

import configparser
import hmac
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from proxy.config import ConfigError, CredentialsSettings
from proxy.core.model import Credential

_KEY_ID = "aws_access_key_id"
_SECRET = "aws_secret_access_key"
_TOKEN = "aws_session_token"


def _check_permissions(path: Path, allow_insecure: bool) -> None:
    """Refuse a secrets file that group or others can read, as ssh does for private keys."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and not allow_insecure:
        raise ConfigError(
            str(path),
            "(permissions)",
            f"the file holds secrets but is readable by others (mode {stat.S_IMODE(mode):04o})",
            f"run `chmod 600 {path}`, or set credentials.allow_insecure_permissions = true "
            "(flag --allow-insecure-credentials) for a read-only container mount",
        )


def read_credentials_file(path: Path, *, allow_insecure: bool = False) -> dict[str, Credential]:
    """Parse an AWS shared-credentials INI file: every profile becomes one access key."""
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "(file)", "no such file", "give the path of an AWS shared-credentials file")
    _check_permissions(path, allow_insecure)
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_default__")
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=source)
    except (configparser.Error, UnicodeDecodeError) as exc:
        problem = str(exc).splitlines()[0]
        raise ConfigError(
            source, "(syntax)", problem, "write INI profiles: [name] then aws_access_key_id = ... lines"
        ) from exc
    found: dict[str, Credential] = {}
    for profile in parser.sections():
        section = parser[profile]
        key_id = section.get(_KEY_ID, "").strip()
        secret = section.get(_SECRET, "").strip()
        if not key_id and not secret:
            continue  # a profile with only region/role settings holds no key
        if not key_id:
            raise ConfigError(
                source, f"[{profile}] {_KEY_ID}", "missing", f"add {_KEY_ID} = AKIA... to [{profile}]"
            )
        if not secret:
            raise ConfigError(
                source, f"[{profile}] {_SECRET}", "missing", f"add the secret of {key_id} to [{profile}]"
            )
        if not key_id.isalnum():
            raise ConfigError(
                source,
                f"[{profile}] {_KEY_ID}",
                f"{key_id!r} is not an access key id",
                "use letters and digits only",
            )
        token = section.get(_TOKEN, "").strip() or None
        previous = found.get(key_id)
        if previous is not None and not hmac.compare_digest(
            previous.secret_access_key.encode(), secret.encode()
        ):
            raise ConfigError(
                source,
                f"[{profile}] {_KEY_ID}",
                f"{key_id} appears in two profiles with different secrets",
                "keep one secret per access key id",
            )
        found[key_id] = Credential(key_id, secret, token)
    return found


def credentials_from_environment(environ: Mapping[str, str]) -> dict[str, Credential]:
    key_id = environ.get("AWS_ACCESS_KEY_ID", "").strip()
    secret = environ.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if not key_id or not secret:
        return {}
    token = environ.get("AWS_SESSION_TOKEN", "").strip() or None
    return {key_id: Credential(key_id, secret, token)}


def load_credentials(
    settings: CredentialsSettings, environ: Mapping[str, str] | None = None
) -> dict[str, Credential]:
    """Every key sigwatch can verify: the file's, then the environment's (the file wins on a clash)."""
    found: dict[str, Credential] = {}
    if settings.from_environment:
        found.update(credentials_from_environment(os.environ if environ is None else environ))
    if settings.file:
        found.update(
            read_credentials_file(Path(settings.file), allow_insecure=settings.allow_insecure_permissions)
        )
    return found
