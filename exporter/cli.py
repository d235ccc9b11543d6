"""The ``jada-exporter`` command line: Prometheus-style flags, collectors, and the server."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector

from exporter import __version__, journal, rules
from exporter.collector import Collector, ExporterCollector
from exporter.host import HostCollector
from exporter.unit import UnitCollector
from exporter.web import ExporterServer, WebConfig, WebConfigError, load_web_config, parse_listen_address
from orchestrator import log

EXIT_USAGE = 2
# Collector name -> on by default.
COLLECTORS = {"host": True, "unit": True, "journal": True, "lightsail": False}
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}

logger = logging.getLogger(__name__)


class UsageError(Exception):
    """A flag problem, phrased for the person who has to fix it."""


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every flag, the journal collector's included."""
    parser = argparse.ArgumentParser(
        prog="jada-exporter",
        description="The jada-agent sidecar: journald, host, unit and Lightsail as Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"jada-exporter {__version__}")
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default="127.0.0.1:9742",
        help="host:port to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        help="path of the metrics (default: %(default)s)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        help="exporter-toolkit web config: tls_server_config and basic_auth_users",
    )
    parser.add_argument("--log.level", dest="log_level", choices=LOG_LEVELS, default="info")
    for name, default in COLLECTORS.items():
        parser.add_argument(
            f"--collector.{name}",
            dest=f"collector_{name}",
            action=argparse.BooleanOptionalAction,
            default=default,
            help=f"enable the {name} collector (default: {'on' if default else 'off'})",
        )
    parser.add_argument(
        "--unit.name", dest="unit_name", default="jada-agent.service", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--unit.timeout",
        dest="unit_timeout",
        type=float,
        default=5.0,
        help="seconds systemctl may take (default: %(default)s)",
    )
    parser.add_argument(
        "--lightsail.instance-name", dest="lightsail_instance_name", help="Lightsail instance name"
    )
    parser.add_argument("--lightsail.region", dest="lightsail_region", help="AWS region, e.g. us-east-1")
    parser.add_argument(
        "--lightsail.endpoint-url", dest="lightsail_endpoint_url", help="Lightsail API endpoint"
    )
    journal.add_arguments(parser)
    parser.add_argument(
        "--rules.check", dest="rules_check", type=Path, metavar="FILE", help="validate a rules file and exit"
    )
    return parser


def build_collectors(args: argparse.Namespace) -> list[Collector]:
    """Build the collectors the flags switch on, in the order they are scraped."""
    collectors: list[Collector] = []
    if args.collector_journal:
        collectors.append(journal.from_args(args))
    if args.collector_host:
        collectors.append(HostCollector())
    if args.collector_unit:
        collectors.append(UnitCollector(args.unit_name, timeout=args.unit_timeout))
    if args.collector_lightsail:
        from exporter.lightsail import LightsailCollector, make_client

        if not args.lightsail_instance_name or not args.lightsail_region:
            raise UsageError(
                "--collector.lightsail needs --lightsail.instance-name and --lightsail.region "
                "(e.g. --lightsail.instance-name jada-agent --lightsail.region us-east-1)"
            )
        client = make_client(args.lightsail_region, args.lightsail_endpoint_url)
        collectors.append(LightsailCollector(client, args.lightsail_instance_name))
    return collectors


def build_registry(exporter: ExporterCollector) -> CollectorRegistry:
    """Build the registry the server renders: the collectors, self metrics, and the process's own."""
    registry = CollectorRegistry()
    registry.register(exporter)
    ProcessCollector(registry=registry)
    return registry


def check_rules(path: Path) -> int:
    """Validate a rules file as ``promtool check`` does: problems on stderr, exit 1."""
    problems = rules.check_file(path)
    for problem in problems:
        print(f"jada-exporter: {problem}", file=sys.stderr)
    if problems:
        print(f"{path}: FAILED: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: SUCCESS")
    return 0


def setup_logging(level: int) -> None:
    """Send the exporter's logs where the orchestrator's go: journald, else stderr."""
    log.setup("jada-exporter", level)
    package = logging.getLogger("exporter")
    package.handlers = list(log.logger.handlers)
    package.setLevel(level)
    package.propagate = False


def wait_for_stop_signal(serve: Callable[[], None]) -> None:
    """Run ``serve`` on a daemon thread and return once SIGTERM or SIGINT arrives."""
    # Whichever thread the kernel hands a signal to, Python's handler writes a byte to the
    # wakeup socket, and reading it ends the wait. So nothing polls: between scrapes the
    # process sleeps (a poll interval would wake it twice a second for a flag).
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno())
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: None)
    try:
        threading.Thread(target=serve, daemon=True).start()
        reader.recv(1)
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter until SIGTERM or SIGINT and return the exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(LOG_LEVELS[args.log_level])
    if args.rules_check:
        return check_rules(args.rules_check)
    try:
        web_config = load_web_config(args.web_config_file) if args.web_config_file else WebConfig()
        address = parse_listen_address(args.listen_address)
        collectors = build_collectors(args)
    except (UsageError, WebConfigError, rules.RulesError, ValueError) as exc:
        print(f"jada-exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    exporter = ExporterCollector(collectors)
    try:
        server = ExporterServer(
            address, build_registry(exporter), web_config, args.telemetry_path, args.web_config_file or ""
        )
    except OSError as exc:
        print(f"jada-exporter: cannot listen on {args.listen_address}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    logger.info("jada-exporter %s listening on %s", __version__, server.url)
    wait_for_stop_signal(lambda: server.serve_forever(poll_interval=None))
    exporter.close()
    server.server_close()
    logger.info("jada-exporter stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
