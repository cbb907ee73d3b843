"""Parse SigV4 credentials out of a request: the `Authorization` header or presigned query parameters.

Parsing is separate from verification: everything here is checkable without a secret, and the parse
errors are precise enough for the structure check to answer with AWS's own wording (which component is
missing, what the bad Credential value was).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote

from proxy.core.frozen import remember, slot_constructor
from proxy.core.model import RequestHead

ALGORITHM = "AWS4-HMAC-SHA256"
ALGORITHM_V4A = "AWS4-ECDSA-P256-SHA256"
TERMINATOR = "aws4_request"

# Presigned (query-string) authentication parameters, in the order S3 names them in its error message.
PRESIGNED_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_PRESIGNED_KEYS = frozenset((*PRESIGNED_PARAMETERS, "X-Amz-Security-Token"))
# The Authorization header's three components, in the order Coral lists the missing ones.
HEADER_COMPONENTS = ("Credential", "Signature", "SignedHeaders")


class AuthParseErrorKind(StrEnum):
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"  # not AWS4-HMAC-SHA256 (SigV2, SigV4A, Bearer, ...)
    MISSING_COMPONENTS = "missing_components"  # Credential / Signature / SignedHeaders absent
    MALFORMED_CREDENTIAL = "malformed_credential"  # not exactly 5 slash-delimited elements
    MISSING_QUERY_PARAMETERS = "missing_query_parameters"  # presigned URL without every X-Amz-* parameter


class AuthParseError(ValueError):
    """Why a request's SigV4 credentials could not be parsed.

    `missing`: the absent components (header) or parameters (presigned), in AWS's order; `value`: the
    offending value (the Credential, or the algorithm); `raw`: the whole Authorization header value.
    """

    def __init__(
        self,
        kind: AuthParseErrorKind,
        *,
        missing: tuple[str, ...] = (),
        value: str = "",
        raw: str = "",
        presigned: bool = False,
    ) -> None:
        super().__init__(f"{kind}: missing={missing!r} value={value!r}")
        self.kind = kind
        self.missing = missing
        self.value = value
        self.raw = raw
        self.presigned = presigned


@dataclass(frozen=True, slots=True)
class CredentialScope:
    """`<access key>/<YYYYMMDD>/<region>/<service>/aws4_request`, split into its parts."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    # Built once: a parsed scope is memoised with its Authorization prefix and signs many requests.
    _scope: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scope", f"{self.date}/{self.region}/{self.service}/{self.terminator}")

    @property
    def scope(self) -> str:
        """The credential scope line of the string to sign (without the access key)."""
        return self._scope

    @classmethod
    def parse(cls, value: str, *, raw: str = "", presigned: bool = False) -> CredentialScope:
        """ "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term"."""
        parts = value.split("/")
        if len(parts) != 5:
            raise AuthParseError(
                AuthParseErrorKind.MALFORMED_CREDENTIAL, value=value, raw=raw, presigned=presigned
            )
        return cls(parts[0], parts[1], parts[2], parts[3], parts[4])


@dataclass(frozen=True, slots=True)
class SigV4Authorization:
    """The SigV4 credentials of one request, from the Authorization header or a presigned URL."""

    credential: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str
    signed_headers_line: str  # the SignedHeaders value as sent (the canonical request's 6th line)
    presigned: bool = False
    algorithm: str = ALGORITHM
    raw: str = ""  # the Authorization header value ("" for presigned)
    amz_date: str | None = None  # presigned: X-Amz-Date
    expires: str | None = None  # presigned: X-Amz-Expires, as sent
    security_token: str | None = None  # presigned: X-Amz-Security-Token

    @property
    def access_key_id(self) -> str:
        return self.credential.access_key_id


def authorization_algorithm(value: str) -> str:
    """The scheme token of an Authorization header value (`AWS4-HMAC-SHA256`, `AWS`, `Bearer`, ...)."""
    return value.strip().split(None, 1)[0] if value.strip() else ""


