"""Shared test configuration.

The Monte Carlo files are marked ``slow`` (``python -m pytest -m "not slow"``
skips them while iterating; CI runs everything).
"""

from __future__ import annotations

import pytest

SLOW_FILES = {"test_coverage.py", "test_experiments.py", "test_simulate.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
