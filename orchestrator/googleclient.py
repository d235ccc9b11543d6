"""google-auth credentials and sessions for the job child processes (never the daemon).

Endpoints are reached through the libraries' own settings: the token endpoint through the
credentials' ``token_uri``, and the Sheets API (whose URLs gspread fixes to
https://sheets.googleapis.com) through a transport adapter mounted on the authorized session.
"""

from __future__ import annotations

from typing import Any

import requests
from google.auth import exceptions
from google.auth import transport as auth_transport
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as RequestsRequest
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from orchestrator import tokenerror
from orchestrator.credentials import SERVICE_ACCOUNT, CredentialFile

SHEETS_SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
SHEETS_PREFIX = "https://sheets.googleapis.com/"


class TokenTransport(auth_transport.Request):
    """google-auth's requests transport with a bounded timeout that remembers the last status.

    google-auth's RefreshError does not carry the HTTP status; classifying a failure needs it.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last_status: int | None = None
        self._inner = RequestsRequest(requests.Session())

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> auth_transport.Response:
        self.last_status = None
        bound = self.timeout if timeout is None else min(timeout, self.timeout)
        response = self._inner(url, method=method, body=body, headers=headers, timeout=bound, **kwargs)
        self.last_status = response.status
        return response


class _RewriteAdapter(requests.adapters.HTTPAdapter):
    """Send requests for one URL prefix to another base URL (the Sheets simulator)."""

    def __init__(self, prefix: str, target: str) -> None:
        super().__init__()
        self._prefix = prefix
        self._target = target.rstrip("/") + "/"

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith(self._prefix):
            request.url = self._target + url[len(self._prefix) :]
        return super().send(request, **kwargs)


def build(credential: CredentialFile, scopes: tuple[str, ...] = SHEETS_SCOPES) -> Any:
    """Build google-auth credentials from a checked credential file."""
    if credential.kind == SERVICE_ACCOUNT:
        return service_account.Credentials.from_service_account_info(credential.info, scopes=list(scopes))
    info = credential.info
    # Built directly: from_authorized_user_info always replaces token_uri with Google's own.
    return user_credentials.Credentials(
        token=None,
        refresh_token=info["refresh_token"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        token_uri=info["token_uri"],
        scopes=list(scopes),
    )


def refresh(creds: Any, transport: TokenTransport, name: str) -> tokenerror.TokenError | None:
    """Refresh ``creds`` once; return the classified failure, or None when it worked."""
    try:
        creds.refresh(transport)
    except (exceptions.RefreshError, exceptions.TransportError) as exc:
        return tokenerror.classify(exc, transport.last_status, name)
    return None


def session(creds: Any, transport: TokenTransport, sheets_endpoint: str | None) -> AuthorizedSession:
    """Return an authorized session; with ``sheets_endpoint``, Sheets calls go there instead."""
    authorized = AuthorizedSession(creds, auth_request=transport)
    if sheets_endpoint:
        authorized.mount(SHEETS_PREFIX, _RewriteAdapter(SHEETS_PREFIX, sheets_endpoint))
    return authorized