def _components(rest: str) -> tuple[str | None, str | None, str | None]:
    """(Credential, SignedHeaders, Signature) of the comma-separated components; the last one given wins."""
    credential = signed = signature = None
    for component in rest.split(","):
        name, sep, item = component.strip().partition("=")
        if not sep:
            continue
        if name == "Credential":
            credential = item
        elif name == "SignedHeaders":
            signed = item
        elif name == "Signature":
            signature = item
    return credential, signed, signature


# The parsed part of an Authorization header before its Signature, which a client repeats on every
# request of a day: "Credential=<key>/<date>/<region>/<service>/aws4_request, SignedHeaders=<names>".
_Signer = tuple[CredentialScope, tuple[str, ...], str]  # scope, signed header names, SignedHeaders as sent
_SIGNERS: dict[str, _Signer] = {}
_SIGNERS_LIMIT = 1024


def _signer_part(components: str) -> _Signer | None:
    """The memoised Credential and SignedHeaders of the components before Signature, or None when they
    do not parse (the caller's full parse then raises with the whole header)."""
    found = _SIGNERS.get(components)
    if found is not None:
        return found
    credential, signed, _ = _components(components)
    if credential is None or signed is None or credential.count("/") != 4:
        return None
    parts = credential.split("/")
    scope = CredentialScope(parts[0], parts[1], parts[2], parts[3], parts[4])
    return remember(_SIGNERS, components, (scope, tuple(signed.split(";")), signed), _SIGNERS_LIMIT)


def parse_authorization(value: str) -> SigV4Authorization:
    """Parse `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.

    Components are comma-separated with optional whitespace (botocore writes `, `; other SDKs `,`).
    Raises AuthParseError.

    When Signature is the last component (every SDK writes it last), what precedes it is parsed once per
    distinct value (memoised, bounded) and only the signature is new: the same result as the full parse,
    where each component given twice keeps its last value.
    """
    stripped = value.strip()
    algorithm, _, rest = stripped.partition(" ")
    if algorithm != ALGORITHM:
        raise AuthParseError(AuthParseErrorKind.UNSUPPORTED_ALGORITHM, value=algorithm, raw=value)
    before, comma, last = rest.rpartition(",")
    last = last.strip()
    if comma and last.startswith("Signature="):
        signer = _signer_part(before)
        if signer is not None:
            scope, signed_headers, signed_line = signer
            return _make_authorization(
                scope, signed_headers, last[10:], signed_line, False, ALGORITHM, value, None, None, None
            )
    credential, signed, signature = _components(rest)
    if credential is None or signed is None or signature is None:
        present = {"Credential": credential, "Signature": signature, "SignedHeaders": signed}
        missing = tuple(name for name in HEADER_COMPONENTS if present[name] is None)
        raise AuthParseError(AuthParseErrorKind.MISSING_COMPONENTS, missing=missing, raw=value)
    return SigV4Authorization(
        credential=CredentialScope.parse(credential, raw=value),
        signed_headers=tuple(signed.split(";")),
        signature=signature,
        signed_headers_line=signed,
        raw=value,
    )


_make_authorization = slot_constructor(SigV4Authorization)


