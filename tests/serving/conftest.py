"""Fixtures for the serving tests: built SavedModels and running ModelServers on 127.0.0.1, free ports."""

import os
import shutil
import sys

import pytest

# Test modules here import the shared helpers as `serving_testlib` (this folder is not a package).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serving_testlib import (  # noqa: E402
    HALF_PLUS_TWO_VERSION,
    MODEL_NAME,
    build_half_plus_two,
    build_text_classifier,
    stubs,
)

from serving.server import ModelServer  # noqa: E402


@pytest.fixture(scope="session")
def half_plus_two_template(tmp_path_factory):
    """A built half_plus_two SavedModel directory (session-wide; copy it, never write into it)."""
    return build_half_plus_two(tmp_path_factory.mktemp("templates") / "half_plus_two")


@pytest.fixture(scope="session")
def half_plus_three_template(tmp_path_factory):
    """Same signatures as half_plus_two but y = 0.5x + 3, to tell versions apart."""
    return build_half_plus_two(tmp_path_factory.mktemp("templates") / "half_plus_three", b=3.0)


@pytest.fixture
def model_base(tmp_path, half_plus_two_template):
    """A model base path holding half_plus_two as version 00000123."""
    base = tmp_path / MODEL_NAME
    shutil.copytree(half_plus_two_template, base / f"{HALF_PLUS_TWO_VERSION:08d}")
    return str(base)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One half_plus_two server (gRPC + REST + Prometheus) shared by a test module's read-only tests."""
    base = tmp_path_factory.mktemp("shared") / MODEL_NAME
    build_half_plus_two(base / f"{HALF_PLUS_TWO_VERSION:08d}")
    server = ModelServer(model_base_path=str(base), model_name=MODEL_NAME,
                         prometheus_path="/monitoring/prometheus/metrics", file_system_poll_wait_seconds=0)
    with server:
        yield server


@pytest.fixture(scope="module")
def grpc_stubs(shared_server):
    prediction, model, channel = stubs(shared_server)
    yield prediction, model
    channel.close()


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    """A server for a raw-text classifier (DT_STRING text and serialized tf.Example inputs)."""
    base = tmp_path_factory.mktemp("text") / "text_classifier"
    build_text_classifier(base / "1")
    with ModelServer(model_base_path=str(base), model_name="text_classifier",
                     file_system_poll_wait_seconds=0) as server:
        yield server
