"""The pip lock file and environment.yml pin the same versions."""
from __future__ import annotations

import re

import yaml

from evsched.paths import ROOT


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_lock_pins_everything_exactly():
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line.strip()), line


def test_environment_yml_agrees_with_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    lock = _lock()
    pinned = [p for p in pip_section if "==" in p]
    assert len(pinned) >= 15
    for spec in pinned:
        name, version = spec.split("==")
        assert lock.get(name.lower()) == version, f"environment.yml pins {spec}, lock has {lock.get(name.lower())}"
    assert "-r requirements.lock" in pip_section
    assert "python=3.11" in env["dependencies"]


def test_installed_versions_match_lock():
    from importlib.metadata import version
    lock = _lock()
    for pkg in ("numpy", "pandas", "cvxpy", "clarabel", "pandapower", "plotly", "papermill"):
        assert version(pkg) == lock[pkg], pkg