def presigned_parameters(query: str) -> dict[str, str] | None:
    """The decoded X-Amz-* authentication parameters of a query string, or None when it has none.

    A cheap substring test keeps the common (header-signed) case free of any parsing.
    """
    if "X-Amz-" not in query:
        return None
    found: dict[str, str] = {}
    for pair in query.split("&"):
        key, _, item = pair.partition("=")
        if key in _PRESIGNED_KEYS and key not in found:
            found[key] = unquote(item)
    if not found.keys() & {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"}:
        return None
    return found


# S3's SigV2 query-string authentication ("Query String Request Authentication Alternative" of the S3
# SigV2 documentation; botocore's HmacV1QueryAuth, what boto3's generate_presigned_url makes for S3 unless
# told to use s3v4): all three parameters, and no `SignatureVersion`, which marks the Query protocol's
# own SigV2 (`Action=...&SignatureVersion=2&AWSAccessKeyId=...&Signature=...`).
SIGV2_QUERY_PARAMETERS = ("AWSAccessKeyId", "Signature", "Expires")


def is_sigv2_query(query: str) -> bool:
    """Does the query string carry S3's SigV2 query-string authentication?"""
    if "AWSAccessKeyId=" not in query:
        return False
    keys = {pair.partition("=")[0] for pair in query.split("&")}
    return keys.issuperset(SIGV2_QUERY_PARAMETERS) and "SignatureVersion" not in keys


def parse_presigned(parameters: dict[str, str]) -> SigV4Authorization:
    """Build the credentials of a presigned request from `presigned_parameters()`. Raises AuthParseError."""
    missing = tuple(name for name in PRESIGNED_PARAMETERS if name not in parameters)
    if missing:
        raise AuthParseError(AuthParseErrorKind.MISSING_QUERY_PARAMETERS, missing=missing, presigned=True)
    algorithm = parameters["X-Amz-Algorithm"]
    if algorithm != ALGORITHM:
        raise AuthParseError(AuthParseErrorKind.UNSUPPORTED_ALGORITHM, value=algorithm, presigned=True)
    signed = parameters["X-Amz-SignedHeaders"]
    return SigV4Authorization(
        credential=CredentialScope.parse(parameters["X-Amz-Credential"], presigned=True),
        signed_headers=tuple(signed.split(";")),
        signature=parameters["X-Amz-Signature"],
        signed_headers_line=signed,
        presigned=True,
        amz_date=parameters["X-Amz-Date"],
        expires=parameters["X-Amz-Expires"],
        security_token=parameters.get("X-Amz-Security-Token"),
    )


# Headers that decide what a signature covers and how it is checked: sent twice, a verifier and the
# service may each read a different one (the first, the last, or both joined by a comma).
SINGLE_HEADERS = ("host", "authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token")


def ambiguous_credentials(head: RequestHead) -> str | None:
    """Why a request's credentials are ambiguous, or None.

    A header of SINGLE_HEADERS sent twice (and `Date` twice when it is the signing date), an
    Authorization component given twice (`Credential=a, Credential=b`), or a presigned X-Amz-*
    parameter given twice. sigwatch does not guess which copy the service would use: it reports the
    request (observe mode) or refuses it (enforce mode).
    """
    if head.has_repeated_headers:  # else no header can be there twice: skip the look-ups
        for name in SINGLE_HEADERS:
            count = len(head.get_all(name))
            if count > 1:
                return _twice(f"{count} {name} headers", name)
        if not head.has("x-amz-date") and len(head.get_all("date")) > 1:
            return _twice("several Date headers (the signing date without x-amz-date)", "Date")
    authorization = head.get("authorization")
    if authorization is not None:
        _, _, rest = authorization.strip().partition(" ")
        before, comma, last = rest.rpartition(",")
        if comma and last.strip().startswith("Signature="):
            # What precedes a trailing Signature repeats on every request (memoised, as in the parse).
            found = _REPEATED_COMPONENTS.get(before)
            if found is None:
                found = remember(_REPEATED_COMPONENTS, before, _repeated_components(before), _SIGNERS_LIMIT)
            repeated, has_signature = found
            if repeated is None and has_signature:
                repeated = "Signature"
        else:
            repeated = _repeated_components(rest)[0]
        if repeated is not None:
            return _twice(f"an Authorization header with {repeated} given twice", repeated)
    if "X-Amz-" in head.query:
        seen = set()
        for pair in head.query.split("&"):
            key = pair.partition("=")[0]
            if key in _PRESIGNED_KEYS:
                if key in seen:
                    return _twice(f"the query parameter {key} twice", key)
                seen.add(key)
    return None


# Authorization components before a trailing Signature -> (first component given twice, Signature among them)
_REPEATED_COMPONENTS: dict[str, tuple[str | None, bool]] = {}


def _repeated_components(components: str) -> tuple[str | None, bool]:
    """The first of Credential / SignedHeaders / Signature given a second time (in order), and whether
    Signature is among the components."""
    seen: set[str] = set()
    for component in components.split(","):
        name, sep, _ = component.strip().partition("=")
        if sep and name in HEADER_COMPONENTS:
            if name in seen:
                return name, "Signature" in seen
            seen.add(name)
    return None, "Signature" in seen


def _twice(what: str, name: str) -> str:
    return (
        f"The request carries {what}: sigwatch does not guess which one the service would use. "
        f"Send {name} once."
    )
