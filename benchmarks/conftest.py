"""Benchmarks are opt-in: ``pytest benchmarks -m benchmark`` (see BENCHMARKS.md)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.benchmark)
