"""The CLI's `--verbose`: orchestrator's log records on stderr, secrets removed.

Only the `orchestrator` logger gets the handler: the HTTP layers' own loggers (openai, httpx)
stay as the application left them, since they may print request options.
"""

from __future__ import annotations

import logging
import sys

from ..errors import redact

LOGGER = "orchestrator"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then removes anything that looks like (or is known to be) a key:
    an endpoint's error text may echo the key it was sent."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time, so a live view that redirects stderr
    (rich's) shows log lines above itself instead of being torn by them."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def verbose(level: int) -> logging.Handler | None:
    """`-v` (1): INFO and above on stderr; `-vv` (2 or more): DEBUG. 0: nothing is attached.
    The handler attached, so a caller (a test) can remove it again."""
    if level <= 0:
        return None
    logger = logging.getLogger(LOGGER)
    handler = StderrHandler()
    handler.setFormatter(RedactingFormatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if level >= 2 else logging.INFO)
    return handler
