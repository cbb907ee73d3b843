"""Suite-wide redaction scan: no log line written during the test suite carries a secret or a signature.

A pytest plugin (tests/conftest.py loads it with `pytest_plugins`). It scans:
- every line written to the `logs` sink of tests/conftest.py (all in-process sigwatch logging), as it
  is written, whichever test or fixture writes it;
- JSON lines in each test's captured stdout/stderr;
- whatever a test hands to `scan_output()`: the stdout/stderr of sigwatch subprocesses (all of stderr;
  stdout's JSON log lines; stdout's other lines are the demo banner, which shows AWS's public example
  key on purpose for the person at the terminal).

A hit fails the test that produced it (at teardown) and, at the end, the whole run with a summary.
Messages name the secret and the place, and never print the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# Every secret the tests sign with or configure, in one place: AWS's documented example secret, the
# official SigV4 test suite's variant of it, and the deliberately wrong one tests use for mismatches.
TEST_SECRETS: dict[str, str] = {
    "aws example secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "sigv4 test-suite secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "wrong test secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00",
}
# Credential files committed for the demo, the emulator and the deploy examples: their secrets too.
CREDENTIAL_FILES = (
    REPO / "config" / "emulator-credentials",
    REPO / "deploy" / "kubernetes" / "examples" / "credentials",
)
_CREDENTIAL_LINE = re.compile(r"^\s*aws_(secret_access_key|session_token)\s*=\s*(\S+)\s*$", re.MULTILINE)
_MIN_SECRET = 16  # shorter test values ("t", "s2") would match everywhere
# A signature value: 64 hex digits right after a key that names a signature (Authorization's
# `Signature=`, `X-Amz-Signature=`, `chunk-signature=`, `"SignatureProvided":"..."`).
SIGNATURE_VALUE = re.compile(r"signature[\w-]*\\?\"?\s*[:=]\s*\\?\"?[0-9a-f]{64}(?![0-9a-f])", re.IGNORECASE)


def known_secrets() -> dict[str, str]:
    secrets = dict(TEST_SECRETS)
    for path in CREDENTIAL_FILES:
        if path.is_file():
            for kind, value in _CREDENTIAL_LINE.findall(path.read_text(encoding="utf-8")):
                if len(value) >= _MIN_SECRET and value not in secrets.values():
                    secrets[f"{kind} in {path.relative_to(REPO)}"] = value
    return secrets


SECRETS = known_secrets()


def find_leaks(line: str) -> list[str]:
    """What `line` leaks: the names of the secrets it contains, and `signature` for a signature value."""
    found = [name for name, secret in SECRETS.items() if secret in line]
    # JSON may escape the slash (`\/`): look for that spelling too.
    found += [
        name for name, secret in SECRETS.items() if "/" in secret and secret.replace("/", "\\/") in line
    ]
    if SIGNATURE_VALUE.search(line):
        found.append("a SigV4 signature value")
    return found


@dataclass
class Hit:
    where: str
    source: str
    leaks: list[str]


@dataclass
class LeakScan:
    hits: list[Hit] = field(default_factory=list)
    current_test: str = "(outside a test)"
    lines_scanned: int = 0

    def scan(self, source: str, lines: Iterator[str] | list[str], json_only: bool = False) -> list[Hit]:
        new: list[Hit] = []
        for line in lines:
            if json_only and not line.lstrip().startswith("{"):
                continue
            self.lines_scanned += 1
            leaks = find_leaks(line)
            if leaks:
                new.append(Hit(self.current_test, source, leaks))
        self.hits.extend(new)
        return new


SCAN = LeakScan()


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def scan_output(source: str, stdout: bytes | str | None = None, stderr: bytes | str | None = None) -> None:
    """Scan what a sigwatch subprocess wrote; a hit fails the current test and the run.

    `source` names the process in messages (e.g. "sigwatch demo"). stdout: its JSON log lines;
    stderr: every line.
    """
    hits: list[Hit] = []
    if stdout:
        hits += SCAN.scan(f"{source} stdout", _text(stdout).splitlines(), json_only=True)
    if stderr:
        hits += SCAN.scan(f"{source} stderr", _text(stderr).splitlines())
    if hits:
        pytest.fail(_describe(hits), pytrace=False)


def _describe(hits: list[Hit]) -> str:
    return "secret or signature in log output:\n" + "\n".join(
        f"  {hit.where} ({hit.source}): {', '.join(hit.leaks)}" for hit in hits
    )


def _watch_sink(sink: Any) -> None:
    """Scan each line as it is written to the suite's log sink, whichever test or fixture writes it."""
    if getattr(sink, "_leak_scan_watched", False):
        return
    write = sink.write

    def scanned_write(data: bytes) -> int:
        SCAN.scan("log line", bytes(data).decode("utf-8", "replace").splitlines())
        return int(write(data))

    sink.write = scanned_write
    sink._leak_scan_watched = True


def pytest_configure(config: pytest.Config) -> None:
    for plugin in config.pluginmanager.get_plugins():
        sink = getattr(plugin, "SINK", None)
        if sink is not None and hasattr(sink, "lines"):
            _watch_sink(sink)


def pytest_runtest_setup(item: pytest.Item) -> None:
    SCAN.current_test = item.nodeid


@pytest.fixture(autouse=True)
def _fail_on_leaked_lines(request: pytest.FixtureRequest, logs: Any) -> Iterator[None]:
    """Fails a test, at teardown, when a line it logged carried a secret or a signature."""
    _watch_sink(logs)
    yield
    hits = [hit for hit in SCAN.hits if hit.where == request.node.nodeid]
    if hits:
        pytest.fail(_describe(hits), pytrace=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:
        # A report repeats the sections of earlier phases: each is scanned in its own phase only.
        if name.startswith("Captured std") and name.endswith(report.when):
            SCAN.current_test = report.nodeid
            SCAN.scan(name.lower(), content.splitlines(), json_only=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if SCAN.hits:
        if reporter is not None:
            reporter.write_line(_describe(SCAN.hits), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and SCAN.lines_scanned:
        reporter.write_line(f"redaction scan: {SCAN.lines_scanned} log lines, no secret or signature")
