"""The `sigwatch` command: run, emulate, demo, check-config, ca."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from proxy import __version__
from proxy.config import ConfigError, Settings, describe_keys, load_settings
from proxy.core.model import Credential
from proxy.credentials import load_credentials, read_credentials_file

EXIT_CONFIG = 2
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"
DEMO_CREDENTIALS = REPO_CONFIG / "emulator-credentials"

RUN_EXAMPLE = """\
example:
  sigwatch run --upstream https://storagegateway.us-east-2.amazonaws.com \\
      --credentials ~/.aws/credentials --mode observe --log-format console
  then: aws storagegateway list-gateways --endpoint-url http://127.0.0.1:8080
"""
EMULATE_EXAMPLE = """\
example:
  sigwatch emulate --listen 127.0.0.1:8081 --scenario config/scenarios/throttling.toml
"""
DEMO_EXAMPLE = """\
example:
  sigwatch demo --traffic
  then: export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
        export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
        aws storagegateway list-gateways --endpoint-url http://127.0.0.1:8080 --region us-east-1
"""
CHECK_EXAMPLE = """\
example:
  sigwatch check-config config/sigwatch.example.toml
  sigwatch check-config --keys        # every key, its default and what it does
  sigwatch check-config --offline deploy/kubernetes/base/sigwatch.toml   # paths that exist in the pod
"""
CA_EXAMPLE = """\
example:
  sigwatch ca                          # where the CA is (made now if needed) and how to trust it
  export AWS_CA_BUNDLE="$(sigwatch ca --path)" HTTPS_PROXY=http://127.0.0.1:8080
  sigwatch run --config config/local-debugging.toml    # in another shell: interception on
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config file (see config/sigwatch.example.toml)")
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], help="log format (default: auto)"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigwatch",
        description="A validating, classifying, observing proxy for AWS SigV4 traffic.",
        epilog="example:\n  sigwatch demo          # emulator + proxy; see `sigwatch demo --help`",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sigwatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    run = commands.add_parser(
        "run",
        help="run the proxy",
        description="Run the proxy.",
        epilog=RUN_EXAMPLE,
        formatter_class=formatter,
    )
    _add_common(run)
    run.add_argument("--listen", metavar="HOST:PORT", help="proxy listener (default 127.0.0.1:8080)")
    run.add_argument("--upstream", metavar="URL", help="where requests go (default: the built-in emulator)")
    run.add_argument("--admin", metavar="HOST:PORT", help="metrics/health listener (default 127.0.0.1:9090)")
    run.add_argument("--mode", choices=["observe", "enforce"], help="observe (default) or enforce")
    run.add_argument("--credentials", metavar="PATH", help="AWS shared-credentials file of keys to verify")
    run.add_argument(
        "--allow-insecure-credentials",
        action="store_true",
        default=None,
        help="accept a credentials file readable by others (read-only container mounts)",
    )
    run.add_argument("--workers", type=int, metavar="N", help="worker processes sharing the listeners")
    run.add_argument(
        "--intercept",
        action="store_true",
        default=None,
        help="terminate HTTPS_PROXY tunnels' TLS with the local CA to check HTTPS calls (see `sigwatch ca`)",
    )

    emulate = commands.add_parser(
        "emulate",
        help="run the built-in emulated AWS endpoint",
        description="Run the emulated Storage Gateway / S3 / Import-Export endpoint.",
        epilog=EMULATE_EXAMPLE,
        formatter_class=formatter,
    )
    _add_common(emulate)
    emulate.add_argument("--listen", metavar="HOST:PORT", help="emulator listener (default 127.0.0.1:8081)")
    emulate.add_argument("--credentials", metavar="PATH", help="credentials the emulator accepts")
    emulate.add_argument("--scenario", metavar="PATH", help="fault-injection scenario (TOML)")
    emulate.add_argument("--seed", type=int, help="seed of the fault-injection draws")

    demo = commands.add_parser(
        "demo",
        help="emulator + proxy together, ready to use",
        description="Start the emulator and the proxy in front of it, with the example credentials.",
        epilog=DEMO_EXAMPLE,
        formatter_class=formatter,
    )
    _add_common(demo)
    demo.add_argument("--traffic", action="store_true", help="also send a realistic mix of demo traffic")
    demo.add_argument("--mode", choices=["observe", "enforce"], help="observe (default) or enforce")
    demo.add_argument("--listen", metavar="HOST:PORT", help="proxy listener (default 127.0.0.1:8080)")
    demo.add_argument("--admin", metavar="HOST:PORT", help="metrics listener (default 127.0.0.1:9090)")
    demo.add_argument("--emulator", metavar="HOST:PORT", help="emulator listener (default 127.0.0.1:8081)")
    demo.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="traffic only: send the demo traffic to this running proxy (starts no emulator, no proxy)",
    )

    check = commands.add_parser(
        "check-config",
        help="validate a config file",
        description="Validate a config file (and the credentials and catalog files it names); exit 0 or 2.",
        epilog=CHECK_EXAMPLE,
        formatter_class=formatter,
    )
    check.add_argument("path", type=Path, nargs="?", help="the TOML file")
    check.add_argument("--keys", action="store_true", help="list every key with its default")
    check.add_argument(
        "--offline",
        action="store_true",
        help="check the file alone, not the credentials/catalog files it names (a config for a container)",
    )

    ca = commands.add_parser(
        "ca",
        help="the TLS-interception CA: its path and how to trust it",
        description=(
            "Print the path of the CA certificate that `run --intercept` issues certificates from "
            "(creating the CA on first use, or using forward.ca_cert/ca_key when configured), and "
            "exactly how to make clients trust it."
        ),
        epilog=CA_EXAMPLE,
        formatter_class=formatter,
    )
    ca.add_argument("--config", type=Path, help="TOML config file (for forward.ca_cert / forward.ca_key)")
    ca.add_argument("--path", action="store_true", help="print only the certificate's path (for scripts)")
    return parser


