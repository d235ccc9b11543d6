"""The seed's incident as a scenario: its day's queue, the expired Google token, time sped up.

The seed (../shared/seed/jada-agent-incident-report.txt): session 1 hit the 30-turn limit,
session 2 completed and asked a person a question, session 3 hit the limit again; and all
along port_sheet_sync failed every 30 minutes with ``HTTP 400`` because the stored refresh
token had expired. The demo replays that day with the real orchestrator against the
simulators, with the sync every ``1800 / speed`` seconds.

Sped-up alert rules: with ``speed`` S, a rendered copy of alerts/rules.yml has every
duration in a ``for:``, a range selector ``[d]`` and an ``offset d`` divided by S (the
seed's 30-minute cadence becomes 30 s at S = 60, and the 65-minute token-error window
65 s), ranges no shorter than ``MIN_RANGE_SECONDS`` so a rate still sees several scrapes,
and a ``for:`` that is not zero no shorter than ``MIN_FOR_SECONDS``, so that a scrape or
two timing out on a busy two-core host does not page (``for: 5m`` would become 5 s).
Thresholds, selectors, labels and annotations stay as they are.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from demo.monitoring import parse_duration
from orchestrator.store import Store

ALERTS_CONFIG = Path(__file__).resolve().parent.parent / "alerts" / "config.yaml"
SEED_INTERVAL_SECONDS = 1800.0
SPREADSHEET_ID = "1PortSheetDemo"
WORKSHEET = "ports"
EXPIRED_REFRESH_TOKEN = "1//0expired-refresh-token-from-may"
SERVICE_ACCOUNT = "port-sheet@jada-demo.iam.gserviceaccount.com"
MIN_RANGE_SECONDS = 4.0
MIN_FOR_SECONDS = 15.0
# The seed's port_sheet_sync.py printed this and nothing else: no fields, just a line.
SEED_TOKEN_ERROR_LINE = "[port-sheet] token error: HTTP Error 400: Bad Request"


@dataclass(frozen=True)
class SeedTask:
    """A task of the seed's queue; the prompt's marker picks the Claude simulator's behaviour."""

    title: str
    prompt: str


SEED_TASKS = (
    SeedTask(
        "Refactor the crew page generator",
        "[scenario:tool_forever] Split the generator into page components.",
    ),
    SeedTask(
        "Clear the e-signature and crew page generator blockers",
        "[scenario:request_human] Fix the e-signature flow blocking the crew pages.",
    ),
)

SERVICES = (
    ("crew-pages", 8080, "task 12", "2026-05-10T09:00:00Z"),
    ("e-signature", 8081, "task 7", "2026-05-12T17:30:00Z"),
)

_RANGE = re.compile(r"\[(\w+)(?::(\w*))?\]")
_OFFSET = re.compile(r"\boffset\s+(\w+)")
# Quoted label values may hold brackets or the word offset; those are not durations.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def format_seconds(seconds: float) -> str:
    """Return a Prometheus duration for ``seconds``, in milliseconds when not whole seconds."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _scaled(text: str, speed: float, floor: float = 0.0) -> str:
    seconds = parse_duration(text)
    if seconds == 0:
        return text
    return format_seconds(max(seconds / speed, floor))


def _compress_range(match: re.Match[str], speed: float) -> str:
    window, step = match.groups()
    scaled = _scaled(window, speed, MIN_RANGE_SECONDS)
    if step is None:
        return f"[{scaled}]"
    return f"[{scaled}:{_scaled(step, speed) if step else ''}]"


def compress_expr(expr: str, speed: float) -> str:
    """Return ``expr`` with range selectors and offsets divided by ``speed``, quoted strings untouched."""
    parts = []
    position = 0
    for string in [*_STRING.finditer(expr), None]:
        end = string.start() if string else len(expr)
        code = _RANGE.sub(lambda m: _compress_range(m, speed), expr[position:end])
        parts.append(_OFFSET.sub(lambda m: f"offset {_scaled(m.group(1), speed)}", code))
        if string:
            parts.append(string.group())
            position = string.end()
    return "".join(parts)


def compress_rules(source: str, speed: float) -> str:
    """Return the rule file ``source`` with its ``for:``, ranges and offsets divided by ``speed``."""
    if speed <= 0:
        raise ValueError(f"speed must be greater than 0, got {speed}")
    document: dict[str, Any] = yaml.safe_load(source)
    for group in document.get("groups") or []:
        for rule in group.get("rules") or []:
            rule["expr"] = compress_expr(str(rule["expr"]), speed)
            if "for" in rule:
                rule["for"] = _scaled(str(rule["for"]), speed, MIN_FOR_SECONDS)
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def token_error_window_seconds(config: Path = ALERTS_CONFIG) -> float:
    """Return the token-error alerts' window from alerts/config.yaml, in seconds."""
    return parse_duration(yaml.safe_load(config.read_text())["thresholds"]["token_error_window"])


def render_config(
    state_dir: Path,
    secrets_dir: Path,
    listen_address: str,
    claude_url: str,
    google_url: str,
    sync_interval_seconds: float,
) -> str:
    """Return the orchestrator's TOML config for the stack: the seed's budgets, simulators, fast sync."""
    services = "".join(
        f'\n[[services]]\nname = "{name}"\nport = {port}\nowner = "{owner}"\ndeployed_at = "{when}"\n'
        for name, port, owner, when in SERVICES
    )
    return f"""# Written by the jada-agent demo stack; the seed's budgets, the simulators, a fast sync.
[orchestrator]
state_dir = "{state_dir}"
listen_address = "{listen_address}"
poll_interval_seconds = 0.5
max_turns = 30
daily_sessions = 5
# The seed's refactor task, parked for a person after its second turn-limit exit.
max_attempts = 2
anthropic_base_url = "{claude_url}"
anthropic_max_retries = 1

[google]
secrets_dir = "{secrets_dir}"
token_uri = "{google_url}/token"
sheets_endpoint = "{google_url}"

[jobs.port_sheet_sync]
interval_seconds = {sync_interval_seconds:g}
timeout_seconds = 30
credential = "google"
spreadsheet_id = "{SPREADSHEET_ID}"
worksheet = "{WORKSHEET}"
{services}"""


def queue_seed_day(store_path: Path) -> list[int]:
    """Queue the seed day's tasks in the store; return their ids."""
    with Store(store_path) as store:
        return [store.add_task(task.title, task.prompt) for task in SEED_TASKS]


def write_secret(path: Path, content: dict[str, str]) -> Path:
    """Write a credential file with mode 0600 in a 0700 directory, atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    # Created with 0600 from the start: a chmod afterwards would leave a readable moment.
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(json.dumps(content))
    partial.replace(path)
    return path
