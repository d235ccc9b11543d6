"""``python -m demo`` (``make demo``): the seed's incident caught, paged and fixed, on one machine.

Starts the whole stack on 127.0.0.1 (demo/stack.py), prints where everything is, then what
happens as it happens: the journal's session, sync and token-error lines, and each page as
the webhook receiver gets it. Once the token error has paged, it runs the fix,
``jada-agent auth google``, and follows the next sync and the resolved notifications.
Ctrl-C or SIGTERM stops every process it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from demo import scenario
from demo.processes import StackError, Terminated, signals_unwind
from demo.stack import PORT_NAMES, Stack, StackOptions, running_stack

EXIT_OK = 0
EXIT_STORY_FAILED = 1
EXIT_USAGE = 2
DEFAULT_WORKDIR = Path("/tmp/jada-agent-demo")
ALERT = "JadaTokenRefreshFailing"
# Lines that repeat what the next line says better.
QUIET_EVENTS = frozenset({"session_loop_end", "job_run"})
# The seed's day: max_turns, completed, max_turns.
SEED_SESSIONS = 3


class DurationReached(Exception):
    """The --duration the person asked for is over."""


class StoryFailed(Exception):
    """A step of the story did not happen; the message says which."""


class Printer:
    """Print whole lines from several threads, each stamped with the time and its source."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def line(self, source: str, text: str, when: float | None = None) -> None:
        """Print one stamped line."""
        stamp = datetime.fromtimestamp(time.time() if when is None else when).strftime("%H:%M:%S")
        with self._lock:
            print(f"  {stamp}  {source:<7}  {text}", file=self._out, flush=True)

    def plain(self, text: str = "") -> None:
        """Print a line as it is."""
        with self._lock:
            print(text, file=self._out, flush=True)

    def stream(self, source: str) -> TextIO:
        """Return a file-like object whose lines come out stamped with ``source``."""
        return _LineStream(self, source)  # type: ignore[return-value]


class _LineStream:
    def __init__(self, printer: Printer, source: str) -> None:
        self._printer = printer
        self._source = source
        self._partial = ""
        self._last_status: dict[str, str] = {}

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line and self._changed(line):
                self._printer.line(self._source, line)
        return len(text)

    def _changed(self, line: str) -> bool:
        # A notification lists every alert of its group, and the Watchdog's comes every
        # minute: show an alert again only when its state changed.
        status, _, alert = line.partition(" ")
        if self._last_status.get(alert.strip()) == status:
            return False
        self._last_status[alert.strip()] = status
        return True

    def flush(self) -> None:
        return


class JournalFollower:
    """Print the orchestrator's journal lines as they arrive; count its events, time its first token error."""

    def __init__(self, stack: Stack, printer: Printer) -> None:
        self._stack = stack
        self._printer = printer
        self._stop = threading.Event()
        self._ours = f"--config {stack.config_path}"
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self.first_token_error: float | None = None
        self._thread = threading.Thread(target=self._run, name="journal-follower", daemon=True)

    def __enter__(self) -> JournalFollower:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def count(self, event: str) -> int:
        """Return how many entries with JADA_EVENT ``event`` were seen (a plain token-error line counts)."""
        with self._lock:
            return self._seen[event]

    def _run(self) -> None:
        reader = self._stack.journal.reader()
        reader.add_match(SYSLOG_IDENTIFIER="jada-agent")
        try:
            while not self._stop.is_set():
                for entry in reader:
                    self._show(entry)
                reader.wait(0.5)
        finally:
            reader.close()

    def _show(self, entry: dict[str, Any]) -> None:
        # Another jada-agent on this host (a test run, say) logs under the same identifier;
        # ours and its children carry our config file on their command line.
        if self._ours not in entry.get("_CMDLINE", self._ours):
            return
        event = entry.get("JADA_EVENT", "")
        message = str(entry.get("MESSAGE", ""))
        when = entry["__REALTIME_TIMESTAMP"].timestamp()
        if not event and "token error" in message:
            event = "token_error"
        with self._lock:
            self._seen[event] += 1
            if event == "token_error" and self.first_token_error is None:
                self.first_token_error = when
        if event not in QUIET_EVENTS:
            self._printer.line("journal", message, when)


def _wait(what: str, ready: Any, deadline: float, end: float | None) -> None:
    """Poll ``ready()`` until true; raise StoryFailed at ``deadline``, DurationReached at ``end``."""
    while not ready():
        now = time.monotonic()
        if end is not None and now > end:
            raise DurationReached
        if now > deadline:
            raise StoryFailed(f"{what} did not happen in time")
        time.sleep(0.2)


def _page_arrived(stack: Stack, status: str, source: str) -> Any:
    def ready() -> bool:
        return any(
            p.alertname == ALERT and p.status == status and p.labels.get("source") == source
            for p in list(stack.receiver.pages)
        )

    return ready


