"""A `logging` handler that keeps the messages it gets, for tests that assert what a library logged."""

import contextlib
import logging
from typing import Iterator, Sequence


class LogRecords(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def log_records(logger_names: Sequence[str]) -> Iterator[LogRecords]:
    """Within the block, the messages logged to `logger_names` (their filters still apply) are collected."""
    handler = LogRecords()
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
