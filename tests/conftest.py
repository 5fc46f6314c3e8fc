"""Shared fixtures: the IEEE 33-bus feeder and a 24-hour load shape."""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

import evsched

# CI runs the property tests derandomised (same examples every run: no flaky red CI);
# locally hypothesis explores new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def ieee33():
    return evsched.load_ieee33()


@pytest.fixture(scope="session")
def daily_shape():
    """A 24-h load multiplier (minimum 0.66 at 04:00, peak 1.00 at 09:00 and ≈0.97 at 20:00)."""
    from evsched.profiles import synthetic_daily_shape
    return synthetic_daily_shape(24)
