"""Rebuild ``simbench_2016_15min.csv.gz`` from the installed ``simbench`` package.

Run from anywhere with the project's Python::

    .venv/bin/python data/profiles/make_extract.py

What it does (and nothing else):

1. reads SimBench's complete data set, scenario 0 (``simbench.get_all_simbench_profiles(0)``:
   the profiles behind every SimBench grid, 2016, 15-minute steps);
2. keeps the ``time`` column unchanged (local wall-clock labels ``dd.mm.yyyy HH:MM``,
   Europe/Berlin, with the daylight-saving anomalies of the source: 27.03 02:00-02:45 absent,
   30.10 02:00-02:45 present twice) and the columns listed in :data:`LOAD_COLUMNS` and
   :data:`RES_COLUMNS`, in that order, with their SimBench names and values unchanged;
3. writes them as gzip-compressed CSV (``;``-free, comma separated, ``.`` decimal, values
   printed with Python's shortest round-trip repr so they read back bit-identical; the gzip
   header carries no timestamp, so a rebuild at the same path is byte-identical).

SimBench data are licensed under ODbL 1.0; see README.md in this folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
EXTRACT = HERE / "simbench_2016_15min.csv.gz"
SCENARIO = 0

#: SimBench load profiles (active power, p.u. of the load's rated power) kept in the extract.
LOAD_COLUMNS = [
    "H0-A_pload", "H0-B_pload", "H0-C_pload",              # households
    "G0-A_pload", "G1-A_pload", "G3-A_pload", "G4-A_pload",  # commercial
]
#: SimBench renewable feed-in profiles (p.u. of installed capacity) kept in the extract.
RES_COLUMNS = ["PV3", "PV6", "WP4", "WP8"]


def build_extract() -> pd.DataFrame:
    """Return the extract as a DataFrame (``time`` + :data:`LOAD_COLUMNS` + :data:`RES_COLUMNS`)."""
    import simbench

    profiles = simbench.get_all_simbench_profiles(SCENARIO)
    load, res = profiles["load"], profiles["renewables"]
    if not load["time"].equals(res["time"]):
        raise RuntimeError("simbench load and renewables profiles have different time columns")
    return pd.concat([load[["time"] + LOAD_COLUMNS], res[RES_COLUMNS]], axis=1)


def write_extract(df: pd.DataFrame, path: Path = EXTRACT) -> Path:
    """Write the extract deterministically (gzip without timestamp, repr floats)."""
    df.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0, "compresslevel": 9})
    return path


def main() -> int:
    import simbench

    df = build_extract()
    path = write_extract(df)
    print(f"wrote {path.relative_to(HERE.parent.parent)}: {len(df)} rows x {df.shape[1]} columns, "
          f"{path.stat().st_size / 1e6:.2f} MB, simbench {simbench.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
