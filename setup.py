"""A shim for tools that still run setup.py: the package's metadata lives in pyproject.toml."""

from setuptools import setup

setup()
