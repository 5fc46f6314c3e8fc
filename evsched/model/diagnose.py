"""Locate why an OPF is infeasible: re-solve with elastic (penalised-slack) limits.

The voltage band and the storage energy envelopes are the families that typically make a
scheduling OPF infeasible. Each is replaced by an elastic version::

    v ≥ V_min² − σ⁻,   v ≤ V_max² + σ⁺,   E ≥ E_min − ε⁻,   E ≤ E_max + ε⁺,   σ, ε ≥ 0

and Σσ + Σε is minimised. Non-zero slacks name the family, hours, buses or stations
that bind. If even the elastic model is infeasible, the remaining hard families (power
bounds of devices, balance) are inconsistent.
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np

from evsched.model import constraints as fam

SLACK_TOL = 1e-6


def _elastic(m) -> dict:
    """The elastic slacks of model ``m`` by family label (created on first use)."""
    return m.__dict__.setdefault("elastic", {})


def _elastic_voltage_limits(m):
    keep = m.nonslack
    lo = cp.Variable((len(keep), m.T), nonneg=True)
    hi = cp.Variable((len(keep), m.T), nonneg=True)
    _elastic(m)["voltage_limits (lower, v_pu ≥ v_min)"] = (lo, m.network.bus_ids[keep], "bus")
    _elastic(m)["voltage_limits (upper, v_pu ≤ v_max)"] = (hi, m.network.bus_ids[keep], "bus")
    return [m.v[keep] >= m.v_min_pu ** 2 - lo, m.v[keep] <= m.v_max_pu ** 2 + hi]


def _elastic_storage_energy(m):
    cons = []
    for g in m.storage_vars.values():
        E = fam.storage_energy_expression(m, g)
        n = g["group"].n
        lo = cp.Variable((n, m.T), nonneg=True)
        hi = cp.Variable((n, m.T), nonneg=True)
        labels = [f"{g['name']}[{i}] at bus {b}" for i, b in enumerate(g["group"].buses)]
        _elastic(m)[f"storage_energy (lower, E ≥ E_min) of '{g['name']}'"] = (lo, labels, "station")
        _elastic(m)[f"storage_energy (upper, E ≤ E_max) of '{g['name']}'"] = (hi, labels, "station")
        cons += [E >= m.data(f"{g['name']}.e_min") - lo, E <= m.data(f"{g['name']}.e_max") + hi]
    return cons


def locate_infeasibility(model, solver: str) -> str:
    """Human-readable account of which family, hours and buses/stations make ``model`` infeasible."""
    from evsched.model.builder import OPFModel

    families = dict(model.families)
    families["voltage_limits"] = _elastic_voltage_limits
    families["storage_energy"] = _elastic_storage_energy
    probe = OPFModel(model.network, model.load_p_kw, model.load_q_kvar, list(model.groups.values()),
                     v_min_pu=model.v_min_pu, v_max_pu=model.v_max_pu, v_slack_pu=model.v_slack_pu,
                     dt_h=model.dt_h, hours=model.hours, construction="constant", families=families,
                     count_converter_losses=model.count_converter_losses)
    slacks = _elastic(probe)
    penalty = cp.sum(cp.hstack([cp.sum(s) for s, _, _ in slacks.values()])) if slacks else 0
    elastic = cp.Problem(cp.Minimize(1e4 * penalty + probe.loss_pu), probe.problem.constraints)
    try:
        elastic.solve(solver=solver)
    except cp.SolverError as exc:
        return f"Diagnosis failed: the elastic re-solve raised {exc}."
    if elastic.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return ("Infeasible even with the voltage band and energy envelopes relaxed: the hard "
                "families (nodal_power_balance with device power bounds, apparent_power_limits, "
                "storage_power_limits) are inconsistent, e.g. an energy need that cannot be met "
                "at the charger ratings.")
    parts = []
    for family, (slack, labels, kind) in slacks.items():
        val = np.asarray(slack.value)
        bad = np.argwhere(val > SLACK_TOL)
        if len(bad) == 0:
            continue
        hours = sorted({int(model.hours[t]) for _, t in bad})
        severity = val.max(axis=1)
        order = [i for i in np.argsort(-severity, kind="stable") if severity[i] > SLACK_TOL]
        where = [str(labels[i]) for i in order]
        i_w, t_w = np.unravel_index(int(np.argmax(val)), val.shape)
        parts.append(f"{family} binds at hour(s) {hours} for {len(where)} {kind}(s), worst first "
                     f"{where[:12]}" + (" …" if len(where) > 12 else "")
                     + f"; largest violation {float(val.max()):.3g} p.u. at {kind} {labels[i_w]}, "
                     f"hour {int(model.hours[t_w])}")
    if not parts:
        return "The elastic re-solve needed no slack: the original failure is numerical; try another solver."
    return "Infeasible because: " + "; ".join(parts) + "."
