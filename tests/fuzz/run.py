"""Coverage-guided fuzzing of the pure core's parsers with atheris (libFuzzer):

    python -m tests.fuzz.run TARGET [libFuzzer options]     e.g. -max_total_time=60 -artifact_prefix=out/

TARGET is one of tests/fuzz/targets.py's TARGETS, or `all` (the first input byte picks the target: one
process covers every parser, for the quick smoke run of tests/fuzz/test_fuzz_harness.py). `make fuzz` runs
each target for FUZZ_SECONDS. A crash (an exception other than the documented parse errors, or a broken
invariant) stops the run and leaves the input under -artifact_prefix; replay it with
`python -m tests.fuzz.run TARGET <crash file>`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["proxy"]):
    from tests.fuzz.targets import DICTIONARY, SEEDS, TARGETS


def _all(data: bytes) -> None:
    if data:
        targets = list(TARGETS.values())
        targets[data[0] % len(targets)](data[1:])


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {*TARGETS, "all"}:
        sys.exit(f"usage: python -m tests.fuzz.run {{{','.join([*TARGETS, 'all'])}}} [libFuzzer options]")
    name = sys.argv[1]
    target: Callable[[bytes], None] = _all if name == "all" else TARGETS[name]
    options = sys.argv[2:]
    work = Path(tempfile.mkdtemp(prefix=f"sigwatch-fuzz-{name}-"))
    if not any(option.startswith("-dict=") for option in options):
        dictionary = work / "tokens.dict"
        dictionary.write_text("".join(f"{_quoted(token)}\n" for token in DICTIONARY[name]))
        options.append(f"-dict={dictionary}")
    if not any(not option.startswith("-") for option in options):
        corpus = work / "corpus"  # grows as the fuzzer finds new coverage; valid inputs to start from
        corpus.mkdir()
        for index, seed in enumerate(SEEDS[name]):
            (corpus / f"seed-{index}").write_bytes(seed)
        options.append(str(corpus))
    atheris.Setup([sys.argv[0], *options], target)
    atheris.Fuzz()


def _quoted(token: str) -> str:
    """A libFuzzer dictionary entry: a quoted string, non-printable bytes as \\xNN."""
    escaped = "".join(
        ch
        if ch.isascii() and ch.isprintable() and ch not in '"\\'
        else "".join(f"\\x{b:02x}" for b in ch.encode())
        for ch in token
    )
    return f'"{escaped}"'


if __name__ == "__main__":
    main()
