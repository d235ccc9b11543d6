"""What the orchestrator is doing, for a person: `jada-agent status` and the status page's data.

:func:`gather` reads a :class:`StatusReport` (plain data) from the store; :func:`render_text`
prints it; ``orchestrator.web.render_page`` draws the same report as HTML.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.store import STATES, Store, utc_day
from orchestrator.taskcli import open_store


@dataclass(frozen=True)
class SessionLine:
    """One of today's sessions."""

    id: int
    task_id: int
    task_title: str
    started_at: float
    turns: int
    exit_reason: str | None
    exit_code: int | None


@dataclass(frozen=True)
class NeedsYouLine:
    """A task waiting for a person."""

    id: int
    title: str
    question: str
    parent_id: int | None
    waiting_seconds: float


@dataclass(frozen=True)
class StatusReport:
    """Today's budget and sessions, the queue and what waits for a person."""

    now: float
    day: str
    sessions_used: int
    daily_limit: int
    turn_limit: int
    sessions: tuple[SessionLine, ...]
    queue: dict[str, int]
    needs_you: tuple[NeedsYouLine, ...]


def gather(store: Store, daily_limit: int, turn_limit: int, now: float | None = None) -> StatusReport:
    """Read the status report from the store."""
    now = time.time() if now is None else now
    day = utc_day(now)
    sessions = store.sessions_on_day(day)
    titles = {task.id: task.title for task in store.list_tasks("running")}
    needs_you = store.list_tasks("needs_you")
    for session in sessions:
        if session.task_id not in titles:
            titles[session.task_id] = store.get_task(session.task_id).title
    snapshot = store.snapshot(now)
    return StatusReport(
        now=now,
        day=day,
        sessions_used=store.sessions_used(day),
        daily_limit=daily_limit,
        turn_limit=turn_limit,
        sessions=tuple(
            SessionLine(
                id=s.id,
                task_id=s.task_id,
                task_title=titles[s.task_id],
                started_at=s.started_at,
                turns=s.turns,
                exit_reason=s.exit_reason,
                exit_code=s.exit_code,
            )
            for s in sessions
        ),
        queue=snapshot.tasks_by_state,
        needs_you=tuple(
            NeedsYouLine(
                id=t.id,
                title=t.title,
                question=t.question or t.reason or t.prompt,
                parent_id=t.parent_id,
                waiting_seconds=max(0.0, now - (t.needs_you_since or t.created_at)),
            )
            for t in sorted(needs_you, key=lambda t: t.needs_you_since or t.created_at)
        ),
    )


def format_age(seconds: float) -> str:
    """Format a duration the way a person reads it: 45s, 12m, 3h 05m, 2d 4h."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def describe_exit(line: SessionLine) -> str:
    """Describe how a session ended: ``max_turns (exit code 1)``, or ``running``."""
    if line.exit_reason is None:
        return "running"
    if line.exit_code is None:
        return line.exit_reason
    return f"{line.exit_reason} (exit code {line.exit_code})"


def hhmm(timestamp: float) -> str:
    """Format a unix time as HH:MM UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M")


def render_text(report: StatusReport) -> str:
    """Render the report as the text `jada-agent status` prints."""
    lines = [f"Sessions today ({report.day} UTC): {report.sessions_used}/{report.daily_limit}"]
    for s in report.sessions:
        lines.append(
            f"  session {s.id} at {hhmm(s.started_at)}: task {s.task_id} ({s.task_title}), "
            f"{s.turns}/{report.turn_limit} turns, {describe_exit(s)}"
        )
    lines.append("Queue: " + ", ".join(f"{state} {report.queue.get(state, 0)}" for state in STATES))
    if report.needs_you:
        lines.append("Needs you:")
        for item in report.needs_you:
            origin = f" (from task {item.parent_id})" if item.parent_id is not None else ""
            lines.append(
                f"  task {item.id}{origin}, waiting {format_age(item.waiting_seconds)}: {item.question}"
            )
    else:
        lines.append("Needs you: nothing")
    return "\n".join(lines) + "\n"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `jada-agent status`."""
    parser = subparsers.add_parser("status", help="sessions today, the queue and what needs you")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the status report."""
    cfg, store = open_store(args)
    with store:
        print(render_text(gather(store, cfg.daily_sessions, cfg.max_turns)), end="")
    return 0
