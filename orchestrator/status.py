"""What the orchestrator is doing, for a person: `jada-agent status` and the status page's data.

:func:`gather` reads a :class:`StatusReport` (plain data) from the store, and
:func:`gather_config` adds each configured job's last runs and each credential's health;
:func:`render_text` prints it; ``orchestrator.web.render_page`` draws the same report as HTML.
Deciding what a credential's state means (:func:`credential_health`) is a pure function that
``jada-agent doctor`` shares.
"""

from __future__ import annotations

import argparse
import json
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator import credentials
from orchestrator.config import Config
from orchestrator.jobs import JOB_MODULES, SUCCESS
from orchestrator.store import STATES, JobRun, Store, utc_day
from orchestrator.taskcli import open_store
from orchestrator.tokenerror import TokenError

OK = "OK"
WARN = "WARN"
FAIL = "FAIL"
SEVERITY = {OK: 0, WARN: 1, FAIL: 2}
DEFAULT_CREDENTIAL = "google"
RUNS_SHOWN = 5


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
class JobLine:
    """A scheduled job: its interval, its last runs (newest first), last success and next run."""

    name: str
    interval_seconds: float
    runs: tuple[JobRun, ...]
    last_success: float | None
    next_due: float


@dataclass(frozen=True)
class Refresh:
    """The last verdict a job run gave on a credential: refreshed fine, or why not."""

    at: float
    ok: bool
    token_error: TokenError | None
    detail: str


@dataclass(frozen=True)
class CredentialFileState:
    """What the credential file looks like now: its kind, mode, and what is wrong with it."""

    path: Path
    kind: str | None
    mode: int | None
    modified_at: float | None = None
    # (problem, fix) when the file cannot be used at all: missing, not JSON, wrong kind.
    unusable: tuple[str, str] | None = None
    # (problem, fix) pairs for a usable but insecure file (mode, owner).
    insecure: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a credential, with the command that fixes it (if any)."""

    status: str
    text: str
    fix: str | None


@dataclass(frozen=True)
class CredentialLine:
    """A credential's health: OK, WARN or FAIL, what is wrong and the fix to run."""

    name: str
    status: str
    summary: str
    problems: tuple[Problem, ...] = ()

    def line(self) -> str:
        """Render ``FAIL google: HTTP 400 invalid_grant (...) at 15:30 UTC -> run: ...``."""
        return f"{self.status} {self.name}: {self.summary}"


@dataclass(frozen=True)
class StatusReport:
    """Today's budget and sessions, the queue, what waits for a person, jobs and credentials."""

    now: float
    day: str
    sessions_used: int
    daily_limit: int
    turn_limit: int
    sessions: tuple[SessionLine, ...]
    queue: dict[str, int]
    needs_you: tuple[NeedsYouLine, ...]
    jobs: tuple[JobLine, ...] = ()
    credentials: tuple[CredentialLine, ...] = ()


def gather_config(cfg: Config, store: Store, now: float | None = None) -> StatusReport:
    """Read the status report, with the configured jobs and credentials, from the store and files."""
    now = time.time() if now is None else now
    jobs = enabled_jobs(cfg)
    runs = [run for job in jobs for run in store.last_job_runs(job, RUNS_SHOWN)]
    return gather(store, cfg.daily_sessions, cfg.max_turns, now, jobs, credential_lines(cfg, runs))


def enabled_jobs(cfg: Config) -> dict[str, float]:
    """Map each enabled job jada-agent knows to its interval in seconds."""
    return {
        name: job.interval_seconds for name, job in cfg.jobs.items() if job.enabled and name in JOB_MODULES
    }


def credential_lines(cfg: Config, runs: Iterable[JobRun]) -> tuple[CredentialLine, ...]:
    """Check each credential the enabled jobs use: its file now, and the last verdict in ``runs``."""
    uses = {str(cfg.jobs[name].options.get("credential", DEFAULT_CREDENTIAL)) for name in enabled_jobs(cfg)}
    owner = credentials.expected_owner(cfg.service_user)
    runs = list(runs)
    return tuple(
        credential_health(
            name,
            read_credential_file(credentials.credential_path(cfg.secrets_dir, name), name, owner),
            last_refresh(name, runs),
        )
        for name in sorted(uses)
    )


def gather(
    store: Store,
    daily_limit: int,
    turn_limit: int,
    now: float | None = None,
    jobs: dict[str, float] | None = None,
    credential_lines: Sequence[CredentialLine] = (),
) -> StatusReport:
    """Read the status report from the store; ``jobs`` maps job names to their intervals."""
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
        jobs=tuple(_job_line(store, name, interval, now) for name, interval in sorted((jobs or {}).items())),
        credentials=tuple(credential_lines),
    )


def _job_line(store: Store, name: str, interval: float, now: float) -> JobLine:
    runs = tuple(store.last_job_runs(name, RUNS_SHOWN))
    return JobLine(
        name=name,
        interval_seconds=interval,
        runs=runs,
        last_success=store.last_job_success(name),
        next_due=next_due(runs[0].started_at if runs else None, interval, now),
    )


def next_due(last_started: float | None, interval: float, now: float) -> float:
    """Return when the scheduler runs a job next: an interval after its last start, or now."""
    if last_started is None:
        return now
    return last_started + interval


def read_credential_file(path: Path, name: str, owner_uid: int) -> CredentialFileState:
    """Check a credential file (presence, parse, mode, owner) without refreshing it."""
    try:
        st = path.stat()
        mode: int | None = stat.S_IMODE(st.st_mode)
        modified: float | None = st.st_mtime
    except OSError:
        mode = modified = None
    try:
        checked = credentials.load(path, name, owner_uid)
    except credentials.CredentialError as exc:
        return CredentialFileState(path, None, mode, modified, unusable=(exc.problem, exc.fix))
    return CredentialFileState(
        path, checked.kind, mode, modified, insecure=tuple(split_fix(w) for w in checked.warnings)
    )


