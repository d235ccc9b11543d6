"""A protocol-level simulator of Google's OAuth token endpoint, consent page and Sheets API v4.

It speaks the wire format the real libraries expect (google-auth, google-auth-oauthlib,
gspread), on 127.0.0.1. Tests start it in-process on a free port; the demo runs it with
``python -m simulators.google --listen 127.0.0.1:0``.

Endpoints:
- ``GET /o/oauth2/auth``: the consent page; approves at once and 302s back with a code.
- ``POST /token``: grants ``authorization_code``, ``refresh_token`` and the JWT bearer grant
  (RS256, checked against the registered service account's public key; iat/exp must be in a
  sane window, else ``invalid_grant: Invalid JWT ...`` as Google answers a skewed clock).
- ``/v4/spreadsheets/...``: spreadsheets.get, values.get, values.update, values.batchUpdate,
  values.clear, with Google's JSON error bodies for 401, 403, 404 and 429.
- ``/_sim/...``: control (scenarios, clients, refresh tokens, service accounts,
  spreadsheets) and read-back of what was written.

Scenarios, settable at runtime (``POST /_sim/scenario {"token": "invalid_grant"}``):
token: ok, invalid_grant, invalid_client, 500, 503, html, hang, clock_skew;
sheets: ok, 429, 403, 404. ``"times": N`` makes a scenario apply to the next N requests only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOKEN_SCENARIOS = ("ok", "invalid_grant", "invalid_client", "500", "503", "html", "hang", "clock_skew")
SHEETS_SCENARIOS = ("ok", "429", "403", "404")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google refuses assertions whose iat is off by more than a few minutes or that live > 1 h.
JWT_SKEW_SECONDS = 300
JWT_MAX_LIFETIME = 3600
INVALID_JWT = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
    " Check your iat and exp values in the JWT claim."
)
HTML_ERROR_PAGE = (
    "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 502 (Server Error)!!1</title>"
    "<p><b>502.</b> <ins>That's an error.</ins><p>The server encountered a temporary error.</html>"
)


@dataclass
class _Scenario:
    name: str = "ok"
    times: int | None = None

    def take(self) -> str:
        """Return the scenario for this request, counting down a limited one."""
        if self.name == "ok":
            return "ok"
        if self.times is not None:
            if self.times <= 0:
                return "ok"
            self.times -= 1
        return self.name


@dataclass
class Spreadsheet:
    """A simulated spreadsheet: worksheets by title, each a list of rows of strings."""

    spreadsheet_id: str
    title: str
    worksheets: dict[str, list[list[str]]] = field(default_factory=dict)


class GoogleSimulator:
    """The simulator's state and HTTP server; use as a context manager in tests."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.clients: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.service_accounts: dict[str, Any] = {}
        self.access_tokens: dict[str, str] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.token_scenario = _Scenario()
        self.sheets_scenario = _Scenario()
        self.requests: list[tuple[str, str]] = []
        self.write_count = 0
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.url}/o/oauth2/auth"

    def start(self) -> GoogleSimulator:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="google-sim", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        try:
            self._server.serve_forever()
        finally:
            self._stopping.set()
            self._server.server_close()

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GoogleSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Control

    def set_scenario(
        self, token: str | None = None, sheets: str | None = None, times: int | None = None
    ) -> None:
        """Force the token endpoint and/or the Sheets API into a scenario."""
        with self._lock:
            if token is not None:
                if token not in TOKEN_SCENARIOS:
                    raise ValueError(f"unknown token scenario {token!r}; known: {', '.join(TOKEN_SCENARIOS)}")
                self.token_scenario = _Scenario(token, times)
            if sheets is not None:
                if sheets not in SHEETS_SCENARIOS:
                    raise ValueError(
                        f"unknown sheets scenario {sheets!r}; known: {', '.join(SHEETS_SCENARIOS)}"
                    )
                self.sheets_scenario = _Scenario(sheets, times)

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register an OAuth client (installed app)."""
        with self._lock:
            self.clients[client_id] = client_secret

    def add_refresh_token(self, client_id: str, refresh_token: str) -> None:
        """Accept ``refresh_token`` for ``client_id`` until revoked."""
        with self._lock:
            self.refresh_tokens[refresh_token] = client_id

    def revoke(self, refresh_token: str) -> None:
        """Expire a refresh token, as Google does after revocation or inactivity."""
        with self._lock:
            self.refresh_tokens.pop(refresh_token, None)

    def add_service_account(self, client_email: str, public_key_pem: str) -> None:
        """Register a service account's public key for the JWT bearer grant."""
        key = serialization.load_pem_public_key(public_key_pem.encode())
        with self._lock:
            self.service_accounts[client_email] = key

    def add_spreadsheet(
        self, spreadsheet_id: str, title: str = "Ports", worksheets: tuple[str, ...] = ("ports",)
    ) -> None:
        """Create an empty spreadsheet with the given worksheets."""
        with self._lock:
            self.spreadsheets[spreadsheet_id] = Spreadsheet(
                spreadsheet_id, title, {name: [] for name in worksheets}
            )

    def new_authorized_user(
        self, client_id: str = "jada-sim.apps.googleusercontent.com", refresh_token: str | None = None
    ) -> dict[str, str]:
        """Register a client and a refresh token; return the authorized-user file's content."""
        client_secret = "GOCSPX-sim-" + secrets.token_urlsafe(18)
        refresh_token = refresh_token or "1//sim-" + secrets.token_urlsafe(24)
        self.add_client(client_id, client_secret)
        self.add_refresh_token(client_id, refresh_token)
        return {
            "type": "authorized_user",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "token_uri": self.token_uri,
        }

    def new_service_account(
        self, client_email: str = "port-sheet@jada-sim.iam.gserviceaccount.com"
    ) -> dict[str, str]:
        """Generate and register a service-account key; return the key file's content."""
        info, public_pem = generate_service_account_key(client_email, self.token_uri)
        self.add_service_account(client_email, public_pem)
        return info

    def values(self, spreadsheet_id: str, worksheet: str) -> list[list[str]]:
        """Read back a worksheet's cells, trailing blanks trimmed as the API returns them."""
        with self._lock:
            return _trim(self.spreadsheets[spreadsheet_id].worksheets[worksheet])

    # Token endpoint

    def token(self, form: dict[str, str], authorization: str = "") -> tuple[int, str, str]:
        """Answer a token request: (status, content type, body)."""
        if authorization.startswith("Basic "):
            # client_secret_basic (RFC 6749 2.3.1), as requests-oauthlib sends it.
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
            form = {
                **form,
                "client_id": urllib.parse.unquote_plus(client_id),
                "client_secret": urllib.parse.unquote_plus(client_secret),
            }
        with self._lock:
            scenario = self.token_scenario.take()
        if scenario == "hang":
            # Hold the connection until the client gives up or the simulator stops.
            self._stopping.wait(600)
            return _json(503, {"error": "temporarily_unavailable"})
        forced = _FORCED_TOKEN_ANSWERS.get(scenario)
        if forced is not None:
            return forced
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            return self._refresh_grant(form)
        if grant == "authorization_code":
            return self._code_grant(form)
        if grant == JWT_BEARER:
            return self._jwt_grant(form.get("assertion", ""), clock_skew=scenario == "clock_skew")
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _client_ok(self, form: dict[str, str]) -> bool:
        client_id = form.get("client_id", "")
        return client_id in self.clients and self.clients[client_id] == form.get("client_secret")

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, str, str]:
        with self._lock:
            if not self._client_ok(form):
                return _oauth_error(401, "invalid_client", "Unauthorized")
            if self.refresh_tokens.get(form.get("refresh_token", "")) != form["client_id"]:
                return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            return _json(200, self._issue(form["client_id"]))

    def _code_grant(self, form: dict[str, str]) -> tuple[int, str, str]:
        with self._lock:
            if not self._client_ok(form):
                return _oauth_error(401, "invalid_client", "Unauthorized")
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant["client_id"] != form["client_id"]:
                return _oauth_error(400, "invalid_grant", "Malformed auth code.")
            if grant["redirect_uri"] != form.get("redirect_uri"):
                return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            answer = self._issue(form["client_id"])
            refresh_token = "1//sim-" + secrets.token_urlsafe(24)
            self.refresh_tokens[refresh_token] = form["client_id"]
            answer["refresh_token"] = refresh_token
            return _json(200, answer)

    def _jwt_grant(self, assertion: str, clock_skew: bool) -> tuple[int, str, str]:
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(payload_b64))
            signature = _b64decode(signature_b64)
        except ValueError:
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        with self._lock:
            key = self.service_accounts.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or key is None:
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            key.verify(
                signature,
                f"{header_b64}.{payload_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        now = time.time() + (2 * JWT_SKEW_SECONDS if clock_skew else 0)
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if abs(iat - now) > JWT_SKEW_SECONDS or not 0 < exp - iat <= JWT_MAX_LIFETIME:
            return _oauth_error(400, "invalid_grant", INVALID_JWT)
        with self._lock:
            return _json(200, self._issue(claims["iss"]))

    def _issue(self, principal: str) -> dict[str, Any]:
        access_token = "ya29.sim-" + secrets.token_urlsafe(24)
        self.access_tokens[access_token] = principal
        return {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}

    # Consent page

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """Approve a consent request at once: (status, headers, body)."""
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        with self._lock:
            if client_id not in self.clients:
                return 401, {"Content-Type": "text/html"}, "<title>Error 401: invalid_client</title>"
            code = "4/sim-" + secrets.token_urlsafe(16)
            self.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri}
        params = {"code": code, "scope": query.get("scope", "")}
        if "state" in query:
            params["state"] = query["state"]
        return 302, {"Location": f"{redirect_uri}?{urllib.parse.urlencode(params)}"}, ""

    # Sheets API

    def sheets(self, method: str, path: str, authorization: str, body: Any) -> tuple[int, str, str]:
        """Answer a Sheets API v4 call."""
        with self._lock:
            if authorization.removeprefix("Bearer ") not in self.access_tokens:
                return _google_error(
                    401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"
                )
            scenario = self.sheets_scenario.take()
            if scenario == "429":
                return _google_error(
                    429,
                    "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute"
                    " per user' of service 'sheets.googleapis.com'.",
                    "RESOURCE_EXHAUSTED",
                )
            if scenario == "403":
                return _google_error(403, "The caller does not have permission", "PERMISSION_DENIED")
            match = re.fullmatch(r"/v4/spreadsheets/([^/:]+)(.*)", path)
            sheet = self.spreadsheets.get(match.group(1)) if match else None
            if scenario == "404" or sheet is None or match is None:
                return _google_error(404, "Requested entity was not found.", "NOT_FOUND")
            return self._sheets_call(method, sheet, urllib.parse.unquote(match.group(2)), body)

    def _sheets_call(self, method: str, sheet: Spreadsheet, rest: str, body: Any) -> tuple[int, str, str]:
        if method == "GET" and rest == "":
            return _json(200, _spreadsheet_resource(sheet))
        if method == "POST" and rest == "/values:batchUpdate":
            results = []
            for item in body.get("data", []):
                error = _write(sheet, item["range"], item.get("values", []))
                if error:
                    return error
                results.append({"updatedRange": item["range"]})
            self.write_count += 1
            return _json(200, {"spreadsheetId": sheet.spreadsheet_id, "responses": results})
        values = re.fullmatch(r"/values/([^:]+)(:clear)?", rest)
        if values is None:
            return _google_error(404, f"Unknown method {method} {rest}", "NOT_FOUND")
        cell_range = values.group(1)
        title, start, end = _parse_range(cell_range)
        if title not in sheet.worksheets:
            return _google_error(400, f"Unable to parse range: {cell_range}", "INVALID_ARGUMENT")
        grid = sheet.worksheets[title]
        if values.group(2):
            sheet.worksheets[title] = []
            self.write_count += 1
            return _json(200, {"spreadsheetId": sheet.spreadsheet_id, "clearedRange": cell_range})
        if method == "GET":
            return _json(
                200, {"range": cell_range, "majorDimension": "ROWS", "values": _slice(grid, start, end)}
            )
        if method == "PUT":
            error = _write(sheet, cell_range, body.get("values", []))
            if error:
                return error
            self.write_count += 1
            return _json(200, {"spreadsheetId": sheet.spreadsheet_id, "updatedRange": cell_range})
        return _google_error(404, f"Unknown method {method} {rest}", "NOT_FOUND")


