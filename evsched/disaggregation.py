r"""Disaggregation: split each station's optimised schedule among its EVs, and verify every EV.

Allocation (a small LP, all stations at once)
---------------------------------------------
Given the station net grid power ``P_k[t]`` [kW] (load convention, ``p_ch − p_dis`` of the
station aggregate), find per-session ``p_ch[s,t], p_dis[s,t] ≥ 0`` that

.. math::
    \min\; w_{track}\sum_{k,t} |d_k[t]| + w_{short}\sum_s u_s + ε\sum_{s,t}(p^{ch}+p^{dis})

    \text{s.t.}\quad \sum_{s∈k} (p^{ch}_s[t] − p^{dis}_s[t]) − P_k[t] = d_k[t]
    \quad\text{(station tracking, deviation } d\text{)}

    0 ≤ p^{ch} ≤ f P^{ch},\;\; 0 ≤ p^{dis} ≤ f P^{dis},\;\; p^{ch} + p^{dis} ≤ f P
    \quad\text{(charger rating, time-shared within a step)}

    x_s[t] = \sum_{τ≤t} (η_s p^{ch}_s[τ] − p^{dis}_s[τ]/η_s)\,Δt,\;\;
    E_{floor} − E_0 ≤ x_s[t] ≤ E_{ceil} − E_0 \quad\text{(SOC limits, hard)}

    x_s[T−1] ≥ x^{end}_{lo,s} − u_s,\;\; x_s[T−1] ≤ x^{end}_{hi,s},\;\; u_s ≥ 0
    \quad\text{(departure energy, soft: shortfall } u\text{)}

An evening session may end below its midnight handover energy (``x_s[T−1] ≤ x^{end}_{hi,s}``
only); its deficit ``δ = x^{end}_{hi} − x_s[T−1] ≥ 0`` is carried into the same reservation's
morning session, whose SOC limits and departure target then apply to ``x_m − δ`` (the
energy relative to the true midnight state). So the split works on the whole stay, not on the
fixed handover.

with ``ε = 10⁻⁴`` and, by default (``priority="grid"``), ``w_track = 10``, ``w_short = 1`` per
kWh: the station schedule the grid was optimised with is followed first; when it cannot be
split, EVs fall short and are reported. ``priority="evs"`` swaps the weights: reservations
first, the stations then deviate from their schedule (``deviation_kw``). The LP is always
feasible (all-zero is). Variables are (S × T) matrices: no loop over EVs.

Verification (independent of the allocation and of the midnight split)
----------------------------------------------------------------------
:func:`verify` rebuilds each reservation over its whole stay on an absolute 48-h grid of the
sessions' steps (``Δt`` = 1 h or 15 min; today's evening session in the first 24 h, the next
morning's in the second), integrates the battery energy ``E_a + Σ (η p_ch − p_dis/η)·Δt``
and checks: powers ≥ 0, ``p_ch + p_dis ≤ f·P`` (zero when not
plugged in), direction allowed by ``mode``, ``E_floor ≤ E ≤ E_ceil`` at every step end of the
stay, and ``E ≥ soc_departure_min·B`` on departure. An EV failing any check is *not honoured*.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from evsched.aggregation import station_incidence
from evsched.errors import OptimisationError
from evsched.sessions import T_HOURS, Sessions, _energies, stay_presence, step_hours

W_TRACK, W_SHORT, EPS = 10.0, 1.0, 1e-4
TOL_KW, TOL_KWH = 1e-4, 1e-3


@dataclass
class Disaggregation:
    """Per-session schedule, station tracking deviations and the per-EV verification.

    Attributes
    ----------
    p_charge_kw, p_discharge_kw : (S, T) per-session schedule [kW]
    stations : (K,) station bus ids; ``deviation_kw`` (K, T) allocated − requested [kW]
    report : per-reservation verification (:func:`verify`)
    """

    sessions: Sessions
    p_charge_kw: np.ndarray
    p_discharge_kw: np.ndarray
    stations: np.ndarray
    deviation_kw: np.ndarray
    report: pd.DataFrame
    status: str

    @property
    def n_not_honoured(self) -> int:
        return int((~self.report["honoured"]).sum())

    @property
    def failure_rate(self) -> float:
        """Share of reservations not honoured."""
        return self.n_not_honoured / max(len(self.report), 1)

    @property
    def max_deviation_kw(self) -> float:
        return float(np.abs(self.deviation_kw).max()) if self.deviation_kw.size else 0.0

    def not_honoured(self) -> pd.DataFrame:
        return self.report[~self.report["honoured"]].reset_index(drop=True)

    def schedule(self) -> pd.DataFrame:
        """Tidy ``ev_id, kind, station, hour, p_charge_kw, p_discharge_kw, p_kw`` (``hour`` =
        the step's start hour)."""
        s = self.sessions
        S, T = self.p_charge_kw.shape
        return pd.DataFrame({
            "ev_id": np.repeat(s.ev_id, T), "kind": np.repeat(s.kind, T),
            "station": np.repeat(s.station, T), "hour": np.tile(step_hours(s.dt_h), S),
            "p_charge_kw": self.p_charge_kw.ravel(), "p_discharge_kw": self.p_discharge_kw.ravel(),
            "p_kw": (self.p_charge_kw - self.p_discharge_kw).ravel()})

    def station_check(self) -> pd.DataFrame:
        """Tidy ``station, hour, deviation_kw``."""
        K, T = self.deviation_kw.shape
        return pd.DataFrame({"station": np.repeat(self.stations, T),
                             "hour": np.tile(step_hours(self.sessions.dt_h), K),
                             "deviation_kw": self.deviation_kw.ravel()})


def station_net_from_result(result, name: str, stations) -> np.ndarray:
    """Station net power ``p_charge_kw − p_discharge_kw`` (K, T) from an OPFResult's
    ``storage`` frame for the StorageGroup ``name`` (rows ordered by ``stations``)."""
    st = result.storage[result.storage["name"] == name]
    pt = (st.assign(p=st["p_charge_kw"] - st["p_discharge_kw"])
          .pivot_table(index="bus", columns="hour", values="p", aggfunc="sum"))
    return pt.reindex(index=list(stations)).to_numpy(float)


def session_schedule_from_result(result, name: str, n_sessions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-session ``(p_charge_kw, p_discharge_kw)`` (S, T) of an exact per-EV StorageGroup."""
    st = result.storage[result.storage["name"] == name]
    pc = st.pivot(index="index", columns="hour", values="p_charge_kw").reindex(range(n_sessions))
    pd_ = st.pivot(index="index", columns="hour", values="p_discharge_kw").reindex(range(n_sessions))
    return pc.to_numpy(float), pd_.to_numpy(float)


PRIORITIES = {"grid": (W_TRACK, W_SHORT), "evs": (W_SHORT, W_TRACK)}


def handover_matrix(sessions: Sessions) -> sp.csr_matrix:
    """(S × S) 0/1 matrix mapping each reservation's evening session to its morning session."""
    eve = np.flatnonzero(sessions.kind == "evening")
    mor = np.flatnonzero(sessions.kind == "morning")
    pos = {r: j for j, r in zip(eve, sessions.res_index[eve])}
    cols = np.array([pos[r] for r in sessions.res_index[mor]], dtype=int)
    return sp.csr_matrix((np.ones(len(mor)), (mor, cols)), shape=(sessions.n, sessions.n))


def disaggregate(sessions: Sessions, station_net_kw, stations, priority: str = "grid",
                 solver: str | None = None) -> Disaggregation:
    """Allocate station net power (K, T) [kW] to sessions by the LP of the module docstring,
    then :func:`verify` every reservation.

    ``priority``: ``"grid"`` (follow the station schedule first) or ``"evs"`` (honour the
    reservations first). ``solver`` defaults to HiGHS."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be 'grid' or 'evs', got {priority!r}")
    w_track, w_short = PRIORITIES[priority]
    stations = np.asarray(stations)
    P = np.asarray(station_net_kw, dtype=float)
    A = station_incidence(sessions, stations)
    S, T = sessions.presence.shape
    if P.shape != (len(stations), T):
        raise ValueError(f"station_net_kw: expected shape ({len(stations)}, {T}), got {P.shape}")
    pc, pdis = cp.Variable((S, T), nonneg=True), cp.Variable((S, T), nonneg=True)
    short = cp.Variable(S, nonneg=True)
    eta = sessions.eta[:, None]
    x = cp.cumsum(cp.multiply(eta * sessions.dt_h, pc) - cp.multiply(sessions.dt_h / eta, pdis), axis=1)
    dev = A @ (pc - pdis) - P
    rating = sessions.charger_kw[:, None] * sessions.presence
    # an evening session may end below its midnight handover energy; the deficit is carried
    # into the same reservation's morning session (whose E0 assumed the full handover)
    evening = (sessions.kind == "evening").astype(float)
    deficit = cp.multiply(evening, sessions.target_max_kwh - x[:, T - 1])
    carried = handover_matrix(sessions) @ deficit
    xe = x - cp.reshape(carried, (S, 1), order="F") @ np.ones((1, T))  # energy w.r.t. true start
    end = xe[:, T - 1]
    cons = [pc <= sessions.p_charge_max_kw, pdis <= sessions.p_discharge_max_kw,
            pc + pdis <= rating,
            xe >= sessions.soc_box_min_kwh[:, None], xe <= sessions.soc_box_max_kwh[:, None],
            end <= sessions.target_max_kwh]
    last = np.flatnonzero(sessions.kind != "evening")  # sessions that end with a departure
    cons.append(end[last] >= sessions.target_min_kwh[last] - short[last])
    obj = w_track * cp.sum(cp.abs(dev)) + w_short * cp.sum(short) + EPS * cp.sum(pc + pdis)
    prob = cp.Problem(cp.Minimize(obj), cons)
    solver = solver or ("HIGHS" if "HIGHS" in cp.installed_solvers() else "CLARABEL")
    with _quiet_c_stdout(solver == "HIGHS"):  # HiGHS prints a licence banner once per process
        prob.solve(solver=solver, **({"output_flag": False} if solver == "HIGHS" else {}))
    if prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise OptimisationError(f"disaggregation LP ({S} sessions, {len(stations)} stations): "
                                f"solver {solver} returned {prob.status}")
    pcv = np.maximum(pc.value, 0.0)
    pdv = np.maximum(pdis.value, 0.0)
    deviation = np.asarray(A @ (pcv - pdv)) - P
    report = verify(sessions, pcv, pdv)
    return Disaggregation(sessions, pcv, pdv, stations, deviation, report, prob.status)


def energy_not_delivered_kwh(report: pd.DataFrame) -> float:
    """Σ departure shortfall [kWh] of the reservations a :func:`verify` report does not honour
    (shortfalls within its tolerance, :data:`TOL_KWH` per EV, are the solver's round-off, not
    energy missing)."""
    return float(report.loc[~report["honoured"], "shortfall_kwh"].sum())


def verify(sessions: Sessions, p_charge_kw, p_discharge_kw, tol_kw: float = TOL_KW,
           tol_kwh: float = TOL_KWH) -> pd.DataFrame:
    """Check every reservation over its whole stay (see module docstring).

    Returns
    -------
    DataFrame, one row per reservation: ``ev_id, station, mode, honoured, reason,
    shortfall_kwh, power_excess_kw, soc_min_seen, soc_max_seen, soc_departure`` (SOC as
    fractions), ``reason`` naming the first failed check ('' when honoured).
    """
    r = sessions.reservations
    N, T, dt = len(r), sessions.T, float(sessions.dt_h)
    pc, pdis = np.asarray(p_charge_kw, float), np.asarray(p_discharge_kw, float)
    # rebuild (N, 2T): first session → today's steps, morning session → the next day's
    pc48, pd48 = np.zeros((N, 2 * T)), np.zeros((N, 2 * T))
    first = sessions.kind != "morning"
    pc48[sessions.res_index[first], :T] = pc[first]
    pd48[sessions.res_index[first], :T] = pdis[first]
    mor = ~first
    pc48[sessions.res_index[mor], T:] = pc[mor]
    pd48[sessions.res_index[mor], T:] = pdis[mor]

    F = stay_presence(r, 2 * T_HOURS, dt)
    B, e_a, e_dep, e_floor, e_ceil = _energies(r)
    mode = r["mode"].to_numpy(str)
    P = r["charger_kw"].to_numpy(float)
    eta = r["efficiency"].to_numpy(float)
    E = e_a[:, None] + np.cumsum(eta[:, None] * pc48 - pd48 / eta[:, None], axis=1) * dt
    # the stay's step ends: from the arrival step to the departure step
    in_stay = np.cumsum(F, axis=1) > 0
    neg = (pc48 < -tol_kw) | (pd48 < -tol_kw)
    excess = np.max(pc48 + pd48 - P[:, None] * F, axis=1)
    wrong_dir = np.where(mode == "charge", pd48.max(axis=1) > tol_kw,
                         np.where(mode == "discharge", pc48.max(axis=1) > tol_kw, False))
    E_stay_min = np.where(in_stay, E, np.inf).min(axis=1)
    E_stay_max = np.where(in_stay, E, -np.inf).max(axis=1)
    below, above = E_stay_min < e_floor - tol_kwh, E_stay_max > e_ceil + tol_kwh
    e_end = E[:, -1]
    shortfall = np.maximum(e_dep - e_end, 0.0)
    short = shortfall > tol_kwh
    checks = [(neg.any(axis=1), "negative power"),
              (excess > tol_kw, "power above charger rating x presence (or while not plugged in)"),
              (wrong_dir, "power in a direction the mode does not allow"),
              (below, "SOC below the floor min(soc_min, soc_arrival)"),
              (above, "SOC above the ceiling max(soc_max, soc_arrival)"),
              (short, "departure energy below soc_departure_min")]
    reason = np.full(N, "", dtype=object)
    for bad, text in reversed(checks):  # the first failing check wins
        reason[bad] = text
    honoured = reason == ""
    return pd.DataFrame({
        "ev_id": r["ev_id"].to_numpy(str), "station": r["station"].to_numpy(int), "mode": mode,
        "honoured": honoured, "reason": reason, "shortfall_kwh": shortfall,
        "power_excess_kw": np.maximum(excess, 0.0), "soc_min_seen": E_stay_min / B,
        "soc_max_seen": E_stay_max / B, "soc_departure": e_end / B})


@contextlib.contextmanager
def _quiet_c_stdout(active: bool = True):
    """Silence output written by compiled code to file descriptor 1 (not Python's sys.stdout)."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
