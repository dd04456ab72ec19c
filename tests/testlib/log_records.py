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
def log_records(logger_names: Sequence[str], level: int = logging.WARNING) -> Iterator[LogRecords]:
    """Within the block, the messages of `level` and above logged to `logger_names` (their filters still apply) are
    collected. The loggers are set to `level` meanwhile: an earlier test in the same process may have raised one
    (examples set TensorFlow's logger to ERROR), which would make an absent message prove nothing."""
    handler = LogRecords()
    loggers = [logging.getLogger(name) for name in logger_names]
    saved = [(logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.disabled = False
    try:
        yield handler
    finally:
        for logger, (old_level, disabled) in zip(loggers, saved):
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.disabled = disabled
