"""Logging to journald with structured fields, or to stderr where there is no journal.

Every event is one readable line for a person (``[session] task 7 session 12 exited:
max_turns after 30 turns (exit code 1)``) plus ``JADA_*`` fields for machines, which the
sidecar exporter reads before it falls back to regular expressions on MESSAGE.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
IDENTIFIER = "jada-agent"

logger = logging.getLogger("jada-agent")


def journal_available(socket: Path | None = None) -> bool:
    """Tell whether a journald socket is there to write to."""
    path = socket or Path(os.environ.get("JADA_JOURNAL_SOCKET", JOURNAL_SOCKET))
    return path.is_socket()


class _StderrFormatter(logging.Formatter):
    """Print the message, then the structured fields a journal would have kept."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.getMessage()}"
        fields = getattr(record, "jada_fields", {})
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return line


class _JournalHandler(logging.Handler):
    """Send each record to journald with its JADA_* fields and a syslog priority."""

    _PRIORITY = {
        logging.CRITICAL: 2,
        logging.ERROR: 3,
        logging.WARNING: 4,
        logging.INFO: 6,
        logging.DEBUG: 7,
    }

    def __init__(self, identifier: str) -> None:
        super().__init__()
        from systemd import journal

        self._send = journal.send
        self._identifier = identifier

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = getattr(record, "jada_fields", {})
            self._send(
                record.getMessage(),
                PRIORITY=str(self._PRIORITY.get(record.levelno, 6)),
                SYSLOG_IDENTIFIER=self._identifier,
                **{k: str(v) for k, v in fields.items()},
            )
        except Exception:
            self.handleError(record)


def setup(identifier: str = IDENTIFIER, level: int = logging.INFO, stream: Any = None) -> None:
    """Route the jada-agent logger to journald when it is there, else to stderr."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    if stream is None and journal_available():
        handler: logging.Handler = _JournalHandler(identifier)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(_StderrFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def event(message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message`` with structured fields; ``event="x"`` becomes ``JADA_EVENT=x``."""
    jada_fields = {f"JADA_{key.upper()}": value for key, value in fields.items() if value is not None}
    logger.log(level, message, extra={"jada_fields": jada_fields})
