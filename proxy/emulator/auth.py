"""The emulator authenticates exactly as AWS does, with the proxy's own verifier.

Every request goes through proxy.core.checks.validate in enforce mode with the emulator's credentials;
the first error finding is what AWS would answer for the request's protocol, and the emulator answers
it (rendered by proxy.core.render like every other error). An aws-chunked body is then verified chunk by
chunk by the same payload verifier the proxy streams bodies through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from proxy.core.checks import CheckContext, ValidationSettings, payload_verifier, validate
from proxy.core.identify import identify
from proxy.core.model import AwsError, RequestHead, RequestIdentity, Severity
from proxy.core.services import ServiceIndex
from proxy.core.sigv4.auth import AuthParseError, parse_authorization, parse_presigned, presigned_parameters
from proxy.emulator.settings import EmulatorSettings


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """Either the error AWS would answer, or the authenticated access key (None when not checked)."""

    error: AwsError | None
    access_key_id: str | None


def access_key_of(head: RequestHead) -> str | None:
    """The access key a request claims (Authorization header or presigned X-Amz-Credential)."""
    try:
        authorization = head.get("authorization")
        if authorization is not None:
            return parse_authorization(authorization).access_key_id
        presigned = presigned_parameters(head.query)
        if presigned is not None:
            return parse_presigned(presigned).access_key_id
    except AuthParseError:
        return None
    return None


class Authenticator:
    """Runs the shared checks on every request the emulator receives."""

    def __init__(self, settings: EmulatorSettings, services: ServiceIndex) -> None:
        self.settings = settings
        self.services = services
        # The emulator is a custom endpoint (127.0.0.1): its host names no region, so the region the
        # credential scope must name is the emulator's.
        self.validation = ValidationSettings(region=settings.region)

    def identity(self, head: RequestHead, body: bytes, routed: RequestIdentity) -> RequestIdentity:
        """The shared identification of the request, with the service the emulator routed it to."""
        found = identify(head, self.services, body)
        if found.service == routed.service:
            return replace(found, operation=found.operation or routed.operation)
        return replace(
            routed,
            region=found.region,
            signing_name=found.signing_name or routed.signing_name,
            api_version=found.api_version,
        )

    def authenticate(
        self, head: RequestHead, identity: RequestIdentity, body: bytes, now: datetime
    ) -> AuthOutcome:
        if not self.settings.authenticate:
            return AuthOutcome(None, access_key_of(head))
        context = CheckContext(
            request=head,
            identity=identity,
            now=now,
            settings=self.validation,
            credentials=self.settings.credentials,
            body_sha256=hashlib.sha256(body).hexdigest(),
            enforce=True,
            services=self.services,
        )
        result = validate(context)
        first = result.first_error
        if first is not None:
            return AuthOutcome(first.error, None)
        verifier = payload_verifier(context, result)
        if verifier is not None:
            for problem in (verifier.feed(body), verifier.finish()):
                if problem is not None and problem.severity is Severity.ERROR:
                    return AuthOutcome(problem.error, None)
        return AuthOutcome(None, result.access_key_id)
