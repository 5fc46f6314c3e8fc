r"""What the EVs and inverters physically do with a dispatch, and the metrics of the executed day.

Grid of the execution
---------------------
Each reservation is executed on the absolute 48-hour grid of
:func:`evsched.disaggregation.verify` (today 0..23, the next morning 24..47), with its
*realised* presence :math:`f'_{i,j}` (:func:`evsched.sessions.stay_presence` of the realised
stay; 0 for a no-show). The battery energy :math:`E_{i,j}` is integrated from :math:`E_a`
without a break at midnight; the network sees hour ``j mod 24`` (the representative day, as
in the study). A schedule given per session (rows of a :class:`~evsched.sessions.Sessions`) is
placed on this grid by :func:`rows_to_48` (first session → hours 0..23, morning session →
24..47).

Execution of a planned schedule (:func:`execute`), per EV and hour, in this order
------------------------------------------------------------------------------------
1. **presence and rating** (late arrival, early departure): :math:`p^{ch} \le f' P^{ch}`,
   :math:`p^{dis} \le f' P^{dis}`, and if :math:`p^{ch} + p^{dis} > f' P` both are scaled down;
2. **battery limits** (the charger's BMS): :math:`p^{ch} \le (E_{ceil} - E)/\eta`,
   :math:`p^{dis} \le (E - E_{floor})\,\eta`;
3. optional **deadline guard** (``guard=True``; the ``robust`` policy): the charger never lets
   the EV fall behind what it still must receive at full power,
   :math:`\eta p^{ch} - p^{dis}/\eta \ge E_{obl} - E - \eta P^{ch} c^{rem}_j` with
   :math:`c^{rem}_j = \sum_{j' > j} f'_{j'}` — first by cutting the discharge, then by raising
   the charge (within rating and ceiling). It guarantees the obligation of every showing EV;
   it is the only local rule, no optimisation.

Reactive power is clipped to the charger's circle, :math:`|q| \le \sqrt{(f' S)^2 - p^2}`; PV
and WT deliver their realised availability (or their planned output if that was curtailed,
whichever is smaller) and their reactive set-point clipped to :math:`\sqrt{S^2 - p^2}`.

Metrics of an executed day (:func:`day_metrics`)
------------------------------------------------
=============================  ====================================================================
``loss_kwh``                   network loss of the AC power flow of the executed day
                               (:mod:`evsched.uncertainty.acflow`) [kWh]
``converter_loss_kwh``         :math:`\sum ((1-\eta)p^{ch} + (1/\eta - 1)p^{dis})\Delta t` [kWh]
``peak_valley_kw``             peak − valley of the equivalent load (realised base load + EVs −
                               PV − WT), the study's definition [kW]
``voltage_deviation_pu``       Γ = Δt Σ_t Σ_i |V − 1| of the AC power flow [p.u.·h]
``vmin_pu``, ``vmax_pu``       extreme AC voltages
``voltage_violations``         AC bus-hours outside [v_min − 1e-4, v_max + 1e-4] (the 1e-4 p.u. is
                               the certification tolerance of an SOCP voltage vs the AC one)
``energy_not_delivered_kwh``   Σ over showing EVs of the shortfall below the obligation
``reservations_broken``        showing EVs :func:`evsched.disaggregation.verify` does not honour
                               (obligation missed by more than 1e-3 kWh, or any other limit broken)
``curtailment_kwh``            realised PV/WT availability not delivered [kWh]
``ev_energy_kwh``              net energy drawn by the EVs from the grid [kWh]
=============================  ====================================================================

**Broken reservation, for changed requests.** The obligation of a showing EV is
:math:`E_{obl} = \min(E_{req}, E_{reach})` (:mod:`evsched.uncertainty.deviations`): its
realised request, or everything its realised stay allows at full power if it asked for more.
A late arrival, an early departure or a larger request therefore never counts against a policy
beyond what is physically possible; what is not (``unreachable_kwh``) is reported per sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evsched.disaggregation import verify
from evsched.sessions import Sessions, _energies, per_bus_hour, stay_presence

T = 24
V_TOL_PU = 1e-4
"""Tolerance on the voltage band when counting AC violations [p.u.]."""


def rows_to_48(sessions: Sessions, values: np.ndarray, n_reservations: int,
               res_index: np.ndarray | None = None) -> np.ndarray:
    """Per-session values (S × 24) → per-reservation 48-h grid (N × 48): a first (day or
    evening) session fills hours 0..23 of its reservation, a morning session hours 24..47.
    ``res_index`` overrides ``sessions.res_index`` (e.g. to map a subset to all rows)."""
    ri = sessions.res_index if res_index is None else res_index
    out = np.zeros((n_reservations, 2 * T))
    first = sessions.kind != "morning"
    out[ri[first], :T] = values[first]      # one first and at most one morning session per reservation
    out[ri[~first], T:] = values[~first]
    return out


def fold(p48: np.ndarray) -> np.ndarray:
    """(N × 48) → (N × 24): the representative day (hour j and j + 24 coincide)."""
    return p48[:, :T] + p48[:, T:]


@dataclass
class EVDay:
    """Executed EV powers on the 48-h grid (N × 48) [kW / kvar]."""

    p_charge_kw: np.ndarray
    p_discharge_kw: np.ndarray
    q_kvar: np.ndarray

    @property
    def net_kw(self) -> np.ndarray:
        return self.p_charge_kw - self.p_discharge_kw


def execute(actual: pd.DataFrame, show: np.ndarray, obligation_kwh: np.ndarray, plan_ch: np.ndarray,
            plan_dis: np.ndarray, plan_q: np.ndarray | None = None, guard: bool = False) -> EVDay:
    """Execute a planned per-reservation schedule (N × 48) on the realised stays (module
    docstring, steps 1-3). ``actual`` is the realised reservation frame
    (:attr:`~evsched.uncertainty.deviations.Sample.actual`), ``show`` who comes."""
    r = actual.reset_index(drop=True)
    F = stay_presence(r) * np.asarray(show, float)[:, None]
    _, e_a, _, e_floor, e_ceil = _energies(r)
    mode = r["mode"].to_numpy(str)
    P = r["charger_kw"].to_numpy(float)
    S = r["charger_kva"].to_numpy(float)
    eta = r["efficiency"].to_numpy(float)
    cap_ch = np.where(mode != "discharge", P, 0.0)
    cap_dis = np.where(mode != "charge", P, 0.0)
    rem = F[:, ::-1].cumsum(axis=1)[:, ::-1] - F  # Σ_{j' > j} f'
    E = e_a.copy()
    pc_out, pd_out = np.zeros_like(F), np.zeros_like(F)
    for j in range(2 * T):
        f = F[:, j]
        pc = np.minimum(np.maximum(plan_ch[:, j], 0.0), cap_ch * f)
        pd_ = np.minimum(np.maximum(plan_dis[:, j], 0.0), cap_dis * f)
        tot = pc + pd_
        over = tot > P * f + 1e-12
        scale = np.where(over, P * f / np.where(over, tot, 1.0), 1.0)
        pc, pd_ = pc * scale, pd_ * scale
        pc = np.minimum(pc, np.maximum(e_ceil - E, 0.0) / eta)
        pd_ = np.minimum(pd_, np.maximum(E - e_floor, 0.0) * eta)
        if guard:
            need = obligation_kwh - E - eta * cap_ch * rem[:, j]
            live = f > 0
            short = live & (eta * pc - pd_ / eta < need - 1e-12)
            pd_ = np.where(short, np.clip((eta * pc - need) * eta, 0.0, pd_), pd_)
            still = live & (eta * pc - pd_ / eta < need - 1e-12)
            raise_to = np.minimum.reduce([np.maximum(need / eta, pc), cap_ch * f,
                                          np.maximum(e_ceil - E, 0.0) / eta])
            pc = np.where(still, np.maximum(pc, raise_to), pc)
            pd_ = np.where(still & (pc + pd_ > P * f), np.maximum(P * f - pc, 0.0), pd_)
        E = E + eta * pc - pd_ / eta
        pc_out[:, j], pd_out[:, j] = pc, pd_
    q = np.zeros_like(F) if plan_q is None else plan_q
    head = np.sqrt(np.maximum((S[:, None] * F) ** 2 - (pc_out - pd_out) ** 2, 0.0))
    return EVDay(pc_out, pd_out, np.clip(q, -head, head))


def reservation_report(sample, ev: EVDay) -> pd.DataFrame:
    """:func:`evsched.disaggregation.verify` of the showing EVs' executed schedule against
    their realised reservations (obligations); one row per showing EV."""
    ses = sample.sessions
    orig = sample.shown[ses.res_index]
    first = ses.kind != "morning"
    pc = np.where(first[:, None], ev.p_charge_kw[orig, :T], ev.p_charge_kw[orig, T:])
    pd_ = np.where(first[:, None], ev.p_discharge_kw[orig, :T], ev.p_discharge_kw[orig, T:])
    return verify(ses, pc, pd_)


@dataclass
class RenewableDay:
    """Executed PV and WT (sites × 24): injections as positive kW, reactive power (load
    convention) [kvar], availability [kW]."""

    pv_kw: np.ndarray
    pv_q_kvar: np.ndarray
    wt_kw: np.ndarray
    wt_q_kvar: np.ndarray
    pv_avail_kw: np.ndarray
    wt_avail_kw: np.ndarray

    @property
    def curtailment_kwh(self) -> float:
        return float((self.pv_avail_kw - self.pv_kw).sum() + (self.wt_avail_kw - self.wt_kw).sum())


def execute_renewables(cd, sample, out_pv, q_pv, out_wt, q_wt, planned_avail_pv=None,
                       planned_avail_wt=None) -> RenewableDay:
    """PV/WT of a planned dispatch on the realised availability: an output planned below the
    planned availability (curtailed) is kept as a cap, otherwise all that is available is
    taken; the reactive set-point is clipped to the inverter circle."""
    c = cd.case
    res = []
    for out, q, avail, plan_avail, cap in (
            (out_pv, q_pv, sample.pv_avail_kw, planned_avail_pv, c.pv_capacity_kw),
            (out_wt, q_wt, sample.wt_avail_kw, planned_avail_wt, c.wt_capacity_kw)):
        s_inv = c.inverter_kva_ratio * np.asarray(cap, float)[:, None]
        if plan_avail is None:
            o = np.minimum(out, avail)
        else:
            curtailed = out < plan_avail - 1e-6
            o = np.where(curtailed, np.minimum(out, avail), avail)
        head = np.sqrt(np.maximum(s_inv ** 2 - o ** 2, 0.0))
        res += [o, np.clip(q, -head, head)]
    return RenewableDay(res[0], res[1], res[2], res[3], sample.pv_avail_kw, sample.wt_avail_kw)


def net_demand(cd, sample, ev: EVDay, ren: RenewableDay) -> tuple[np.ndarray, np.ndarray]:
    """Bus net demand (n_bus × 24) [kW], [kvar]: realised base load + EVs at their stations −
    PV − WT (load convention)."""
    net, c = cd.network, cd.case
    stations = sample.actual["station"].to_numpy(int)
    p = sample.load_p_kw.copy() + per_bus_hour(fold(ev.net_kw), stations, net)
    q = sample.load_q_kvar.copy() + per_bus_hour(fold(ev.q_kvar), stations, net)
    for buses, gen, qq in ((c.pv_buses, ren.pv_kw, ren.pv_q_kvar), (c.wt_buses, ren.wt_kw, ren.wt_q_kvar)):
        if len(buses):
            p -= per_bus_hour(gen, np.asarray(buses), net)
            q += per_bus_hour(qq, np.asarray(buses), net)
    return p, q


METRICS = ["loss_kwh", "converter_loss_kwh", "peak_valley_kw", "voltage_deviation_pu", "vmin_pu",
           "vmax_pu", "voltage_violations", "energy_not_delivered_kwh", "reservations_broken",
           "curtailment_kwh", "ev_energy_kwh"]
"""The per-sample, per-policy metrics (module docstring)."""


def day_metrics(cd, sample, ev: EVDay, ren: RenewableDay, pf, dt_h: float = 1.0) -> tuple[dict, object]:
    """The metrics of an executed day (module docstring) and its AC power flow
    (:class:`~evsched.uncertainty.acflow.ACDay`)."""
    c = cd.case
    p, q = net_demand(cd, sample, ev, ren)
    ac = pf.run(p, q, dt_h)
    eta = sample.actual["efficiency"].to_numpy(float)[:, None]
    conv = float(((1 - eta) * ev.p_charge_kw + (1 / eta - 1) * ev.p_discharge_kw).sum() * dt_h)
    keep = np.setdiff1d(np.arange(cd.network.n_bus), [cd.network.slack])
    v = ac.v_pu[keep]
    viol = int(((v < c.v_min_pu - V_TOL_PU) | (v > c.v_max_pu + V_TOL_PU)).sum())
    rep = reservation_report(sample, ev)
    bad = ~rep["honoured"].to_numpy(bool)
    eq = p.sum(axis=0)
    return {
        "loss_kwh": ac.loss_kwh, "converter_loss_kwh": conv,
        "peak_valley_kw": float(eq.max() - eq.min()),
        "voltage_deviation_pu": float(np.abs(ac.v_pu - 1.0).sum() * dt_h),
        "vmin_pu": float(v.min()), "vmax_pu": float(v.max()), "voltage_violations": viol,
        "energy_not_delivered_kwh": float(rep["shortfall_kwh"].to_numpy()[bad].sum()),
        "reservations_broken": int(bad.sum()),
        "curtailment_kwh": ren.curtailment_kwh * dt_h,
        "ev_energy_kwh": float(ev.net_kw.sum() * dt_h),
    }, ac
