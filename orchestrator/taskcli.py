"""`jada-agent task add|list|show|cancel|answer`: the queue from the command line.

Every problem a person can fix (unknown id, a dependency cycle, a store file that is not
a database, a bad config) is one line on stderr and exit code 2; nothing is changed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from orchestrator import cli, config
from orchestrator.store import STATES, Store, StoreError, Task

EXIT_USAGE = 2


def open_store(args: argparse.Namespace) -> tuple[config.Config, Store]:
    """Load the config and open its store; on error print it and exit 2."""
    cfg = cli.load_config(args)
    try:
        return cfg, Store(cfg.store_path)
    except StoreError as exc:
        print(f"jada-agent: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `jada-agent task` and its subcommands."""
    parser = subparsers.add_parser("task", help="add, list, show, cancel or answer tasks")
    commands = parser.add_subparsers(dest="task_command", required=True, metavar="ACTION")

    add = commands.add_parser("add", help="queue a new task")
    add.add_argument("title")
    add.add_argument("prompt", nargs="?", help="what the agent should do (default: the title)")
    add.add_argument("--priority", type=int, default=0, help="higher runs first (default: 0)")
    add.add_argument(
        "--depends-on",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="run only after task ID is done",
    )
    add.add_argument(
        "--blocks", type=int, action="append", default=[], metavar="ID", help="task ID waits for this one"
    )
    add.set_defaults(func=_command(_do_add))

    listing = commands.add_parser("list", help="list tasks")
    listing.add_argument("--state", choices=STATES)
    listing.set_defaults(func=_command(_do_list))

    show = commands.add_parser("show", help="show one task with its progress")
    show.add_argument("id", type=int)
    show.set_defaults(func=_command(_do_show))

    cancel = commands.add_parser("cancel", help="cancel a task that has not finished")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(func=_command(_do_cancel))

    answer = commands.add_parser("answer", help="answer a needs_you task; its parent is re-queued")
    answer.add_argument("id", type=int)
    answer.add_argument("answer")
    answer.set_defaults(func=_command(_do_answer))


def _command(action: Callable[[Store, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap an action on the store: open it, run the action, report a StoreError with exit 2."""

    def run(args: argparse.Namespace) -> int:
        _cfg, store = open_store(args)
        try:
            with store:
                return action(store, args)
        except StoreError as exc:
            print(f"jada-agent: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _do_add(store: Store, args: argparse.Namespace) -> int:
    task_id = store.add_task(
        args.title,
        args.prompt or args.title,
        priority=args.priority,
        depends_on=args.depends_on,
        blocks=args.blocks,
    )
    print(f"task {task_id} queued")
    return 0


def _do_list(store: Store, args: argparse.Namespace) -> int:
    for task in store.list_tasks(args.state):
        print(format_row(task))
    return 0


def _do_show(store: Store, args: argparse.Namespace) -> int:
    print(format_task(store.get_task(args.id)), end="")
    return 0


def _do_cancel(store: Store, args: argparse.Namespace) -> int:
    store.cancel_task(args.id)
    print(f"task {args.id} cancelled")
    return 0


def _do_answer(store: Store, args: argparse.Namespace) -> int:
    task = store.get_task(args.id)
    store.answer_task(args.id, args.answer)
    if task.question is not None and task.parent_id is not None:
        print(f"task {args.id} answered; task {task.parent_id} re-queued")
    else:
        print(f"task {args.id} answered and re-queued")
    return 0


def format_row(task: Task) -> str:
    """Format a task as one line of `task list`."""
    deps = f" after {','.join(map(str, task.depends_on))}" if task.depends_on else ""
    return f"{task.id:>5}  {task.state:<9}  p{task.priority:<3} tries {task.attempts}{deps}  {task.title}"


def format_task(task: Task) -> str:
    """Format a task in full for `task show`."""
    lines = [
        f"task {task.id}: {task.title}",
        f"state: {task.state}" + (f" ({task.reason})" if task.reason else ""),
        f"priority: {task.priority}",
        f"attempts: {task.attempts}",
        f"created: {_iso(task.created_at)}",
    ]
    if task.parent_id is not None:
        lines.append(f"parent: task {task.parent_id}")
    if task.depends_on:
        lines.append("depends on: " + ", ".join(f"task {dep}" for dep in task.depends_on))
    if task.question is not None:
        lines.append(f"question: {task.question}")
    if task.answer is not None:
        lines.append(f"answer: {task.answer}")
    lines.append("prompt:")
    lines.extend(f"  {line}" for line in task.prompt.splitlines())
    if task.progress:
        lines.append("progress:")
        lines.extend(f"  {line}" for line in task.progress.splitlines())
    return "\n".join(lines) + "\n"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