def _json(status: int, data: Any) -> tuple[int, str, str]:
    return status, "application/json; charset=utf-8", json.dumps(data)


def _oauth_error(status: int, error: str, description: str) -> tuple[int, str, str]:
    return _json(status, {"error": error, "error_description": description})


def _google_error(status: int, message: str, reason: str) -> tuple[int, str, str]:
    return _json(status, {"error": {"code": status, "message": message, "status": reason}})


_FORCED_TOKEN_ANSWERS = {
    "invalid_grant": _oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
    "invalid_client": _oauth_error(401, "invalid_client", "Unauthorized"),
    "500": _oauth_error(500, "internal_failure", "Backend Error"),
    "503": _oauth_error(503, "temporarily_unavailable", "The service is currently unavailable."),
    "html": (502, "text/html; charset=UTF-8", HTML_ERROR_PAGE),
}


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _spreadsheet_resource(sheet: Spreadsheet) -> dict[str, Any]:
    sheets = []
    for index, (title, grid) in enumerate(sheet.worksheets.items()):
        sheets.append(
            {
                "properties": {
                    "sheetId": index,
                    "title": title,
                    "index": index,
                    "sheetType": "GRID",
                    "gridProperties": {
                        "rowCount": max(1000, len(grid)),
                        "columnCount": max([26, *(len(row) for row in grid)]),
                    },
                }
            }
        )
    return {
        "spreadsheetId": sheet.spreadsheet_id,
        "properties": {"title": sheet.title, "locale": "en_US", "timeZone": "Etc/UTC"},
        "sheets": sheets,
    }


