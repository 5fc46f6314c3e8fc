"""Repository-anchored paths (never absolute, never the current working directory)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
RESULTS = ROOT / "results"
PARAMS = ROOT / "params"
NOTEBOOKS = ROOT / "notebooks"
