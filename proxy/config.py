"""Configuration: defaults < TOML file < SIGWATCH_<SECTION>_<KEY> environment < command-line flags.

Every key is declared once, as a field of a frozen section dataclass with its default and a one-line
description (the description is what `check-config` and the example file show). A bad value stops
start-up with a ConfigError that names the file, the key, what is wrong and how to fix it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

ENV_PREFIX = "SIGWATCH_"


class ConfigError(Exception):
    """A configuration problem a user can fix: where it is, what is wrong, what to do."""

    def __init__(self, source: str, key: str, problem: str, fix: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"{source}: {key}: {problem}. Fix: {fix}")


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class ListenSettings:
    address: str = field(default="127.0.0.1:8080", metadata=_doc("HOST:PORT the proxy listens on"))
    workers: int = field(default=1, metadata=_doc("worker processes sharing the listeners (SO_REUSEPORT)"))


@dataclass(frozen=True, slots=True)
class AdminSettings:
    address: str = field(
        default="127.0.0.1:9090", metadata=_doc("HOST:PORT of /metrics, /healthz and /readyz")
    )


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    url: str = field(
        default="http://127.0.0.1:8081", metadata=_doc("where requests go (default: the built-in emulator)")
    )
    connect_timeout: float = field(default=5.0, metadata=_doc("seconds to open an upstream connection"))
    read_timeout: float = field(
        default=60.0, metadata=_doc("seconds of upstream silence before a 504 (per read)")
    )
    verify_tls: bool = field(default=True, metadata=_doc("verify the upstream's TLS certificate"))
    ca_bundle: str = field(
        default="", metadata=_doc("PEM bundle to verify the upstream with (empty: system CAs)")
    )
    host_header: str = field(
        default="preserve",
        metadata=_doc('"preserve" (the Host the client signed), "upstream", or a literal host[:port]'),
    )
    pool_size: int = field(default=256, metadata=_doc("most pooled upstream connections"))
    keepalive_timeout: float = field(
        default=30.0, metadata=_doc("seconds an idle upstream connection is kept")
    )


@dataclass(frozen=True, slots=True)
class ValidationSettingsConfig:
    mode: str = field(default="observe", metadata=_doc('"observe" (annotate, forward all) or "enforce"'))
    max_skew_seconds: float = field(default=900.0, metadata=_doc("clock window AWS allows (15 minutes)"))
    warn_skew_seconds: float = field(default=300.0, metadata=_doc("skew past which a warning is raised"))
    region: str = field(
        default="",
        metadata=_doc(
            "region requests must be signed for when the endpoint's host does not say (custom endpoints)"
        ),
    )


@dataclass(frozen=True, slots=True)
class CredentialsSettings:
    file: str = field(default="", metadata=_doc("AWS shared-credentials INI file of the keys to verify"))
    from_environment: bool = field(
        default=True,
        metadata=_doc("also trust AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment"),
    )
    allow_insecure_permissions: bool = field(
        default=False,
        metadata=_doc("accept a credentials file readable by group/others (read-only container mounts)"),
    )


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    max_header_line_bytes: int = field(default=8190, metadata=_doc("longest request line or header field"))
    max_headers: int = field(default=128, metadata=_doc("most header fields in a request"))
    header_timeout: float = field(
        default=10.0, metadata=_doc("seconds a client has to finish its request head once started")
    )
    idle_timeout: float = field(default=75.0, metadata=_doc("seconds an idle keep-alive connection is kept"))
    body_timeout: float = field(
        default=30.0,
        metadata=_doc("seconds a request body may pause before the request is cut (400 RequestTimeout)"),
    )
    max_body_bytes: int = field(
        default=5 * 1024**3, metadata=_doc("largest request body accepted (streamed); 413 past it")
    )
    max_buffered_body_bytes: int = field(
        default=32 * 1024**2,
        metadata=_doc(
            "largest body buffered for checks (JSON/Query payload hash; DynamoDB takes 16 MB); 413 past it"
        ),
    )
    max_error_body_bytes: int = field(
        default=64 * 1024, metadata=_doc("most bytes of an error response read for classification")
    )
    max_connections: int = field(default=4096, metadata=_doc("most concurrent client connections"))
    shutdown_grace: float = field(
        default=30.0, metadata=_doc("seconds in-flight requests get to finish on SIGTERM")
    )


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = field(default="auto", metadata=_doc('"json", "console", or "auto" (console on a terminal)'))
    level: str = field(default="info", metadata=_doc("debug, info, warning or error"))


@dataclass(frozen=True, slots=True)
class CatalogSettings:
    extra: tuple[str, ...] = field(
        default=(), metadata=_doc("extra per-service catalog files (JSON) that add or override catalogs")
    )


@dataclass(frozen=True, slots=True)
class EmulatorSettingsConfig:
    address: str = field(default="127.0.0.1:8081", metadata=_doc("HOST:PORT of `sigwatch emulate`"))
    scenario: str = field(default="", metadata=_doc("fault-injection scenario file (TOML), empty for none"))
    seed: int = field(default=0, metadata=_doc("seed of the fault-injection draws"))


DEFAULT_FORWARD_ALLOW = ("*.amazonaws.com", "*.amazonaws.com.cn")


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """Forward-proxy mode (HTTP_PROXY / HTTPS_PROXY pointed at sigwatch), on the same listener."""

    intercept: bool = field(
        default=False,
        metadata=_doc("terminate CONNECT tunnels' TLS with certificates from a local CA, to see the calls"),
    )
    allow: tuple[str, ...] = field(
        default=DEFAULT_FORWARD_ALLOW,
        metadata=_doc(
            "destinations forwarded to (host, *.domain, host:port, IP or CIDR; upstream, emulator and "
            "loopback always)"
        ),
    )
    ca_cert: str = field(
        default="", metadata=_doc("PEM certificate of the interception CA (empty: sigwatch's own CA)")
    )
    ca_key: str = field(
        default="", metadata=_doc("PEM private key of the interception CA (empty: sigwatch's own CA)")
    )
    ca_bundle: str = field(
        default="", metadata=_doc("PEM bundle to verify forwarded-to hosts with (empty: system CAs)")
    )
    connect_timeout: float = field(
        default=10.0, metadata=_doc("seconds to open a connection to a forwarded-to host")
    )


@dataclass(frozen=True, slots=True)
class Settings:
    listen: ListenSettings = ListenSettings()
    admin: AdminSettings = AdminSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    validation: ValidationSettingsConfig = ValidationSettingsConfig()
    credentials: CredentialsSettings = CredentialsSettings()
    limits: LimitsSettings = LimitsSettings()
    logging: LoggingSettings = LoggingSettings()
    catalogs: CatalogSettings = CatalogSettings()
    emulator: EmulatorSettingsConfig = EmulatorSettingsConfig()
    forward: ForwardSettings = ForwardSettings()
    source: str = "defaults"  # where the settings came from, for log lines

    @property
    def enforce(self) -> bool:
        return self.validation.mode == "enforce"


SECTIONS: dict[str, type[Any]] = {
    name: hint for name, hint in get_type_hints(Settings).items() if name != "source"
}


def _coerce(value: Any, annotation: Any, source: str, key: str) -> Any:
    """Convert a TOML or environment value to the field's type, or explain what was expected."""
    text_source = isinstance(value, str)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if text_source and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(source, key, f"expected true or false, got {value!r}", f"set {key} = true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text_source:
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(source, key, f"expected a whole number, got {value!r}", f"set {key} to an integer")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if text_source:
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(
            source, key, f"expected a number, got {value!r}", f"set {key} to a number of seconds"
        )
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(source, key, f"expected a string, got {value!r}", f'quote the value: {key} = "..."')
    if annotation == tuple[str, ...]:
        if text_source:
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(
            source, key, f"expected a list of strings, got {value!r}", f'write {key} = ["a", "b"]'
        )
    raise TypeError(f"unsupported config type {annotation!r}")  # pragma: no cover - a programming error


def _section_hints(section: str) -> dict[str, Any]:
    return get_type_hints(SECTIONS[section])


def _apply(base: Settings, values: Mapping[str, Mapping[str, Any]], source: str) -> Settings:
    """Return `base` with `values` ({section: {key: value}}) applied, checking names and types."""
    replaced: dict[str, Any] = {}
    for section, items in values.items():
        if section not in SECTIONS:
            raise ConfigError(
                source, section, "unknown section", f"use one of: {', '.join(sorted(SECTIONS))}"
            )
        if not isinstance(items, Mapping):
            raise ConfigError(source, section, "expected a table", f"write it as [{section}] with keys below")
        hints = _section_hints(section)
        current = replaced.get(section, getattr(base, section))
        changes = {}
        for key, value in items.items():
            dotted = f"{section}.{key}"
            if key not in hints:
                raise ConfigError(
                    source, dotted, "unknown key", f"use one of: {', '.join(sorted(hints))} in [{section}]"
                )
            changes[key] = _coerce(value, hints[key], source, dotted)
        replaced[section] = dataclasses.replace(current, **changes)
    return dataclasses.replace(base, **replaced)


def _check_address(value: str, source: str, key: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(source, key, f"{value!r} is not HOST:PORT", f"write {key} like 127.0.0.1:8080")


def validate(settings: Settings, source: str) -> Settings:
    """Cross-field and value checks the types alone cannot express."""
    _check_address(settings.listen.address, source, "listen.address")
    _check_address(settings.admin.address, source, "admin.address")
    _check_address(settings.emulator.address, source, "emulator.address")
    url = urlsplit(settings.upstream.url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise ConfigError(
            source,
            "upstream.url",
            f"{settings.upstream.url!r} is not an http(s) URL",
            "write it like https://storagegateway.us-east-2.amazonaws.com or http://127.0.0.1:8081",
        )
    if url.path not in {"", "/"} or url.query:
        raise ConfigError(
            source,
            "upstream.url",
            "a path or query would change what the client signed",
            "give only scheme://host[:port]",
        )
    if settings.validation.mode not in {"observe", "enforce"}:
        raise ConfigError(
            source,
            "validation.mode",
            f"{settings.validation.mode!r} is not a mode",
            'use "observe" or "enforce"',
        )
    if settings.logging.format not in {"auto", "json", "console"}:
        raise ConfigError(
            source,
            "logging.format",
            f"{settings.logging.format!r} is not a format",
            'use "json", "console" or "auto"',
        )
    if settings.logging.level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError(
            source,
            "logging.level",
            f"{settings.logging.level!r} is not a level",
            "use debug, info, warning or error",
        )
    if not 0 < settings.validation.warn_skew_seconds <= settings.validation.max_skew_seconds:
        raise ConfigError(
            source,
            "validation.warn_skew_seconds",
            "must be above 0 and at most validation.max_skew_seconds",
            "pick a warning threshold inside the window, e.g. 300",
        )
    if settings.listen.workers < 1:
        raise ConfigError(source, "listen.workers", "must be at least 1", "set listen.workers = 1 or more")
    for key in ("connect_timeout", "read_timeout", "keepalive_timeout"):
        if getattr(settings.upstream, key) <= 0:
            raise ConfigError(
                source, f"upstream.{key}", "must be above 0", "give a number of seconds above 0"
            )
    for f in dataclasses.fields(LimitsSettings):
        if getattr(settings.limits, f.name) <= 0:
            raise ConfigError(source, f"limits.{f.name}", "must be above 0", "give a positive value")
    _check_forward(settings.forward, source)
    if settings.upstream.ca_bundle and not Path(settings.upstream.ca_bundle).is_file():
        raise ConfigError(
            source,
            "upstream.ca_bundle",
            f"{settings.upstream.ca_bundle} does not exist",
            "give the path of a PEM file",
        )
    return settings


def _check_forward(forward: ForwardSettings, source: str) -> None:
    if forward.connect_timeout <= 0:
        raise ConfigError(
            source, "forward.connect_timeout", "must be above 0", "give a number of seconds above 0"
        )
    if bool(forward.ca_cert) != bool(forward.ca_key):
        given, missing = ("ca_cert", "ca_key") if forward.ca_cert else ("ca_key", "ca_cert")
        raise ConfigError(
            source,
            f"forward.{missing}",
            f"forward.{given} is set but forward.{missing} is not",
            "give both the CA certificate and its key, or neither (sigwatch then uses its own CA)",
        )
    if forward.ca_bundle and not Path(forward.ca_bundle).expanduser().is_file():
        raise ConfigError(
            source, "forward.ca_bundle", f"{forward.ca_bundle} does not exist", "give the path of a PEM file"
        )
    from proxy.server.allowlist import parse_pattern  # pure (no I/O library): safe to import here

    for entry in forward.allow:
        try:
            parse_pattern(entry)
        except ValueError as exc:
            raise ConfigError(
                source,
                "forward.allow",
                f"{entry!r} is not a destination pattern ({exc})",
                'write host names ("s3.amazonaws.com"), "*.domain", "host:port", IPs or CIDRs ("10.0.0.0/8")',
            ) from exc


def read_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, turning syntax errors into a ConfigError with the line."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            source, "(file)", f"cannot read it: {exc.strerror}", "check the path and permissions"
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at that line") from exc


def env_values(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """SIGWATCH_<SECTION>_<KEY>=value pairs, as {section: {key: value}}; unknown names are errors."""
    values: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue  # other SIGWATCH_* variables (e.g. SIGWATCH_SHARED for tests) are not config
        key = rest[len(section) + 1 :]
        known = sorted(_section_hints(section))
        if key not in known:
            names = ", ".join(f"{ENV_PREFIX}{section.upper()}_{k.upper()}" for k in known)
            raise ConfigError(
                f"environment variable {name}", f"{section}.{key}", "unknown key", f"use one of: {names}"
            )
        values.setdefault(section, {})[key] = value
    return values


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Settings from defaults, then the file, then the environment, then flags (`overrides`)."""
    settings = Settings()
    sources = ["defaults"]
    if path is not None:
        settings = validate(_apply(settings, read_file(path), str(path)), str(path))
        sources.append(str(path))
    env = env_values(os.environ if environ is None else environ)
    if env:
        settings = validate(_apply(settings, env, "environment"), "environment")
        sources.append("environment")
    if overrides:
        settings = validate(_apply(settings, overrides, "command line"), "command line")
        sources.append("command line")
    settings = validate(settings, sources[-1])
    return dataclasses.replace(settings, source=" < ".join(sources))


def describe_keys() -> list[tuple[str, str, Any]]:
    """(section.key, description, default) for every key: the reference `check-config --keys` prints."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((f"{section}.{f.name}", f.metadata.get("doc", ""), f.default))
    return rows


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)
