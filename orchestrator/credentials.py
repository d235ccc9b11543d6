"""Google credential files in the secrets directory: check them, and write them safely.

A credential named ``google`` lives in ``<secrets_dir>/google.json`` and is one of the two
kinds google-auth loads from a file: a service-account key or an authorized-user file
(client id, client secret, refresh token). This module only reads and checks files; it
imports no Google library, so the daemon can check credentials at start-up and stay lean.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT = "service_account"
AUTHORIZED_USER = "authorized_user"
REQUIRED_KEYS = {
    SERVICE_ACCOUNT: ("client_email", "private_key", "token_uri"),
    AUTHORIZED_USER: ("client_id", "client_secret", "refresh_token"),
}
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class CredentialError(Exception):
    """A credential file that cannot be used, phrased with the file and the fix."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"credentials file {self.path}: {self.problem}; {self.fix}"


@dataclass(frozen=True)
class CredentialFile:
    """A checked credential file; ``warnings`` say why it is insecure, if it is."""

    name: str
    path: Path
    kind: str
    # The parsed file holds the secrets: keep it out of repr() and so out of any traceback.
    info: dict[str, Any] = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def insecure(self) -> bool:
        return bool(self.warnings)

    @property
    def principal(self) -> str:
        """Name who this credential acts as (an email or an OAuth client id), never a secret."""
        if self.kind == SERVICE_ACCOUNT:
            return str(self.info["client_email"])
        return f"the Google account that authorized OAuth client {self.info['client_id']}"


def credential_path(secrets_dir: Path, name: str) -> Path:
    """Return where the credential called ``name`` is stored."""
    return secrets_dir / f"{name}.json"


def expected_owner(service_user: str | None) -> int:
    """Return the uid that must own credential files: the service user, else this process's."""
    if service_user is None:
        return os.geteuid()
    try:
        return pwd.getpwnam(service_user).pw_uid
    except KeyError:
        return os.geteuid()


def load(path: Path, name: str, owner_uid: int, token_uri: str | None = None) -> CredentialFile:
    """Read and check one credential file; raise CredentialError naming the file and the fix."""
    auth_fix = f"re-create it with: jada-agent auth google --credential {name} ..."
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialError(path, "missing", auth_fix) from None
    except PermissionError:
        raise CredentialError(
            path, "not readable by this user", f"run chown {_user(owner_uid)} {path}"
        ) from None
    except UnicodeDecodeError:
        raise CredentialError(path, "not UTF-8 text", auth_fix) from None
    info = parse(path, text, name)
    if token_uri:
        info["token_uri"] = token_uri
    return CredentialFile(name, path, str(info["type"]), info, tuple(file_warnings(path, st, owner_uid)))


def parse(path: Path, text: str, name: str = "google") -> dict[str, Any]:
    """Parse a credential file's text and check it has the keys its kind needs."""
    auth_fix = f"re-create it with: jada-agent auth google --credential {name} ..."
    if not text.strip():
        raise CredentialError(path, "empty", auth_fix)
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialError(
            path, f"not valid JSON (line {exc.lineno} column {exc.colno}; truncated?)", auth_fix
        ) from None
    if not isinstance(info, dict):
        raise CredentialError(path, "not a JSON object", auth_fix)
    if "installed" in info or "web" in info:
        raise CredentialError(
            path,
            "is an OAuth client-secrets file, not a credential",
            f"run: jada-agent auth google --credential {name} --client-secrets {path}",
        )
    kind = info.get("type")
    if kind not in REQUIRED_KEYS:
        raise CredentialError(
            path,
            f"type {kind!r} is not a kind jada-agent uses",
            f"use a service-account key or an authorized-user file ({auth_fix})",
        )
    info.setdefault("token_uri", GOOGLE_TOKEN_URI)
    missing = [key for key in REQUIRED_KEYS[kind] if not isinstance(info.get(key), str) or not info[key]]
    if missing:
        raise CredentialError(path, f"{kind} file lacks {', '.join(missing)}", auth_fix)
    return info


def file_warnings(path: Path, st: os.stat_result, owner_uid: int) -> list[str]:
    """Say what is insecure about a credential file's owner and mode, with the command to fix it."""
    warnings = []
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        warnings.append(
            f"credentials file {path} is mode {mode:04o}, readable by others; run chmod 600 {path}"
        )
    if st.st_uid != owner_uid:
        warnings.append(
            f"credentials file {path} is owned by {_user(st.st_uid)}, not {_user(owner_uid)};"
            f" run chown {_user(owner_uid)} {path}"
        )
    return warnings


def write_atomic(path: Path, info: dict[str, Any], owner_uid: int | None = None) -> None:
    """Write ``info`` as JSON to ``path`` atomically, mode 0600 from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so the secret is never readable by others, not even briefly.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            if owner_uid is not None and os.geteuid() == 0 and owner_uid != 0:
                os.fchown(handle.fileno(), owner_uid, -1)
            json.dump(info, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
