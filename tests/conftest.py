"""Shared test configuration.

The Monte Carlo files are marked ``slow`` (``python -m pytest -m "not slow"``
skips them while iterating; CI runs everything). The property suite runs under
a derandomized hypothesis profile, so CI runs are reproducible.
"""

from __future__ import annotations

import os

import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property suite is skipped without hypothesis (a test extra)
    pass
else:
    # "ci" (the default): the same examples on every run and machine, no example
    # database written; "dev": random examples, for looking for new failures
    settings.register_profile(
        "ci", derandomize=True, database=None, deadline=None, max_examples=12,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", deadline=None, max_examples=60)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SLOW_FILES = {"test_coverage.py", "test_experiments.py", "test_simulate.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