def _overrides(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Flags that were given, as {section: {key: value}} (flags beat env, file and defaults)."""
    mapping = {
        "listen": ("listen", "address"),
        "upstream": ("upstream", "url"),
        "admin": ("admin", "address"),
        "mode": ("validation", "mode"),
        "credentials": ("credentials", "file"),
        "allow_insecure_credentials": ("credentials", "allow_insecure_permissions"),
        "workers": ("listen", "workers"),
        "log_format": ("logging", "format"),
        "log_level": ("logging", "level"),
        "scenario": ("emulator", "scenario"),
        "seed": ("emulator", "seed"),
        "emulator": ("emulator", "address"),
        "intercept": ("forward", "intercept"),
    }
    overrides: dict[str, dict[str, Any]] = {}
    for attribute, (section, key) in mapping.items():
        value = None if attribute in skip else getattr(args, attribute, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = str(value) if isinstance(value, Path) else value
    return overrides


def _fail(error: ConfigError) -> int:
    print(f"sigwatch: configuration error in {error.source}", file=sys.stderr)
    print(f"  key:     {error.key}", file=sys.stderr)
    print(f"  problem: {error.problem}", file=sys.stderr)
    print(f"  fix:     {error.fix}", file=sys.stderr)
    return EXIT_CONFIG


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run the main coroutine, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.run(main)
    return uvloop.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    from proxy.observability.logs import configure_logging
    from proxy.server.runtime import serve

    settings = load_settings(args.config, overrides=_overrides(args))
    credentials = load_credentials(settings.credentials)
    configure_logging(settings.logging.format, settings.logging.level)
    return run_async(serve(settings, credentials))


def example_credentials(path: Path | None = None) -> dict[str, Credential]:
    """The emulator's keys: a credentials file, else config/emulator-credentials from a source tree,
    else AWS's documented example key built into the emulator (an installed package has no config/).

    The example keys are public on purpose, so the file-permission rule for secrets does not apply.
    """
    if path is not None:
        return read_credentials_file(path.expanduser(), allow_insecure=True)
    if DEMO_CREDENTIALS.is_file():
        return read_credentials_file(DEMO_CREDENTIALS, allow_insecure=True)
    from proxy.emulator.settings import EXAMPLE_CREDENTIAL

    return {EXAMPLE_CREDENTIAL.access_key_id: EXAMPLE_CREDENTIAL}


def cmd_emulate(args: argparse.Namespace) -> int:
    from proxy.observability.logs import configure_logging
    from proxy.server.demo import serve_emulator

    settings = load_settings(args.config, overrides=_overrides(args, skip=("credentials",)))
    credentials = example_credentials(Path(args.credentials) if args.credentials else None)
    configure_logging(settings.logging.format, settings.logging.level)
    return run_async(serve_emulator(settings, credentials))


def cmd_demo(args: argparse.Namespace) -> int:
    from proxy.observability.logs import configure_logging
    from proxy.server.demo import serve_demo, serve_traffic

    overrides = _overrides(args)
    settings = load_settings(args.config, overrides=overrides)
    credentials = example_credentials()
    configure_logging(settings.logging.format, settings.logging.level)
    if args.endpoint_url:
        return run_async(serve_traffic(args.endpoint_url, credentials))
    if "upstream" not in overrides:
        overrides.setdefault("upstream", {})["url"] = f"http://{settings.emulator.address}"
        settings = load_settings(args.config, overrides=overrides)
    return run_async(serve_demo(settings, credentials, traffic=args.traffic))


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.keys:
        for key, doc, default in describe_keys():
            print(f"{key:40} {default!r:24} {doc}")
        return 0
    if args.path is None:
        print("sigwatch check-config: give a config file, or --keys", file=sys.stderr)
        return EXIT_CONFIG
    from proxy.server.runtime import load_catalogs

    settings: Settings = load_settings(args.path, environ={})
    if args.offline:
        print(
            f"{args.path}: ok (mode {settings.validation.mode}, upstream {settings.upstream.url}; "
            "credentials and catalog files not opened: --offline)"
        )
        return 0
    credentials = load_credentials(settings.credentials, environ={})
    load_catalogs(settings)
    print(
        f"{args.path}: ok (mode {settings.validation.mode}, upstream {settings.upstream.url}, "
        f"{len(credentials)} credential(s) from the file)"
    )
    return 0


def cmd_ca(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from proxy.tls import ca_paths, load_or_create_ca, trust_instructions

    settings = load_settings(args.config)
    paths = ca_paths(settings.forward)
    ca, created = load_or_create_ca(paths, datetime.now(UTC))
    if args.path:
        print(ca.cert_path)
        return 0
    status = "created now" if created else "configured" if paths.configured else "existing"
    print(f"sigwatch interception CA ({status}):")
    print(f"  certificate: {ca.cert_path}")
    print(f"  private key: {ca.key_path}  (mode {ca.key_path.stat().st_mode & 0o777:04o}; never share it)")
    print(f"  subject:     {ca.certificate.subject.rfc4514_string()}")
    print(f"  valid until: {ca.certificate.not_valid_after_utc:%Y-%m-%d}")
    print()
    print(trust_instructions(ca.cert_path))
    return 0


COMMANDS = {
    "run": cmd_run,
    "emulate": cmd_emulate,
    "demo": cmd_demo,
    "check-config": cmd_check_config,
    "ca": cmd_ca,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        return _fail(error)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C during shutdown
        return 130
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
