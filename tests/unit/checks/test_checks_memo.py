"""The hot path's memos change no verdict: validate() with warm memos answers what it answers cold.

The core memoises pure functions of what clients repeat (the Authorization header before its signature,
x-amz-date, SignedHeaders, Host, x-amz-target verdicts, identities); each test runs the same requests
with every memo emptied and again warm, and compares the whole ValidationResult.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from datetime import timedelta

import pytest
from checks_support import INDEX, WHEN, Signed, context, signed

from proxy.core import identify as identify_module
from proxy.core import model
from proxy.core.checks import CheckContext, ValidationResult, ValidationSettings, validate
from proxy.core.checks import structure as structure_module
from proxy.core.sigv4 import auth as auth_module
from proxy.core.sigv4 import dates as dates_module

MODULE_MEMOS = [
    (auth_module, "_SIGNERS"),
    (dates_module, "_AMZ_DATES"),
    (structure_module, "_SIGNED_NAMES"),
    (identify_module, "_HOST_REGIONS"),
    (model, "_NAMES"),
]


def clear_memos() -> None:
    for module, name in MODULE_MEMOS:
        getattr(module, name).clear()
    INDEX._memos.clear()


@pytest.fixture
def cold() -> Iterator[None]:
    """Every memo empty: the module ones, and the index's (restored for the other tests afterwards)."""
    saved = [(module, name, dict(getattr(module, name))) for module, name in MODULE_MEMOS]
    index_memos = dict(INDEX._memos)
    clear_memos()
    yield
    for module, name, content in saved:
        getattr(module, name).update(content)
    INDEX._memos.update(index_memos)


def comparable(result: ValidationResult) -> tuple[object, ...]:
    signing = result.chunk_signing
    return (
        result,
        result.findings,
        (signing.signing_key, signing.amz_date, signing.scope, signing.seed_signature) if signing else None,
    )


def requests() -> list[Signed]:
    """Valid requests of each protocol and variants that fail a memoised step."""
    made: list[Signed] = []
    for kind in ("storagegateway", "dynamodb", "lambda", "sts", "s3"):
        for presign in (False, True):
            made.append(signed(kind, presign=presign))
    gateway = signed("storagegateway")
    made += [
        gateway.with_headers(("X-Amz-Target", "StorageGateway_20130630.NoSuchOperation")),
        gateway.with_headers(("X-Amz-Target", "Storage_20130630.ListGateways")),
        gateway.with_headers(("X-Amz-Target", "StorageGateway_2013.ListGateways")),
        gateway.with_headers(("Content-Type", "application/json")),
        gateway.with_headers(("Content-Type", "Application/X-Amz-Json-1.1; charset=utf-8")),
        gateway.with_headers(("X-Amz-Date", " 20240501T120000Z ")),
        gateway.with_headers(("X-Amz-Date", "20240501T1200")),
        gateway.with_headers(("Host", "storagegateway.eu-west-1.amazonaws.com")),
        signed("storagegateway", region="eu-west-1"),
        signed("storagegateway", when=WHEN - timedelta(minutes=20)),
        signed("storagegateway", secret="another secret"),
        signed("storagegateway", access_key="AKIDUNKNOWN"),
    ]
    authorization = gateway.head.get("authorization") or ""
    credential_part, _, signature = authorization.rpartition(", Signature=")
    made += [
        gateway.with_headers(("Authorization", f"{credential_part}, Signature={'0' * 64}")),
        gateway.with_headers(("Authorization", f"{credential_part},Signature={signature}")),
        gateway.with_headers(
            ("Authorization", credential_part.replace("SignedHeaders=", "SignedHeaders=date;"))
        ),
        gateway.with_headers(
            ("Authorization", f"{credential_part.replace('/aws4_request', '')}, Signature=x")
        ),
        gateway.with_headers(
            ("Authorization", f"Signature={signature}, {credential_part.partition(' ')[2]}")
        ),
    ]
    return made


def one(request: Signed) -> tuple[object, ...]:
    return comparable(validate(context(request, now=WHEN, settings=ValidationSettings())))


def test_warm_memos_answer_what_cold_memos_answer(cold: None) -> None:
    each = requests()
    cold_results = []
    for request in each:
        clear_memos()
        cold_results.append(one(request))
    assert [one(request) for request in each] == cold_results  # filling the memos
    assert [one(request) for request in each] == cold_results  # every step a hit
    assert len({repr(result) for result in cold_results}) > len(each) // 2  # the variants differ


def test_the_target_memo_never_hides_a_wrong_target(cold: None) -> None:
    gateway = signed("storagegateway")
    valid = validate(context(gateway))
    unknown = gateway.with_headers(("X-Amz-Target", "StorageGateway_20130630.NoSuchOperation"))
    for _ in range(2):
        assert validate(context(gateway)).findings == valid.findings == ()
        codes = [finding.check for finding in validate(context(unknown)).findings]
        assert "headers.target" in codes


def test_check_context_keeps_the_dataclass_signature() -> None:
    """CheckContext's hand-written __init__ (slot setters) has the generated one's parameters."""
    parameters = list(inspect.signature(CheckContext.__init__).parameters.values())[1:]
    fields = [item for item in dataclasses.fields(CheckContext) if item.init]
    assert [p.name for p in parameters] == [item.name for item in fields]
    assert [p.default for p in parameters] == [
        inspect.Parameter.empty if item.default is dataclasses.MISSING else item.default for item in fields
    ]
    gateway = signed("storagegateway")
    by_keyword = context(gateway)
    positional = CheckContext(*(getattr(by_keyword, item.name) for item in fields))
    assert positional == by_keyword
    assert repr(positional) == repr(by_keyword)
    with pytest.raises(dataclasses.FrozenInstanceError):
        positional.enforce = False  # type: ignore[misc]
    assert dataclasses.replace(by_keyword, enforce=False).enforce is False
