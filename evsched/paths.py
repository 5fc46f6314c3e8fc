"""Repository-anchored paths (never absolute, never the current working directory)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
RESULTS = ROOT / "results"
PARAMS = ROOT / "params"
NOTEBOOKS = ROOT / "notebooks"


def rel(path) -> str:
    """``path`` relative to the repository root for messages (unchanged if it lies outside)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)

RUN_CACHE_ENV = "EVSCHED_RUN_CACHE"
"""Environment variable naming the folder where one batch run (:mod:`evsched.run_study`) keeps
results that several notebooks need, e.g. the day-ahead forecast (unset: nothing is cached)."""