def tell_the_story(stack: Stack, follower: JournalFollower, printer: Printer, end: float | None) -> None:
    """Wait for the page, run the fix, and follow it to the resolved notifications."""
    interval = stack.options.sync_interval
    patience = 3 * interval + 60
    _wait(
        "the token-error page",
        _page_arrived(stack, "firing", "orchestrator"),
        time.monotonic() + patience,
        end,
    )
    page_at = time.time()
    first_error = follower.first_token_error or page_at
    printer.plain(
        f"\n  -> paged {page_at - first_error:.1f}s after the first token error reached the journal."
    )
    printer.plain(f"     Waiting for the next sync (every {interval:g}s) to show it keeps failing...\n")
    _wait(
        "a second failed sync", lambda: follower.count("token_error") >= 2, time.monotonic() + patience, end
    )

    printer.plain("\nThe fix, the seed's four recovery steps as one command:")
    printer.plain(f"  $ jada-agent auth google --service-account {stack.service_account_key}")
    result = stack.reauthenticate()
    for line in (result.stdout + result.stderr).splitlines():
        printer.plain(f"    {line}")
    if result.returncode != 0:
        raise StoryFailed(f"jada-agent auth google exited with code {result.returncode}")
    printer.plain(f"  Waiting for the next sync (every {interval:g}s)...\n")
    _wait("a good sync", lambda: follower.count("sync_ok") >= 1, time.monotonic() + patience, end)
    _wait(
        "the resolved notification",
        _page_arrived(stack, "resolved", "orchestrator"),
        time.monotonic() + patience,
        end,
    )
    window = scenario.token_error_window_seconds()
    sped_up = window / stack.options.speed
    printer.plain(
        f"\n  -> the orchestrator's alert resolved. The journal path's alert resolves once no token error is"
        f"\n     left in its {window / 60:g}-minute window ({sped_up:g}s at this speed)...\n"
    )
    _wait(
        "the seed's three sessions",
        lambda: follower.count("session_exit") >= SEED_SESSIONS,
        time.monotonic() + patience,
        end,
    )
    _wait(
        "the journal path's resolved notification",
        _page_arrived(stack, "resolved", "journal"),
        time.monotonic() + sped_up + patience,
        end,
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="The seed's incident on one machine: caught, paged and fixed.",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=120.0,
        help="how much faster than real time: the 30-minute sync and the alert windows are "
        "divided by it (default: %(default)g; 1 runs the production rules)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        help=f"use ports PORT-BASE..PORT-BASE+{len(PORT_NAMES) - 1} ({', '.join(PORT_NAMES)}) "
        "instead of free ones the kernel picks",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="config, state and process logs (default: %(default)s; reset on each run)",
    )
    parser.add_argument("--duration", type=float, help="stop everything after this many seconds")
    parser.add_argument(
        "--until-resolved", action="store_true", help="stop once the last resolved notification arrived"
    )
    return parser


def _describe(stack: Stack, printer: Printer) -> None:
    journald = "the host's" if stack.journal.is_host else f"our own (pid {stack.journal.pid})"
    printer.plain(f"\nEverything runs on 127.0.0.1; journald is {journald}.")
    for what, where in stack.where():
        printer.plain(f"  {what:<26} {where}")
    printer.plain(
        "\nWhat happens: the orchestrator's journal lines, and each page as the webhook receiver gets it.\n"
    )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run the demo until the story ends (with --until-resolved), --duration, Ctrl-C or SIGTERM."""
    args = build_parser().parse_args(argv)
    if args.speed <= 0:
        print("python -m demo: --speed must be greater than 0, e.g. --speed 60", file=sys.stderr)
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print(
            "python -m demo: --duration must be a positive number of seconds, e.g. --duration 300",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.port_base is not None and not 1024 <= args.port_base <= 65535 - len(PORT_NAMES):
        print(
            f"python -m demo: --port-base must be between 1024 and {65535 - len(PORT_NAMES)},"
            " e.g. --port-base 19741",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # Started in the background by a shell, a process inherits SIGINT ignored; Ctrl-C must still stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    printer = Printer(out)
    end = time.monotonic() + args.duration if args.duration is not None else None
    options = StackOptions(
        workdir=args.workdir, speed=args.speed, port_base=args.port_base, out=printer.stream("page")
    )
    printer.plain(
        f"jada-agent demo: the seed's incident, replayed at {args.speed:g}x speed. The seed's day of"
        f"\nsessions, and a port-sheet sync every {options.sync_interval:g}s whose Google refresh token"
        "\nhas expired. Starting..."
    )
    status = EXIT_OK
    try:
        with signals_unwind(), running_stack(options) as stack:
            _describe(stack, printer)
            with JournalFollower(stack, printer) as follower:
                try:
                    tell_the_story(stack, follower, printer, end)
                    printer.plain("\nAll resolved.")
                    if not args.until_resolved:
                        printer.plain(
                            "The stack keeps running: open the addresses above. Ctrl-C stops everything."
                        )
                        _wait("the end", lambda: False, float("inf"), end)
                except DurationReached:
                    printer.plain(f"\n{args.duration:g}s are over.")
                except StoryFailed as exc:
                    printer.plain(f"\nThe story stopped: {exc}. Logs: {stack.log_dir}")
                    status = EXIT_STORY_FAILED
            printer.plain("Stopping every process the demo started...")
    except StackError as exc:
        print(f"python -m demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        printer.plain("\nInterrupted; every process the demo started is stopped.")
        return 130
    except Terminated as exc:
        printer.plain("\nTerminated; every process the demo started is stopped.")
        return int(exc.code or 0)
    printer.plain("Stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())
