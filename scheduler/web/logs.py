"""Logging for `cohort serve`: uvicorn's loggers with feed tokens redacted from every line."""

from __future__ import annotations

import logging
from typing import Any

from scheduler.outputs.links import redact_feed_path


class RedactFeedTokens(logging.Filter):
    """Rewrite ``/feeds/<token>`` to ``/feeds/[redacted]`` in a record's message and arguments
    (uvicorn's access log passes the request path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_feed_path(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_feed_path(a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_feed_path(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn whose every handler redacts feed tokens."""
    redact = {"redact": {"()": RedactFeedTokens}}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": redact,
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "access": {
                "format": '%(asctime)s access %(client_addr)s "%(request_line)s" %(status_code)s',
                "()": "uvicorn.logging.AccessFormatter",
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "scheduler": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
