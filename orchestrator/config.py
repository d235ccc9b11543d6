"""Load and validate the orchestrator's TOML configuration.

Secrets never live in this file: the Claude API key comes from ANTHROPIC_API_KEY and
Google credentials from files in ``secrets_dir``.

Example::

    [orchestrator]
    state_dir = "/var/lib/jada-agent"
    listen_address = "127.0.0.1:9741"
    model = "claude-sonnet-4-6"
    max_turns = 30
    daily_sessions = 5

    [google]
    secrets_dir = "/etc/jada-agent/secrets"

    [jobs.port_sheet_sync]
    interval_seconds = 1800
    spreadsheet_id = "1AbC..."

    [[services]]
    name = "crew-pages"
    port = 8080
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/jada-agent/config.toml")


class ConfigError(Exception):
    """A configuration problem, phrased for the person who has to fix it."""

    def __init__(self, path: Path | str, key: str, problem: str, fix: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else self.path
        return f"{where}: {self.problem}; {self.fix}"


@dataclass(frozen=True)
class JobConfig:
    """One scheduled job: a child process run every ``interval_seconds``."""

    name: str
    interval_seconds: float = 1800.0
    timeout_seconds: float = 300.0
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceConfig:
    """A service whose port allocation the port sheet tracks."""

    name: str
    port: int
    protocol: str = "tcp"
    owner: str = ""
    deployed_at: str = ""


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    path: Path
    state_dir: Path = Path("/var/lib/jada-agent")
    listen_address: str = "127.0.0.1:9741"
    model: str = "claude-sonnet-4-6"
    max_tokens: int = 4096
    max_turns: int = 30
    daily_sessions: int = 5
    max_attempts: int = 3
    session_timeout_seconds: float = 1800.0
    shutdown_grace_seconds: float = 30.0
    poll_interval_seconds: float = 5.0
    tool_timeout_seconds: float = 60.0
    tool_output_limit_bytes: int = 16384
    system_prompt: str = ""
    anthropic_base_url: str | None = None
    anthropic_max_retries: int = 4
    anthropic_timeout_seconds: float = 120.0
    secrets_dir: Path = Path("/etc/jada-agent/secrets")
    google_token_uri: str | None = None
    google_sheets_endpoint: str | None = None
    service_user: str | None = None
    jobs: dict[str, JobConfig] = field(default_factory=dict)
    services: tuple[ServiceConfig, ...] = ()

    @property
    def store_path(self) -> Path:
        return self.state_dir / "jada-agent.db"

    @property
    def workspaces_dir(self) -> Path:
        return self.state_dir / "workspaces"

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen_address.rpartition(":")
        return host.strip("[]"), int(port)


_ORCHESTRATOR_KEYS: dict[str, tuple[type, ...]] = {
    "state_dir": (str,),
    "listen_address": (str,),
    "model": (str,),
    "max_tokens": (int,),
    "max_turns": (int,),
    "daily_sessions": (int,),
    "max_attempts": (int,),
    "session_timeout_seconds": (int, float),
    "shutdown_grace_seconds": (int, float),
    "poll_interval_seconds": (int, float),
    "tool_timeout_seconds": (int, float),
    "tool_output_limit_bytes": (int,),
    "system_prompt": (str,),
    "anthropic_base_url": (str,),
    "anthropic_max_retries": (int,),
    "anthropic_timeout_seconds": (int, float),
    "service_user": (str,),
}
_POSITIVE = {
    "max_tokens",
    "max_turns",
    "daily_sessions",
    "max_attempts",
    "session_timeout_seconds",
    "poll_interval_seconds",
    "tool_timeout_seconds",
    "tool_output_limit_bytes",
    "anthropic_timeout_seconds",
}
_GOOGLE_KEYS = {"secrets_dir": (str,), "token_uri": (str,), "sheets_endpoint": (str,)}
_JOB_KEYS = {"interval_seconds", "timeout_seconds", "enabled"}
_SERVICE_KEYS = {"name", "port", "protocol", "owner", "deployed_at"}
DEFAULT_JOBS = {"port_sheet_sync": JobConfig(name="port_sheet_sync", enabled=False)}


def load(path: Path | str = DEFAULT_PATH, environ: dict[str, str] | None = None) -> Config:
    """Read, parse and validate ``path``; raise ConfigError naming the key and the fix."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            path, "", "file not found", f"create it or pass --config (example: {_EXAMPLE})"
        ) from None
    except PermissionError:
        raise ConfigError(path, "", "permission denied", "make it readable by the jada-agent user") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text", "save the file as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML ({exc})", "fix the syntax") from None
    return parse(raw, path, environ)


_EXAMPLE = "deploy/config.example.toml"


