"""structlog set-up shared by every process: JSON lines off a terminal, readable lines on one."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(component: str, level: str | None = None) -> None:
    level_name = (level or os.environ.get("NAVARCH_LOG_LEVEL", "info")).upper()
    lvl = getattr(logging, level_name, logging.INFO)
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(message)s")
    renderer = (structlog.dev.ConsoleRenderer(colors=False) if sys.stderr.isatty()
                else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(component=component)
