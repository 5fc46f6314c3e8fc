"""The optimiser's result object: tidy frames in kW / kvar / p.u., the relaxation gap, metadata."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evsched.frames import FlowFrames, tidy
from evsched.sessions import hour_label


@dataclass
class OPFResult(FlowFrames):
    """Tidy results of one OPF solve.

    Attributes
    ----------
    voltages : ``hour, bus, v_pu`` (magnitude, √v)
    branches : ``hour, from_bus, to_bus, p_kw, q_kvar, loss_kw, loading_pct`` (sending-end
        flows, loss ``r·ℓ``, loading ``100 · √ℓ · I_base / I_max`` [%] against the model's
        ``branch_rating_a``; NaN for an unrated branch)
    dispatch : ``hour, bus, device, name, p_kw, q_kvar`` for every controllable device
        (load convention; ``device`` is the group's kind, ``name`` the group's name)
    storage : ``hour, name, index, bus, energy_kwh, p_charge_kw, p_discharge_kw``
    relaxation_gap : ``hour, from_bus, to_bus, gap_pu2`` = ``ℓ·v_i − P² − Q²`` [p.u.²]
    net_demand : ``hour, bus, p_kw, q_kvar`` total net demand per bus (base load + devices)
    solver, status : solver name and cvxpy status
    solve_seconds : wall time of the solve call [s]; ``solver_seconds`` the solver's own time
    """

    voltages: pd.DataFrame
    branches: pd.DataFrame
    dispatch: pd.DataFrame
    storage: pd.DataFrame
    relaxation_gap: pd.DataFrame
    net_demand: pd.DataFrame
    objective: float
    solver: str
    status: str
    solve_seconds: float
    solver_seconds: float
    dt_h: float = 1.0
    max_relaxation_gap: float = 0.0
    max_relaxation_gap_rel: float = 0.0
    gap_tol_rel: float = 1e-5
    meta: dict = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """True if every cone is tight: relative gap ≤ ``gap_tol_rel``."""
        return bool(self.max_relaxation_gap_rel <= self.gap_tol_rel)

    def loose_cones(self) -> pd.DataFrame:
        """Rows of :attr:`relaxation_gap` whose relative gap exceeds the tolerance, largest
        first, with ``gap_rel`` = gap / max (P² + Q²)."""
        g = self.relaxation_gap.assign(gap_rel=self.relaxation_gap["gap_pu2"].abs() / self.meta["gap_scale"])
        return g[g["gap_rel"] > self.gap_tol_rel].sort_values("gap_rel", ascending=False, kind="stable")

    def inexactness_report(self) -> str:
        """Plain-text account of where the relaxation is loose and what to try."""
        loose = self.loose_cones()
        if loose.empty:
            return f"the relaxation is exact (max relative gap {self.max_relaxation_gap_rel:.1e})"
        hours = [hour_label(h) for h in sorted(loose["hour"].unique())]
        branches = list(dict.fromkeys(f"{int(a)}-{int(b)}" for a, b in zip(loose["from_bus"], loose["to_bus"])))
        return (f"the SOC relaxation is not exact (max relative cone gap {self.max_relaxation_gap_rel:.3g} "
                f"> {self.gap_tol_rel:g}) on {len(loose)} branch-hour(s): hours {hours}, branches "
                f"{branches[:12]}{' …' if len(branches) > 12 else ''}. Its 'loss' includes fictitious "
                "currents that burn surplus power, so this is not a physical optimum. This happens when "
                "must-take generation pushes reverse flow against the upper voltage limit; try "
                "curtail_renewables: true (priced curtailment), smaller PV/WT capacities, a higher "
                "v_max_pu or a lower v_slack_pu.")



def build_result(m, solver: str, status: str, wall_s: float, solver_s: float,
                 gap_tol_rel: float = 1e-5) -> OPFResult:
    """Read the solved cvxpy variables of ``m`` (an OPFModel) into an :class:`OPFResult`."""
    net, sb, hours = m.network, m.s_base, m.hours
    ids = net.bus_ids
    P, Q, L, V = m.P.value, m.Q.value, m.l.value, m.v.value
    V = np.maximum(V, 0.0)
    f_ids, t_ids = ids[net.branch_from], ids[net.branch_to]
    voltages = tidy(np.sqrt(V), hours, {"bus": ids}, "v_pu")
    br = tidy(P * sb, hours, {"from_bus": f_ids, "to_bus": t_ids}, "p_kw")
    br["q_kvar"] = (Q * sb).T.ravel()
    br["loss_kw"] = (net.r_pu[:, None] * L * sb).T.ravel()
    br["loading_pct"] = (100.0 * np.sqrt(np.maximum(L, 0.0)) * net.i_base_a / m.branch_rating_a).T.ravel()
    v_from = V[net.branch_from]
    gap = L * v_from - P ** 2 - Q ** 2
    scale = max(float(np.max(P ** 2 + Q ** 2)), 1e-12)
    gap_df = tidy(gap, hours, {"from_bus": f_ids, "to_bus": t_ids}, "gap_pu2")

    d_p = m.load_p_kw.copy()
    d_q = m.load_q_kvar.copy()
    rows, srows = [], []
    for g in list(m.device_vars.values()) + list(m.storage_vars.values()):
        grp = g["group"]
        p = np.asarray(g["p_net"].value) * sb
        q = np.zeros_like(p) if g["q"] is None else g["q"].value * sb
        bidx = net.bus_index(grp.buses)
        np.add.at(d_p, bidx, p)
        np.add.at(d_q, bidx, q)
        df = tidy(p, hours, {"bus": grp.buses, "device": [grp.kind] * grp.n,
                              "name": [g["name"]] * grp.n}, "p_kw")
        df["q_kvar"] = q.T.ravel()
        rows.append(df)
        if "p_ch" in g:
            from evsched.model.constraints import storage_energy_expression
            E = (storage_energy_expression(m, g).value * sb) + grp.energy_initial_kwh[:, None]
            s = tidy(E, hours, {"name": [g["name"]] * grp.n, "index": np.arange(grp.n),
                                 "bus": grp.buses}, "energy_kwh")
            s["p_charge_kw"] = (g["p_ch"].value * sb).T.ravel()
            s["p_discharge_kw"] = (g["p_dis"].value * sb).T.ravel()
            srows.append(s)
    dispatch = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["hour", "bus", "device", "name", "p_kw", "q_kvar"])
    storage = pd.concat(srows, ignore_index=True) if srows else pd.DataFrame(
        columns=["hour", "name", "index", "bus", "energy_kwh", "p_charge_kw", "p_discharge_kw"])
    nd = tidy(d_p, hours, {"bus": ids}, "p_kw")
    nd["q_kvar"] = d_q.T.ravel()
    return OPFResult(
        voltages=voltages, branches=br, dispatch=dispatch, storage=storage,
        relaxation_gap=gap_df, net_demand=nd, objective=float(m.problem.value),
        solver=solver, status=status, solve_seconds=wall_s, solver_seconds=solver_s,
        dt_h=m.dt_h, max_relaxation_gap=float(np.max(np.abs(gap))),
        max_relaxation_gap_rel=float(np.max(np.abs(gap)) / scale), gap_tol_rel=gap_tol_rel,
        meta={"bus_ids": ids, "gap_scale": scale, "construction": m.construction, "network": net.name,
              "v_min_pu": m.v_min_pu, "v_max_pu": m.v_max_pu, "v_slack_pu": m.v_slack_pu})
