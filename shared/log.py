"""Structured JSON logging via structlog, configured once per process."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """Send JSON lines to stderr and return a logger bound to ``service``."""
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    # Third-party libraries log through stdlib logging: keep them to warnings and above.
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=max(lvl, logging.WARNING), force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return structlog.get_logger().bind(service=service)