def _parse_range(cell_range: str) -> tuple[str, tuple[int, int], tuple[int, int] | None]:
    """Split ``'ports'!A1:G10`` into title, 0-based (row, col) start and optional end."""
    title, _, cells = cell_range.rpartition("!")
    if not title:
        title, cells = cells, ""
    title = title.strip("'").replace("''", "'")
    first, _, last = cells.partition(":")
    start = _cell(first) if first else (0, 0)
    return title, start, _cell(last) if last else None


def _cell(a1: str) -> tuple[int, int]:
    match = re.fullmatch(r"([A-Za-z]+)(\d*)", a1)
    if match is None:
        raise ValueError(f"bad cell {a1!r}")
    col = 0
    for char in match.group(1).upper():
        col = col * 26 + ord(char) - ord("A") + 1
    return (int(match.group(2)) - 1 if match.group(2) else 0), col - 1


def _write(sheet: Spreadsheet, cell_range: str, values: list[list[Any]]) -> tuple[int, str, str] | None:
    try:
        title, (row0, col0), _ = _parse_range(cell_range)
    except ValueError:
        return _google_error(400, f"Unable to parse range: {cell_range}", "INVALID_ARGUMENT")
    if title not in sheet.worksheets:
        return _google_error(400, f"Unable to parse range: {cell_range}", "INVALID_ARGUMENT")
    grid = sheet.worksheets[title]
    for r, row in enumerate(values):
        while len(grid) <= row0 + r:
            grid.append([])
        target = grid[row0 + r]
        for c, value in enumerate(row):
            while len(target) <= col0 + c:
                target.append("")
            target[col0 + c] = "" if value is None else str(value)
    return None