def split_fix(warning: str) -> tuple[str, str]:
    """Split ``"<problem>; run <command>"`` into (problem, command)."""
    problem, sep, command = warning.rpartition("; run ")
    return (problem, command) if sep else (warning, "")


def last_refresh(name: str, runs: Iterable[JobRun]) -> Refresh | None:
    """Return the newest verdict on credential ``name`` among job runs' result lines."""
    for run in sorted(runs, key=lambda r: (r.started_at, r.id), reverse=True):
        report = _report(run.report)
        token = report.get("token_error")
        error = TokenError.from_dict(token) if isinstance(token, dict) else None
        if error is not None and error.credential == name:
            return Refresh(run.started_at, False, error, run.detail)
        verdict = report.get("credential_ok")
        if isinstance(verdict, dict) and isinstance(verdict.get(name), bool):
            return Refresh(run.started_at, verdict[name], None, run.detail)
    return None


def _report(text: str) -> dict:
    # Runs recorded before reports existed, or by a damaged writer, say nothing about credentials.
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def reauth_command(name: str, kind: str | None) -> str:
    """Return the command that re-authenticates credential ``name`` of ``kind``."""
    credential = "" if name == DEFAULT_CREDENTIAL else f" --credential {name}"
    if kind == credentials.SERVICE_ACCOUNT:
        return f"jada-agent auth google{credential} --service-account KEY.json"
    return f"jada-agent auth google{credential} --client-secrets CLIENT.json"


def fix_command(name: str, fix: str) -> str:
    """Turn a credential error's advice into the command to run."""
    for prefix in ("run: ", "run "):
        if fix.startswith(prefix):
            return fix[len(prefix) :]
    # "re-create it with: jada-agent auth google ..." and the like: name the whole command.
    return reauth_command(name, None)


def credential_health(name: str, state: CredentialFileState, refresh: Refresh | None) -> CredentialLine:
    """Decide a credential's health from its file and the last refresh verdict."""
    problems: list[Problem] = []
    replaced = (
        refresh is not None
        and not refresh.ok
        and state.modified_at is not None
        and state.modified_at > refresh.at
    )
    if state.unusable is not None:
        problem, fix = state.unusable
        problems.append(Problem(FAIL, f"{state.path}: {problem}", fix_command(name, fix)))
    elif replaced and refresh is not None:
        # Re-authenticated since the failure: the old verdict was about the old file.
        problems.append(
            Problem(
                WARN,
                f"refresh failed at {hhmm(refresh.at)} UTC, file replaced at {hhmm(state.modified_at or 0)}"
                " UTC; the next run verifies it",
                None,
            )
        )
    elif refresh is not None and refresh.token_error is not None:
        error = refresh.token_error
        if error.status_code == "none":
            what = f"no answer from the token endpoint ({error.description})"
        else:
            what = f"HTTP {error.status_code} {error.oauth_error}"
            what += f" ({error.description})" if error.description else ""
        when = f" at {hhmm(refresh.at)} UTC"
        if error.retryable:
            problems.append(Problem(WARN, f"{what}{when}; retryable, the next run tries again", None))
        else:
            problems.append(Problem(FAIL, what + when, reauth_command(name, state.kind)))
    elif refresh is not None and not refresh.ok:
        problems.append(
            Problem(FAIL, f"the run at {hhmm(refresh.at)} UTC could not use it: {refresh.detail}", None)
        )
    problems.extend(Problem(WARN, problem, fix or None) for problem, fix in state.insecure)
    if not problems:
        mode = f"mode {state.mode:04o}" if state.mode is not None else "mode unknown"
        verdict = (
            f"last refresh ok at {hhmm(refresh.at)} UTC" if refresh is not None else "no refresh recorded yet"
        )
        return CredentialLine(name, OK, f"{state.kind}, {mode}, {verdict}")
    status = max((p.status for p in problems), key=SEVERITY.__getitem__)
    summary = "; ".join(p.text + (f" -> run: {p.fix}" if p.fix else "") for p in problems)
    return CredentialLine(name, status, summary, tuple(problems))


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
    for job in report.jobs:
        lines.append(f"Job {job.name}: {describe_job(job, report.now)}")
        for run in job.runs:
            lines.append(f"  {describe_run(run)}")
    for credential in report.credentials:
        lines.append(f"Credential {credential.line()}")
    return "\n".join(lines) + "\n"


def describe_job(job: JobLine, now: float) -> str:
    """Describe a job's schedule: every 30m, last success, next run."""
    success = (
        f"last success {hhmm(job.last_success)} UTC ({format_age(now - job.last_success)} ago)"
        if job.last_success is not None
        else "never succeeded"
    )
    overdue = " (overdue)" if job.next_due < now else ""
    return f"every {format_age(job.interval_seconds)}, {success}, next run {hhmm(job.next_due)} UTC{overdue}"


def describe_run(run: JobRun) -> str:
    """Describe one run: ``15:30 UTC failure in 0.4s: token refresh failed: ...``."""
    detail = f": {run.detail}" if run.detail and run.result != SUCCESS else ""
    return f"{hhmm(run.started_at)} UTC {run.result} in {run.duration_seconds:.1f}s{detail}"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `jada-agent status`."""
    parser = subparsers.add_parser("status", help="sessions today, the queue and what needs you")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the status report."""
    cfg, store = open_store(args)
    with store:
        print(render_text(gather_config(cfg, store)), end="")
    return 0
