"""The ``jada-agent`` command line.

Each command lives in the module of its concern, which provides ``add_parser(subparsers)``
and sets ``func`` (taking the parsed arguments, returning the exit code) as a default.
Those modules import nothing heavy at module level: the daemon must stay lean.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from orchestrator import __version__, config

# Command name -> module that registers it, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "orchestrator.daemon",
    "orchestrator.taskcli",
    "orchestrator.status",
    "orchestrator.session",
    "orchestrator.scheduler",
    "orchestrator.reauth",
    "orchestrator.doctor",
)

EXIT_USAGE = 2


def load_config(args: argparse.Namespace) -> config.Config:
    """Load the config named by ``--config``; on error print it and exit 2."""
    try:
        return config.load(args.config)
    except config.ConfigError as exc:
        print(f"jada-agent: config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every command's subparser."""
    parser = argparse.ArgumentParser(
        prog="jada-agent",
        description="An autonomous Claude agent daemon under hard budgets.",
    )
    parser.add_argument("--version", action="version", version=f"jada-agent {__version__}")
    parser.add_argument(
        "--config",
        default=os.environ.get("JADA_AGENT_CONFIG", str(config.DEFAULT_PATH)),
        help="TOML config file (default: %(default)s; env JADA_AGENT_CONFIG)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
