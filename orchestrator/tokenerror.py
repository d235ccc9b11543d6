"""Classify a failed OAuth token refresh from what the token endpoint answered.

google-auth raises ``RefreshError(details, response_data, retryable=...)`` when the token
endpoint answers with an error: ``response_data`` is the decoded OAuth JSON, or the raw body
when it was not JSON (then it is the only argument). It raises ``TransportError`` when no
answer came at all. Neither carries the HTTP status, so the caller passes the status its
transport saw.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# RFC 6749 section 5.2 plus the codes Google's endpoint is known to send. Anything else is
# reported as "other" so a misbehaving server cannot mint new label values.
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "admin_policy_enforced",
        "server_error",
        "temporarily_unavailable",
        "internal_failure",
        "invalid_token",
    }
)
NOT_OAUTH = "unknown"
NO_ANSWER = "none"
OTHER = "other"
_DESCRIPTION_LIMIT = 200


@dataclass(frozen=True)
class TokenError:
    """One failed refresh: HTTP status (or "none"), OAuth error, description, retryable."""

    credential: str
    status_code: str
    oauth_error: str
    description: str
    retryable: bool

    def reason(self) -> str:
        """Say what the token endpoint answered: ``HTTP 400 invalid_grant: Token has been ...``."""
        if self.status_code == NO_ANSWER:
            text = "no HTTP answer"
        else:
            text = f"HTTP {self.status_code} {self.oauth_error}"
        return f"{text}: {self.description}" if self.description else text

    def message(self, component: str) -> str:
        """Render the readable log line, keeping the seed's ``[component] token error:`` prefix."""
        return f"[{component}] token error: {self.reason()}"

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form used in the job child's result line."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenError:
        """Rebuild from ``as_dict`` output, coercing each field to its type."""
        return cls(
            credential=str(data.get("credential", "")),
            status_code=str(data.get("status_code", NO_ANSWER)),
            oauth_error=str(data.get("oauth_error", NOT_OAUTH)),
            description=str(data.get("description", "")),
            retryable=bool(data.get("retryable", False)),
        )


def classify(exc: BaseException, status: int | None, credential: str) -> TokenError:
    """Classify google-auth's refresh exception, given the last HTTP status the transport saw."""
    status_code = str(status) if status is not None else NO_ANSWER
    if _is_transport_error(exc):
        # No answer at all (refused, reset, timed out). google-auth gives no verdict here; a
        # network failure is transient by nature, so it is not a reason to page at once.
        return TokenError(credential, NO_ANSWER, NO_ANSWER, _first_line(str(exc)), True)
    retryable = bool(getattr(exc, "retryable", False))
    args = getattr(exc, "args", ())
    data = args[1] if len(args) > 1 else (args[0] if args else "")
    oauth_error, description = parse_body(data)
    return TokenError(credential, status_code, oauth_error, description, retryable)


def parse_body(data: Any) -> tuple[str, str]:
    """Return (oauth_error, description) from a decoded token-endpoint error body."""
    if isinstance(data, Mapping):
        code = data.get("error")
        description = data.get("error_description")
        description = _first_line(description) if isinstance(description, str) else ""
        if isinstance(code, str) and code:
            if code in OAUTH_ERRORS:
                return code, description
            return OTHER, _first_line(f"{code}: {description}" if description else code)
        return NOT_OAUTH, "response is JSON but not an OAuth error"
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return NOT_OAUTH, _describe_text(text)


def _describe_text(text: str) -> str:
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        return _first_line(f"HTML page: {html.unescape(title.group(1))}")
    if "<" in text and ">" in text:
        return "HTML page without a title"
    return _first_line(f"not OAuth JSON: {text}") if text.strip() else "empty response body"


def _first_line(text: str) -> str:
    collapsed = " ".join(text.split())
    if len(collapsed) > _DESCRIPTION_LIMIT:
        return collapsed[: _DESCRIPTION_LIMIT - 3] + "..."
    return collapsed


def _is_transport_error(exc: BaseException) -> bool:
    # Checked by name so this pure module does not import google-auth (the daemon stays lean).
    return any(cls.__name__ == "TransportError" for cls in type(exc).__mro__)
