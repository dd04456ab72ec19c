"""Shared test helpers (importable as ``testlib``: pytest.ini puts ``tests/`` on the path)."""

from testlib.harness import run_layer_test, run_model_test

__all__ = ["run_layer_test", "run_model_test"]
