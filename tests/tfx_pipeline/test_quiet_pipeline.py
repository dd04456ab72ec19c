"""Issue 33, point 8: a pipeline run drops its known-harmless warnings, listed in one place with why; any other
warning still shows."""

import argparse
import logging

import pytest
from absl import logging as absl_logging
from testlib.log_records import log_records

from tfx_pipeline import cli


@pytest.fixture
def records():
    """Captures the absl and tensorflow loggers' records; removes the filters the test installs."""
    loggers = [logging.getLogger(name) for name in ("absl", "tensorflow")]
    filters = {logger.name: list(logger.filters) for logger in loggers}
    for logger in loggers:  # an in-process CLI run earlier in this worker may have installed the filter already
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, cli._DropHarmlessWarnings)]
    with log_records([logger.name for logger in loggers]) as handler:
        yield handler
    for logger in loggers:
        logger.filters[:] = filters[logger.name]


def test_each_harmless_warning_says_why():
    for logger, text, why in cli.HARMLESS_WARNINGS:
        assert logger in ("absl", "tensorflow") and text and len(why) > 40, (logger, text)


def _log_the_known_and_one_other():
    import tensorflow as tf

    absl_logging.warning("ArtifactQuery.property_predicate is not supported.")
    absl_logging.warning("Tables initialized inside a tf.function  will be re-initialized on every invocation")
    tf.compat.v1.logging.warning("SavedModel saved prior to TF 2.5 detected when loading Keras model.")
    absl_logging.warning("Something new about this run")


def test_quiet_logs_drops_exactly_the_listed_warnings(records):
    cli.quiet_logs(argparse.Namespace(verbose=False), argv=[])
    cli.quiet_logs(argparse.Namespace(verbose=False), argv=[])  # twice: one filter per logger
    assert sum(isinstance(f, cli._DropHarmlessWarnings) for f in logging.getLogger("absl").filters) == 1
    _log_the_known_and_one_other()
    assert records.messages == ["Something new about this run"]


def test_verbose_keeps_every_warning(records):
    cli.quiet_logs(argparse.Namespace(verbose=True), argv=[])
    _log_the_known_and_one_other()
    assert len(records.messages) == 4


def test_a_verbose_run_after_a_quiet_one_in_the_same_process_sees_every_warning(records):
    cli.quiet_logs(argparse.Namespace(verbose=False), argv=[])
    cli.quiet_logs(argparse.Namespace(verbose=True), argv=[])
    assert not any(isinstance(f, cli._DropHarmlessWarnings) for f in logging.getLogger("absl").filters)
    _log_the_known_and_one_other()
    assert len(records.messages) == 4
