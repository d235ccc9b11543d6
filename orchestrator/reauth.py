"""``jada-agent auth google``: the seed's four recovery steps as one command.

1. Take a credential: import a service-account key (``--service-account KEY.json``), or run
   the installed-app consent flow for a client (``--client-secrets CLIENT.json``), either with
   a loopback redirect to 127.0.0.1 or, on a headless server reached over SSH, by pasting the
   address the browser was sent to (``--no-browser``).
2. (the consent itself happens in the person's browser)
3. Store it in the secrets directory atomically with mode 0600.
4. Verify it with a real token refresh, and with ``--verify-sync`` run port_sheet_sync once.

Nothing here prints a secret: only file paths, the principal and the token endpoint's verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from orchestrator import credentials
from orchestrator.config import Config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
SYNC_JOB = "port_sheet_sync"


class ReauthError(Exception):
    """Bad input to the command: the message names the file, the key and the fix."""


def add_parser(subparsers: Any) -> None:
    """Register ``jada-agent auth google``."""
    parser = subparsers.add_parser("auth", help="re-authenticate a credential")
    providers = parser.add_subparsers(dest="provider", required=True, metavar="PROVIDER")
    google = providers.add_parser(
        "google",
        help="store and verify a Google credential (service-account key or consent flow)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = google.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--service-account", type=Path, metavar="KEY.json", help="import a service-account key"
    )
    source.add_argument(
        "--client-secrets",
        type=Path,
        metavar="CLIENT.json",
        help="run the consent flow for this OAuth client",
    )
    google.add_argument("--credential", default="google", help="credential name (default: %(default)s)")
    google.add_argument(
        "--no-browser",
        action="store_true",
        help="headless: print the consent URL and read back the address the browser was sent to",
    )
    google.add_argument("--open-browser", action="store_true", help="open the consent URL in a local browser")
    google.add_argument(
        "--port", type=int, default=0, help="loopback redirect port (default: a free one; fix it for ssh -L)"
    )
    google.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the consent (default: %(default)s)"
    )
    google.add_argument("--verify-sync", action="store_true", help="then run port_sheet_sync once")
    google.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Take, store and verify the credential; return the exit code."""
    from orchestrator.cli import load_config

    cfg = load_config(args)
    # The consent URL must show at once even when stdout is a pipe (ssh, a wrapper script).
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        if args.service_account is not None:
            info = _service_account(args.service_account)
        else:
            info = _consent(cfg, args)
    except ReauthError as exc:
        print(f"jada-agent auth google: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if info is None:
        return EXIT_FAILED
    path = credentials.credential_path(cfg.secrets_dir, args.credential)
    owner = credentials.expected_owner(cfg.service_user)
    credentials.write_atomic(path, info, owner_uid=owner)
    print(f"stored {path} ({info['type']}, mode 0600)")
    if not verify(cfg, path, args.credential, owner):
        return EXIT_FAILED
    if args.verify_sync:
        return _verify_sync(cfg)
    return EXIT_OK


def verify(cfg: Config, path: Path, name: str, owner: int) -> bool:
    """Refresh the stored credential once against the token endpoint; print the verdict."""
    from orchestrator import googleclient

    credential = credentials.load(path, name, owner, cfg.google_token_uri)
    transport = googleclient.TokenTransport(timeout=30.0)
    error = googleclient.refresh(googleclient.build(credential), transport, name)
    if error is not None:
        print(f"verify failed: token error: {error.reason()} (retryable: {str(error.retryable).lower()})")
        return False
    print(f"verified: {credential.principal} refreshed an access token at {credential.info['token_uri']}")
    return True


def _service_account(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReauthError(
            f"{path}: cannot read ({exc.strerror}); pass the key file downloaded from IAM"
        ) from None
    try:
        info = credentials.parse(path, text)
    except credentials.CredentialError as exc:
        raise ReauthError(f"{path}: {exc.problem}; pass a service-account key (JSON) from IAM") from None
    if info["type"] != credentials.SERVICE_ACCOUNT:
        raise ReauthError(
            f"{path}: is an {info['type']} file, not a service-account key; "
            "pass a key from IAM > Service accounts > Keys, or use --client-secrets"
        )
    return info


def _client_config(path: Path, token_uri: str | None) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReauthError(f"{path}: cannot read ({exc.strerror}); download the OAuth client JSON") from None
    except json.JSONDecodeError as exc:
        raise ReauthError(
            f"{path}: not valid JSON (line {exc.lineno}); download the OAuth client again"
        ) from None
    if not isinstance(data, dict):
        raise ReauthError(f"{path}: not a JSON object; download the OAuth client JSON again")
    kind = "installed" if "installed" in data else "web" if "web" in data else None
    if kind is None:
        hint = (
            " (that is a credential: use --service-account)" if data.get("type") == "service_account" else ""
        )
        raise ReauthError(f"{path}: no 'installed' section{hint}; create an OAuth client of type Desktop app")
    client = dict(data[kind])
    for key in ("client_id", "client_secret", "auth_uri", "token_uri"):
        if not client.get(key):
            raise ReauthError(f"{path}: {kind}.{key} is missing; download the OAuth client JSON again")
    if token_uri:
        client["token_uri"] = token_uri
    return {kind: client}


def _consent(cfg: Config, args: argparse.Namespace) -> dict[str, Any] | None:
    from google_auth_oauthlib.flow import InstalledAppFlow

    from orchestrator.googleclient import SHEETS_SCOPES

    client_config = _client_config(args.client_secrets, cfg.google_token_uri)
    client = next(iter(client_config.values()))
    _allow_http_for_loopback(client["token_uri"])
    flow = InstalledAppFlow.from_client_config(client_config, scopes=list(SHEETS_SCOPES))
    try:
        if args.no_browser:
            creds = _paste_flow(flow, args.port)
        else:
            creds = flow.run_local_server(
                host="127.0.0.1",
                port=args.port,
                open_browser=args.open_browser,
                authorization_prompt_message="Open this URL in a browser to authorize jada-agent:\n{url}",
                success_message="jada-agent is authorized; you can close this window.",
                timeout_seconds=args.timeout,
                access_type="offline",
                prompt="consent",
            )
    except Exception as exc:
        # oauthlib and the loopback server raise many types; what matters is a readable reason.
        print(f"consent flow failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return None
    if not creds.refresh_token:
        print("consent flow failed: no refresh token came back; revoke the app's access and run this again")
        return None
    return {
        "type": credentials.AUTHORIZED_USER,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "refresh_token": creds.refresh_token,
        "token_uri": client["token_uri"],
    }


def _paste_flow(flow: Any, port: int) -> Any:
    # Nothing listens on this address: the browser (on the person's own machine) fails to load
    # it, and its address bar then holds the code to paste here.
    flow.redirect_uri = f"http://127.0.0.1:{port or 1}/"
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    print("Open this URL in a browser on any machine to authorize jada-agent:")
    print(url)
    print(
        "After approving, the browser goes to an address starting with http://127.0.0.1 that does not load."
    )
    print("Paste that whole address (or just its code) here:", flush=True)
    answer = sys.stdin.readline().strip()
    code = code_from_answer(answer, state)
    flow.fetch_token(code=code)
    return flow.credentials


def code_from_answer(answer: str, state: str) -> str:
    """Extract the authorization code from a pasted redirect address, or take it as the code."""
    if not answer:
        raise ValueError("nothing was pasted")
    if "://" not in answer and "code=" not in answer:
        return answer
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer).query or answer))
    if "error" in query:
        raise ValueError(f"the consent page answered {query['error']}")
    if query.get("state", state) != state:
        raise ValueError("the pasted address is from another attempt (state differs); start again")
    if not query.get("code"):
        raise ValueError("the pasted address has no code")
    return query["code"]


def _allow_http_for_loopback(token_uri: str) -> None:
    # oauthlib refuses plain-HTTP token endpoints; the simulator on loopback is the one case.
    host = urllib.parse.urlsplit(token_uri).hostname or ""
    if token_uri.startswith("http://") and host in ("127.0.0.1", "localhost", "::1"):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def _verify_sync(cfg: Config) -> int:
    from prometheus_client import CollectorRegistry

    from orchestrator import log
    from orchestrator.scheduler import Scheduler
    from orchestrator.store import Store

    if SYNC_JOB not in cfg.jobs:
        print(f"verify-sync: no job {SYNC_JOB} in {cfg.path}")
        return EXIT_FAILED
    log.setup()
    with Store(cfg.store_path) as store:
        outcome = Scheduler(cfg, store, CollectorRegistry()).run_once(SYNC_JOB)
    print(f"{SYNC_JOB}: {outcome.result} in {outcome.duration_seconds:.1f}s: {outcome.job_result.detail}")
    return EXIT_OK if outcome.result == "success" else EXIT_FAILED
