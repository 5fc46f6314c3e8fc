"""Regenerate ``buses.csv`` and ``lines.csv`` from pandapower's ``case33bw``.

pandapower's ``case33bw`` is a conversion of MATPOWER's ``case33bw.m`` (Baran & Wu 1989).
Run from the repository root: ``.venv/bin/python data/ieee33/make_ieee33.py``.
Buses are renumbered 1..33 as in Baran & Wu (pandapower uses 0..32).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandapower.networks as pn
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    net = pn.case33bw()
    loads = net.load.groupby("bus")[["p_mw", "q_mvar"]].sum()
    coords = net.bus["geo"].map(lambda g: json.loads(g)["coordinates"])
    slack = set(net.ext_grid.bus)
    buses = pd.DataFrame({
        "bus": net.bus.index + 1,
        "type": ["slack" if b in slack else "pq" for b in net.bus.index],
        "vn_kv": net.bus.vn_kv.values,
        "p_kw": (loads.p_mw.reindex(net.bus.index).fillna(0.0) * 1e3).round(6).values,
        "q_kvar": (loads.q_mvar.reindex(net.bus.index).fillna(0.0) * 1e3).round(6).values,
        "x": [round(c[0], 6) for c in coords],
        "y": [round(c[1], 6) for c in coords],
    })
    lines = pd.DataFrame({
        "line": range(1, len(net.line) + 1),
        "from_bus": net.line.from_bus.values + 1,
        "to_bus": net.line.to_bus.values + 1,
        "r_ohm": (net.line.r_ohm_per_km * net.line.length_km).round(6).values,
        "x_ohm": (net.line.x_ohm_per_km * net.line.length_km).round(6).values,
        "in_service": net.line.in_service.values,
    })
    buses.to_csv(HERE / "buses.csv", index=False)
    lines.to_csv(HERE / "lines.csv", index=False)
    print(f"wrote {len(buses)} buses and {len(lines)} lines to {HERE}")


if __name__ == "__main__":
    main()
