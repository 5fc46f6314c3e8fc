"""Regenerate ``buses.csv`` and ``lines.csv`` from pandapower's ``case33bw``.

pandapower's ``case33bw`` is a conversion of MATPOWER's ``case33bw.m`` (Baran & Wu 1989).
Run from the repository root: ``.venv/bin/python data/ieee33/make_ieee33.py``.
Buses are renumbered 1..33 as in Baran & Wu (pandapower uses 0..32).

``rating_a`` (ampacity [A]) is **an assumption**, not Baran & Wu data (neither the paper nor
MATPOWER/pandapower carry ratings; see README.md): every line is given the smallest overhead
conductor class of :data:`CONDUCTOR_CLASSES_A` whose ampacity is at least
:data:`PLANNING_MARGIN` × its current in the nominal-load AC power flow (Baran & Wu's
3715 kW + j2300 kvar, substation at 1.0 p.u.); the normally open tie lines get the smallest class.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandapower.networks as pn
import pandas as pd

HERE = Path(__file__).resolve().parent

CONDUCTOR_CLASSES_A = {  # ACSR code word (size): typical ampacity [A] (75 °C conductor, 25 °C
    "Swan (#4 AWG)": 140,     # ambient, 0.6 m/s wind, sun; manufacturers' ACSR tables)
    "Sparrow (#2 AWG)": 184,
    "Raven (1/0 AWG)": 242,
    "Quail (2/0 AWG)": 276,
    "Pigeon (3/0 AWG)": 315,
    "Penguin (4/0 AWG)": 357,
    "Linnet (336.4 kcmil)": 529,
}
PLANNING_MARGIN = 1.25
"""Each line carries at most 1/1.25 = 80 % of its ampacity at the nominal (peak) load."""


def ratings_a(net) -> list[float]:
    """Ampacity of every line of ``case33bw`` by the rule of the module docstring [A]."""
    import pandapower as pp

    pp.runpp(net, numba=False, calculate_voltage_angles=True)
    classes = sorted(CONDUCTOR_CLASSES_A.values())
    out = []
    for k in net.line.index:
        if not net.line.at[k, "in_service"]:
            out.append(float(classes[0]))
            continue
        need = PLANNING_MARGIN * net.res_line.at[k, "i_ka"] * 1e3
        fits = [c for c in classes if c >= need]
        if not fits:
            raise RuntimeError(f"line {k}: {need:.0f} A needed, above every conductor class")
        out.append(float(fits[0]))
    return out


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
        "rating_a": ratings_a(pn.case33bw()),
    })
    buses.to_csv(HERE / "buses.csv", index=False)
    lines.to_csv(HERE / "lines.csv", index=False)
    print(f"wrote {len(buses)} buses and {len(lines)} lines to {HERE}")


if __name__ == "__main__":
    main()