def _slice(grid: list[list[str]], start: tuple[int, int], end: tuple[int, int] | None) -> list[list[str]]:
    rows = grid[start[0] : end[0] + 1] if end else grid[start[0] :]
    cut = [row[start[1] : end[1] + 1] if end else row[start[1] :] for row in rows]
    return _trim(cut)


def _trim(grid: list[list[str]]) -> list[list[str]]:
    rows = [list(row) for row in grid]
    for row in rows:
        while row and row[-1] == "":
            row.pop()
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _handler_for(sim: GoogleSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests read what they need from the simulator's state."""

        def handle(self) -> None:
            # A client that gave up on a hanging request has closed its socket: not an error.
            with contextlib.suppress(ConnectionError):
                super().handle()

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(
            self, status: int, content_type: str, body: str, headers: dict[str, str] | None = None
        ) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            raw = self._body()
            sim.requests.append((method, parsed.path))
            try:
                if parsed.path == "/token" and method == "POST":
                    form = dict(urllib.parse.parse_qsl(raw.decode()))
                    self._send(*sim.token(form, self.headers.get("Authorization", "")))
                elif parsed.path == "/o/oauth2/auth" and method == "GET":
                    status, headers, body = sim.authorize(dict(urllib.parse.parse_qsl(parsed.query)))
                    self._send(status, "text/html", body, headers)
                elif parsed.path.startswith("/v4/spreadsheets/"):
                    body = json.loads(raw) if raw else {}
                    self._send(*sim.sheets(method, parsed.path, self.headers.get("Authorization", ""), body))
                elif parsed.path.startswith("/_sim/"):
                    self._send(*_control(sim, method, parsed.path, json.loads(raw) if raw else {}))
                else:
                    self._send(*_google_error(404, f"no such endpoint {parsed.path}", "NOT_FOUND"))
            except (ValueError, KeyError, TypeError) as exc:
                self._send(*_json(400, {"error": "invalid_request", "error_description": str(exc)}))

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

    return Handler


def _control(sim: GoogleSimulator, method: str, path: str, body: dict[str, Any]) -> tuple[int, str, str]:
    if method == "POST" and path == "/_sim/scenario":
        sim.set_scenario(body.get("token"), body.get("sheets"), body.get("times"))
        return _json(200, {"token": sim.token_scenario.name, "sheets": sim.sheets_scenario.name})
    if method == "POST" and path == "/_sim/clients":
        sim.add_client(body["client_id"], body["client_secret"])
        return _json(200, {})
    if method == "POST" and path == "/_sim/refresh_tokens":
        sim.add_refresh_token(body["client_id"], body["refresh_token"])
        return _json(200, {})
    if method == "POST" and path == "/_sim/revoke":
        sim.revoke(body["refresh_token"])
        return _json(200, {})
    if method == "POST" and path == "/_sim/service_accounts":
        sim.add_service_account(body["client_email"], body["public_key_pem"])
        return _json(200, {})
    if method == "POST" and path == "/_sim/spreadsheets":
        sim.add_spreadsheet(body["id"], body.get("title", "Ports"), tuple(body.get("worksheets", ["ports"])))
        return _json(200, {})
    match = re.fullmatch(r"/_sim/spreadsheets/([^/]+)/values/([^/]+)", path)
    if method == "GET" and match:
        return _json(200, {"values": sim.values(match.group(1), urllib.parse.unquote(match.group(2)))})
    return _json(404, {"error": f"no control endpoint {method} {path}"})


def generate_service_account_key(client_email: str, token_uri: str) -> tuple[dict[str, str], str]:
    """Return a service-account key file's content and its public key PEM (for tests and the demo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    info = {
        "type": "service_account",
        "project_id": "jada-sim",
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": token_uri,
    }
    return info, public_pem


def main(argv: list[str] | None = None) -> int:
    """Run the simulator in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m simulators.google", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: %(default)s)")
    parser.add_argument("--client", action="append", default=[], metavar="ID:SECRET", help="OAuth client")
    parser.add_argument(
        "--spreadsheet", action="append", default=[], metavar="ID:WORKSHEET", help="spreadsheet to create"
    )
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    sim = GoogleSimulator(host or "127.0.0.1", int(port))
    for client in args.client:
        client_id, _, client_secret = client.partition(":")
        sim.add_client(client_id, client_secret)
    for spreadsheet in args.spreadsheet:
        spreadsheet_id, _, worksheet = spreadsheet.partition(":")
        sim.add_spreadsheet(spreadsheet_id, worksheets=(worksheet or "ports",))
    print(json.dumps({"url": sim.url, "token_uri": sim.token_uri, "auth_uri": sim.auth_uri}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