def parse(raw: dict[str, Any], path: Path, environ: dict[str, str] | None = None) -> Config:
    """Validate an already parsed TOML document."""
    environ = os.environ if environ is None else environ
    known = {"orchestrator", "google", "jobs", "services"}
    for key in raw:
        if key not in known:
            raise ConfigError(
                path, key, "unknown section", f"remove it; known sections: {', '.join(sorted(known))}"
            )
    orch = _table(raw, "orchestrator", path)
    values: dict[str, Any] = {}
    for key, value in orch.items():
        full = f"orchestrator.{key}"
        if key not in _ORCHESTRATOR_KEYS:
            raise ConfigError(
                path, full, "unknown key", f"remove it; known keys: {', '.join(sorted(_ORCHESTRATOR_KEYS))}"
            )
        _check_type(path, full, value, _ORCHESTRATOR_KEYS[key])
        if key in _POSITIVE and value <= 0:
            raise ConfigError(path, full, f"must be greater than 0, got {value}", "set a positive number")
        values[key] = value
    if "state_dir" in values:
        values["state_dir"] = Path(values["state_dir"])
    if "listen_address" in values:
        _check_listen_address(path, values["listen_address"])
    if "anthropic_base_url" not in values and environ.get("ANTHROPIC_BASE_URL"):
        values["anthropic_base_url"] = environ["ANTHROPIC_BASE_URL"]

    google = _table(raw, "google", path)
    for key, value in google.items():
        full = f"google.{key}"
        if key not in _GOOGLE_KEYS:
            raise ConfigError(
                path, full, "unknown key", f"remove it; known keys: {', '.join(sorted(_GOOGLE_KEYS))}"
            )
        _check_type(path, full, value, _GOOGLE_KEYS[key])
    if "secrets_dir" in google:
        values["secrets_dir"] = Path(google["secrets_dir"])
    values["google_token_uri"] = google.get("token_uri")
    values["google_sheets_endpoint"] = google.get("sheets_endpoint")

    values["jobs"] = _parse_jobs(raw, path)
    values["services"] = _parse_services(raw, path)
    return Config(path=path, **values)


def _parse_jobs(raw: dict[str, Any], path: Path) -> dict[str, JobConfig]:
    jobs = dict(DEFAULT_JOBS)
    for name, table in _table(raw, "jobs", path).items():
        full = f"jobs.{name}"
        if not isinstance(table, dict):
            raise ConfigError(path, full, "must be a table", f"write it as [jobs.{name}]")
        options = {k: v for k, v in table.items() if k not in _JOB_KEYS}
        settings: dict[str, Any] = {"enabled": True}
        for key in ("interval_seconds", "timeout_seconds"):
            if key in table:
                _check_type(path, f"{full}.{key}", table[key], (int, float))
                if table[key] <= 0:
                    raise ConfigError(
                        path,
                        f"{full}.{key}",
                        f"must be greater than 0, got {table[key]}",
                        "set a positive number of seconds",
                    )
                settings[key] = float(table[key])
        if "enabled" in table:
            _check_type(path, f"{full}.enabled", table["enabled"], (bool,))
            settings["enabled"] = table["enabled"]
        jobs[name] = JobConfig(name=name, options=options, **settings)
    return jobs


def _parse_services(raw: dict[str, Any], path: Path) -> tuple[ServiceConfig, ...]:
    services = raw.get("services", [])
    if not isinstance(services, list):
        raise ConfigError(path, "services", "must be an array of tables", "write each as [[services]]")
    parsed = []
    for index, table in enumerate(services):
        full = f"services[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(path, full, "must be a table", "write each as [[services]]")
        for key in table:
            if key not in _SERVICE_KEYS:
                raise ConfigError(
                    path,
                    f"{full}.{key}",
                    "unknown key",
                    f"remove it; known keys: {', '.join(sorted(_SERVICE_KEYS))}",
                )
        for key in ("name", "port"):
            if key not in table:
                raise ConfigError(path, f"{full}.{key}", "missing", f"add {key} = ...")
        _check_type(path, f"{full}.name", table["name"], (str,))
        _check_type(path, f"{full}.port", table["port"], (int,))
        if not 0 < table["port"] < 65536:
            raise ConfigError(path, f"{full}.port", f"{table['port']} is not a port", "use 1-65535")
        protocol = table.get("protocol", "tcp")
        if protocol not in ("tcp", "udp"):
            raise ConfigError(path, f"{full}.protocol", f"{protocol!r} is unknown", 'use "tcp" or "udp"')
        parsed.append(
            ServiceConfig(
                name=table["name"],
                port=table["port"],
                protocol=protocol,
                owner=str(table.get("owner", "")),
                deployed_at=str(table.get("deployed_at", "")),
            )
        )
    return tuple(parsed)


def _table(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(path, key, "must be a table", f"write it as [{key}]")
    return value


def _check_type(path: Path, key: str, value: Any, types: tuple[type, ...]) -> None:
    # bool is an int in Python; a boolean where a number belongs is still a mistake.
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        names = " or ".join(_TYPE_NAMES[t] for t in types)
        raise ConfigError(path, key, f"must be {names}, got {value!r}", f"set {key} to {names}")


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check_listen_address(path: Path, address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(
            path,
            "orchestrator.listen_address",
            f"{address!r} is not HOST:PORT",
            'use for example "127.0.0.1:9741"',
        )
