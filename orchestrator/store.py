"""The persistent store: tasks, sessions, the daily session ledger and job runs in SQLite.

One file in WAL mode, opened by several processes at once (the daemon, session and job
children, CLI commands). Every write is one short ``BEGIN IMMEDIATE`` transaction, so the
daily budget check and the session insert cannot race, and a kill -9 loses at most the
transaction in flight. The schema is versioned with ``PRAGMA user_version``; opening an
older file migrates it in place.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "needs_you", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")
EXIT_REASONS = ("completed", "max_turns", "error", "timeout", "interrupted")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation")
BUSY_TIMEOUT_MS = 15000
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _statements(script: str) -> tuple[str, ...]:
    """Split a script without triggers into its statements."""
    return tuple(statement.strip() for statement in script.split(";") if statement.strip())


# Entry i migrates the schema from version i to i + 1, one statement per string (trigger
# bodies hold semicolons, so the runner cannot split a script). Append, never edit: users
# upgrade in place and a released migration has already run on their files.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _statements(
        """
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        prompt TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'needs_you', 'done', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        progress TEXT NOT NULL DEFAULT '',
        parent_id INTEGER REFERENCES tasks(id),
        question TEXT,
        answer TEXT,
        reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        needs_you_since REAL,
        last_started_at REAL
    );
    CREATE INDEX tasks_by_state ON tasks(state, needs_you_since);
    CREATE INDEX tasks_runnable ON tasks(state, priority DESC, last_started_at, id);
    CREATE TABLE task_dependencies (
        task_id INTEGER NOT NULL REFERENCES tasks(id),
        depends_on INTEGER NOT NULL REFERENCES tasks(id),
        PRIMARY KEY (task_id, depends_on)
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        task_id INTEGER NOT NULL REFERENCES tasks(id),
        day TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        turns INTEGER NOT NULL DEFAULT 0,
        exit_reason TEXT,
        exit_code INTEGER,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
        summary TEXT
    );
    CREATE INDEX sessions_by_day ON sessions(day);
    CREATE INDEX sessions_running ON sessions(ended_at);
    CREATE TABLE daily_ledger (
        day TEXT PRIMARY KEY,
        sessions_started INTEGER NOT NULL
    );
    CREATE TABLE job_runs (
        id INTEGER PRIMARY KEY,
        job_name TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        result TEXT NOT NULL,
        duration_seconds REAL NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX job_runs_by_name ON job_runs(job_name, started_at);
    """
    ),
    # Counting tasks per state scans the whole table (17 ms at 100,000 tasks); /metrics reads
    # these counts on every scrape, so triggers keep them instead.
    (
        "CREATE TABLE task_counts (state TEXT PRIMARY KEY, tasks INTEGER NOT NULL)",
        "INSERT INTO task_counts (state, tasks) SELECT state, COUNT(*) FROM tasks GROUP BY state",
        """CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO task_counts (state, tasks) VALUES (NEW.state, 1)
                ON CONFLICT(state) DO UPDATE SET tasks = tasks + 1;
        END""",
        """CREATE TRIGGER task_counts_update AFTER UPDATE OF state ON tasks
        WHEN OLD.state != NEW.state BEGIN
            UPDATE task_counts SET tasks = tasks - 1 WHERE state = OLD.state;
            INSERT INTO task_counts (state, tasks) VALUES (NEW.state, 1)
                ON CONFLICT(state) DO UPDATE SET tasks = tasks + 1;
        END""",
        """CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
            UPDATE task_counts SET tasks = tasks - 1 WHERE state = OLD.state;
        END""",
    ),
    # The job child's whole result line (token error, credential health), so the status page
    # and `jada-agent doctor` can say what is wrong with a credential and the fix to run.
    ("ALTER TABLE job_runs ADD COLUMN report TEXT NOT NULL DEFAULT ''",),
    # The last success of a job is read on every scrape and page view; without this index it
    # scans all of the job's runs (a year of 30-minute runs: /metrics 2.3 ms -> 7.6 ms).
    ("CREATE INDEX job_runs_success ON job_runs(job_name, result, ended_at)",),
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """A store problem phrased for the person who has to act on it."""


@dataclass(frozen=True)
class Task:
    """One task in the queue."""

    id: int
    title: str
    prompt: str
    priority: int
    state: str
    depends_on: tuple[int, ...]
    attempts: int
    progress: str
    parent_id: int | None
    question: str | None
    answer: str | None
    created_at: float
    updated_at: float
    needs_you_since: float | None
    reason: str | None


@dataclass(frozen=True)
class Session:
    """One agent session: a child process working on a task."""

    id: int
    task_id: int
    day: str
    started_at: float
    ended_at: float | None
    turns: int
    exit_reason: str | None
    exit_code: int | None
    usage: dict[str, int]
    summary: str | None


@dataclass(frozen=True)
class JobRun:
    """One finished run of a scheduled job."""

    id: int
    job_name: str
    started_at: float
    ended_at: float
    result: str
    duration_seconds: float
    detail: str
    report: str = ""


@dataclass(frozen=True)
class Snapshot:
    """What the metrics and status need from the store, read in one query."""

    tasks_by_state: dict[str, int]
    needs_you_oldest: float | None
    sessions_today: int


def utc_day(now: float | datetime | None = None) -> str:
    """Return the UTC day (YYYY-MM-DD) of a unix time; the budget resets on it."""
    if now is None:
        now = time.time()
    if isinstance(now, datetime):
        now = now.timestamp()
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def _day(day: str | date) -> str:
    return day.isoformat() if isinstance(day, date) else day


def _now(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    return now.timestamp() if isinstance(now, datetime) else float(now)


class Store:
    """The SQLite store; safe to open from several processes and to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        _refuse_foreign_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the store {self.path}: {exc}; check the path and its permissions"
            ) from None
        self._db.row_factory = sqlite3.Row
        # One connection shared by the daemon loop and the HTTP threads: serialize its use.
        self._lock = threading.RLock()
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"{self.path} is not a usable jada-agent store ({exc}); "
                "point state_dir at another directory or restore the file from a backup"
            ) from None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this jada-agent "
                    f"understands ({SCHEMA_VERSION}); upgrade jada-agent"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        """Return the schema version of the open file."""
        return int(self._read("PRAGMA user_version")[0][0])

    def integrity_check(self) -> str:
        """Return SQLite's integrity check verdict ("ok" when sound)."""
        return "; ".join(row[0] for row in self._read("PRAGMA integrity_check"))

    # Tasks

    def add_task(
        self,
        title: str,
        prompt: str,
        priority: int = 0,
        depends_on: Iterable[int] = (),
        parent_id: int | None = None,
        state: str = "queued",
        question: str | None = None,
        blocks: Iterable[int] = (),
    ) -> int:
        """Insert a task and return its id.

        ``blocks`` lists existing tasks that must wait for the new one. Unknown ids and a
        dependency cycle raise StoreError and leave the store as it was.
        """
        if state not in STATES:
            raise StoreError(f"unknown task state {state!r}; use one of {', '.join(STATES)}")
        depends = sorted(set(depends_on))
        blocked = sorted(set(blocks))
        now = time.time()
        with self._write() as db:
            _require_tasks(db, [*depends, *blocked, *([parent_id] if parent_id is not None else [])])
            cursor = db.execute(
                "INSERT INTO tasks (title, prompt, priority, state, parent_id, question, created_at,"
                " updated_at, needs_you_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    title,
                    prompt,
                    priority,
                    state,
                    parent_id,
                    question,
                    now,
                    now,
                    now if state == "needs_you" else None,
                ),
            )
            task_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO task_dependencies (task_id, depends_on) VALUES (?, ?)",
                [(task_id, dep) for dep in depends],
            )
            for waiting in blocked:
                _add_dependency(db, waiting, task_id)
        return task_id

    def add_dependency(self, task_id: int, depends_on: int) -> None:
        """Make ``task_id`` wait for ``depends_on``; reject a dependency cycle."""
        with self._write() as db:
            _require_tasks(db, [task_id, depends_on])
            _add_dependency(db, task_id, depends_on)

    def get_task(self, task_id: int) -> Task:
        """Return the task, or raise StoreError naming the unknown id."""
        rows = self._read("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if not rows:
            raise StoreError(f"no task with id {task_id}; `jada-agent task list` shows the ids")
        return self._tasks(rows)[0]

    def list_tasks(self, state: str | None = None) -> list[Task]:
        """Return tasks (all, or those in ``state``) by id."""
        if state is None:
            rows = self._read("SELECT * FROM tasks ORDER BY id")
        else:
            if state not in STATES:
                raise StoreError(f"unknown task state {state!r}; use one of {', '.join(STATES)}")
            rows = self._read("SELECT * FROM tasks WHERE state = ? ORDER BY id", (state,))
        return self._tasks(rows)

    def _tasks(self, rows: list[sqlite3.Row]) -> list[Task]:
        ids = [row["id"] for row in rows]
        deps: dict[int, list[int]] = {i: [] for i in ids}
        # Batches stay under SQLite's limit on bound parameters.
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            for dep in self._read(
                f"SELECT task_id, depends_on FROM task_dependencies WHERE task_id IN ({marks})"
                " ORDER BY depends_on",
                batch,
            ):
                deps[dep["task_id"]].append(dep["depends_on"])
        return [
            Task(
                id=row["id"],
                title=row["title"],
                prompt=row["prompt"],
                priority=row["priority"],
                state=row["state"],
                depends_on=tuple(deps[row["id"]]),
                attempts=row["attempts"],
                progress=row["progress"],
                parent_id=row["parent_id"],
                question=row["question"],
                answer=row["answer"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                needs_you_since=row["needs_you_since"],
                reason=row["reason"],
            )
            for row in rows
        ]

    def next_runnable_task(self) -> Task | None:
        """Return the queued task to run next: all dependencies done, by priority then fairness."""
        # Fairness: among equal priorities, the task that waited longest since its last
        # session goes first (never started sorts first: SQLite orders NULL lowest), so a
        # task re-queued after max_turns does not starve the others.
        rows = self._read(
            "SELECT * FROM tasks t WHERE state = 'queued' AND NOT EXISTS ("
            " SELECT 1 FROM task_dependencies d JOIN tasks u ON u.id = d.depends_on"
            " WHERE d.task_id = t.id AND u.state != 'done')"
            " ORDER BY priority DESC, last_started_at, id LIMIT 1"
        )
        return self._tasks(rows)[0] if rows else None

    def set_task_state(self, task_id: int, state: str, reason: str | None = None) -> None:
        """Move a task to ``state``, recording why."""
        if state not in STATES:
            raise StoreError(f"unknown task state {state!r}; use one of {', '.join(STATES)}")
        now = time.time()
        with self._write() as db:
            _require_tasks(db, [task_id])
            db.execute(
                "UPDATE tasks SET state = ?, reason = COALESCE(?, reason), updated_at = ?,"
                " needs_you_since = CASE WHEN ? = 'needs_you' THEN COALESCE(needs_you_since, ?)"
                " ELSE NULL END WHERE id = ?",
                (state, reason, now, state, now, task_id),
            )

    def release_task(
        self, task_id: int, state: str, note: str | None = None, reason: str | None = None
    ) -> bool:
        """Move a task out of running after its session, appending ``note`` to its progress.

        Return False, changing nothing, when the task is no longer running (a person
        cancelled it meanwhile): their decision stands.
        """
        if state not in STATES:
            raise StoreError(f"unknown task state {state!r}; use one of {', '.join(STATES)}")
        now = time.time()
        with self._write() as db:
            if _task_state(db, task_id) != "running":
                return False
            db.execute(
                "UPDATE tasks SET state = ?, reason = ?, updated_at = ?,"
                " needs_you_since = CASE WHEN ? = 'needs_you' THEN ? END WHERE id = ?",
                (state, reason, now, state, now, task_id),
            )
            if note:
                _append_progress(db, task_id, note)
        return True

    def cancel_task(self, task_id: int) -> None:
        """Cancel a task that has not finished."""
        with self._write() as db:
            state = _task_state(db, task_id)
            if state in FINISHED_STATES:
                raise StoreError(f"task {task_id} is already {state}; only unfinished tasks can be cancelled")
            db.execute(
                "UPDATE tasks SET state = 'cancelled', reason = 'cancelled by a person',"
                " needs_you_since = NULL, updated_at = ? WHERE id = ?",
                (time.time(), task_id),
            )

    def append_progress(self, task_id: int, text: str) -> None:
        """Append a note to the task's progress, which the next session is given."""
        with self._write() as db:
            _require_tasks(db, [task_id])
            _append_progress(db, task_id, text)

    def request_human(self, parent_id: int, question: str) -> int:
        """Create a needs_you question linked to ``parent_id``; the parent waits for its answer."""
        now = time.time()
        with self._write() as db:
            _require_tasks(db, [parent_id])
            cursor = db.execute(
                "INSERT INTO tasks (title, prompt, priority, state, parent_id, question, created_at,"
                " updated_at, needs_you_since) VALUES (?, ?, 0, 'needs_you', ?, ?, ?, ?, ?)",
                (f"Question from task {parent_id}", question, parent_id, question, now, now, now),
            )
            question_id = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO task_dependencies (task_id, depends_on) VALUES (?, ?)", (parent_id, question_id)
            )
        return question_id

    def answer_task(self, task_id: int, answer: str) -> None:
        """Answer a needs_you task.

        A question (made by request_human) becomes done and its parent is re-queued with
        the answer in its progress. A task escalated to a person (after max_attempts) is
        re-queued itself, with the answer in its progress and its attempts reset.
        """
        now = time.time()
        with self._write() as db:
            state = _task_state(db, task_id)
            if state != "needs_you":
                raise StoreError(
                    f"task {task_id} is {state}, not needs_you; only needs_you tasks take an answer"
                )
            row = db.execute("SELECT parent_id, question FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row["question"] is None:
                db.execute(
                    "UPDATE tasks SET state = 'queued', answer = ?, attempts = 0, reason = NULL,"
                    " needs_you_since = NULL, updated_at = ? WHERE id = ?",
                    (answer, now, task_id),
                )
                _append_progress(db, task_id, f"A person answered: {answer}")
                return
            db.execute(
                "UPDATE tasks SET state = 'done', answer = ?, needs_you_since = NULL, updated_at = ?"
                " WHERE id = ?",
                (answer, now, task_id),
            )
            parent = row["parent_id"]
            if parent is not None:
                _append_progress(db, parent, f"A person answered your question {row['question']!r}: {answer}")
                db.execute(
                    "UPDATE tasks SET state = 'queued', needs_you_since = NULL, updated_at = ?"
                    " WHERE id = ? AND state IN ('queued', 'needs_you')",
                    (now, parent),
                )

    # Sessions and the daily budget

    def start_session(self, task_id: int, day_limit: int, now: float | datetime | None = None) -> int | None:
        """Spend one of today's sessions on ``task_id`` and return the session id.

        Return None when today's (UTC) budget is spent. The check and the spend are one
        transaction, and the ledger never goes down, so neither a race nor a restart
        can exceed the limit.
        """
        started = _now(now)
        day = utc_day(started)
        with self._write() as db:
            state = _task_state(db, task_id)
            if state != "queued":
                raise StoreError(f"task {task_id} is {state}, not queued; it cannot start a session")
            row = db.execute("SELECT sessions_started FROM daily_ledger WHERE day = ?", (day,)).fetchone()
            used = row[0] if row else 0
            if used >= day_limit:
                return None
            db.execute(
                "INSERT INTO daily_ledger (day, sessions_started) VALUES (?, 1)"
                " ON CONFLICT(day) DO UPDATE SET sessions_started = sessions_started + 1",
                (day,),
            )
            cursor = db.execute(
                "INSERT INTO sessions (task_id, day, started_at) VALUES (?, ?, ?)", (task_id, day, started)
            )
            db.execute(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1, last_started_at = ?,"
                " updated_at = ? WHERE id = ?",
                (started, started, task_id),
            )
        return int(cursor.lastrowid or 0)

    def update_session_progress(self, session_id: int, turns: int, usage: dict[str, int]) -> None:
        """Record a running session's turns and token usage so far (totals, not increments)."""
        with self._write() as db:
            _require_session(db, session_id)
            db.execute(
                "UPDATE sessions SET turns = ?, input_tokens = ?, output_tokens = ?,"
                " cache_read_tokens = ?, cache_creation_tokens = ? WHERE id = ?",
                (
                    turns,
                    int(usage.get("input", 0)),
                    int(usage.get("output", 0)),
                    int(usage.get("cache_read", 0)),
                    int(usage.get("cache_creation", 0)),
                    session_id,
                ),
            )

    def finish_session(
        self,
        session_id: int,
        reason: str,
        exit_code: int | None,
        turns: int,
        summary: str | None = None,
        now: float | datetime | None = None,
    ) -> None:
        """Record how a session ended."""
        if reason not in EXIT_REASONS:
            raise StoreError(f"unknown exit reason {reason!r}; use one of {', '.join(EXIT_REASONS)}")
        with self._write() as db:
            _require_session(db, session_id)
            db.execute(
                "UPDATE sessions SET ended_at = ?, exit_reason = ?, exit_code = ?, turns = MAX(turns, ?),"
                " summary = ? WHERE id = ?",
                (_now(now), reason, exit_code, turns, summary, session_id),
            )

    def get_session(self, session_id: int) -> Session:
        """Return the session, or raise StoreError naming the unknown id."""
        rows = self._read("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise StoreError(f"no session with id {session_id}")
        return _session(rows[0])

    def sessions_on_day(self, day: str | date) -> list[Session]:
        """Return the sessions started on a UTC day, oldest first."""
        rows = self._read("SELECT * FROM sessions WHERE day = ? ORDER BY id", (_day(day),))
        return [_session(row) for row in rows]

    def sessions_used(self, day: str | date) -> int:
        """Return how many sessions the ledger has counted on a UTC day."""
        rows = self._read("SELECT sessions_started FROM daily_ledger WHERE day = ?", (_day(day),))
        return int(rows[0][0]) if rows else 0

    def sessions_used_today(self, now: float | datetime | None = None) -> int:
        """Return how many sessions today's (UTC) budget has spent."""
        return self.sessions_used(utc_day(_now(now)))

    def running_sessions(self) -> list[Session]:
        """Return sessions with no recorded end (running, or interrupted by a crash)."""
        rows = self._read("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY id")
        return [_session(row) for row in rows]

    def snapshot(self, now: float | datetime | None = None) -> Snapshot:
        """Read task counts, the oldest needs_you wait and today's sessions in one query."""
        rows = self._read(
            "SELECT state, tasks FROM task_counts"
            " UNION ALL SELECT '', sessions_started FROM daily_ledger WHERE day = ?"
            " UNION ALL SELECT 'oldest', MIN(needs_you_since) FROM tasks WHERE state = 'needs_you'",
            (utc_day(_now(now)),),
        )
        by_state = dict.fromkeys(STATES, 0)
        oldest = None
        today = 0
        for key, value in rows:
            if key == "":
                today = value
            elif key == "oldest":
                oldest = value
            else:
                by_state[key] = value
        return Snapshot(tasks_by_state=by_state, needs_you_oldest=oldest, sessions_today=today)

    # Job runs (the scheduler's)

    def record_job_run(
        self,
        job_name: str,
        started_at: float,
        ended_at: float,
        result: str,
        duration_seconds: float,
        detail: str = "",
        report: str = "",
    ) -> int:
        """Record a finished job run (``report``: the child's JSON result line) and return its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO job_runs (job_name, started_at, ended_at, result, duration_seconds, detail,"
                " report) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_name, started_at, ended_at, result, duration_seconds, detail, report),
            )
        return int(cursor.lastrowid or 0)

    def last_job_runs(self, job_name: str, limit: int = 10) -> list[JobRun]:
        """Return a job's most recent runs, newest first."""
        rows = self._read(
            "SELECT * FROM job_runs WHERE job_name = ? ORDER BY started_at DESC, id DESC LIMIT ?",
            (job_name, limit),
        )
        return [JobRun(**dict(row)) for row in rows]

    def last_job_success(self, job_name: str) -> float | None:
        """Return when a job last finished successfully, or None if it never did."""
        rows = self._read(
            "SELECT MAX(ended_at) FROM job_runs WHERE job_name = ? AND result = 'success'", (job_name,)
        )
        return rows[0][0]


def _refuse_foreign_file(path: Path) -> None:
    """Raise StoreError when ``path`` holds something other than an SQLite database."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise StoreError(f"the store {path} is a directory; point state_dir elsewhere") from None
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc}; check its permissions") from None
    if head and head != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not an SQLite database; it was left untouched. Move it aside or "
            "point orchestrator.state_dir at another directory"
        )


def _require_tasks(db: sqlite3.Connection, ids: Iterable[int]) -> None:
    for task_id in ids:
        if db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is None:
            raise StoreError(f"no task with id {task_id}; `jada-agent task list` shows the ids")


def _require_session(db: sqlite3.Connection, session_id: int) -> None:
    if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
        raise StoreError(f"no session with id {session_id}")


def _task_state(db: sqlite3.Connection, task_id: int) -> str:
    row = db.execute("SELECT state FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        raise StoreError(f"no task with id {task_id}; `jada-agent task list` shows the ids")
    return str(row[0])


def _append_progress(db: sqlite3.Connection, task_id: int, text: str) -> None:
    db.execute(
        "UPDATE tasks SET progress = CASE WHEN progress = '' THEN ? ELSE progress || char(10) || ? END,"
        " updated_at = ? WHERE id = ?",
        (text, text, time.time(), task_id),
    )


def _add_dependency(db: sqlite3.Connection, task_id: int, depends_on: int) -> None:
    path = _dependency_path(db, depends_on, task_id)
    if path is not None:
        cycle = " -> ".join(str(t) for t in [task_id, *path])
        raise StoreError(
            f"task {task_id} cannot depend on task {depends_on}: that makes a dependency cycle "
            f"({cycle}); drop one of these dependencies"
        )
    db.execute(
        "INSERT OR IGNORE INTO task_dependencies (task_id, depends_on) VALUES (?, ?)", (task_id, depends_on)
    )


def _dependency_path(db: sqlite3.Connection, start: int, goal: int) -> list[int] | None:
    """Return the dependency chain from ``start`` to ``goal``, or None if there is none."""
    parents: dict[int, int | None] = {start: None}
    frontier = [start]
    while frontier:
        current = frontier.pop()
        if current == goal:
            chain = [current]
            while (previous := parents[chain[-1]]) is not None:
                chain.append(previous)
            return list(reversed(chain))
        for (dep,) in db.execute("SELECT depends_on FROM task_dependencies WHERE task_id = ?", (current,)):
            if dep not in parents:
                parents[dep] = current
                frontier.append(dep)
    return None


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        task_id=row["task_id"],
        day=row["day"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        turns=row["turns"],
        exit_reason=row["exit_reason"],
        exit_code=row["exit_code"],
        usage={
            "input": row["input_tokens"],
            "output": row["output_tokens"],
            "cache_read": row["cache_read_tokens"],
            "cache_creation": row["cache_creation_tokens"],
        },
        summary=row["summary"],
    )
