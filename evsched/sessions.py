r"""From reservations to per-step individual constraints on the day's time grid.

Time grid
---------
``T = 24 h / Δt`` steps of ``Δt = dt_h`` hours (the run parameter ``resolution_min``: 60 →
``Δt = 1`` h, 24 steps; 15 → ``Δt = 0.25`` h, 96 steps); step ``t`` covers clock time
``[t·Δt, (t+1)·Δt)`` h and is labelled by its start hour (:func:`step_hours`: 0, 1, ... or
0, 0.25, ...). Powers are step averages [kW] (load convention: charging > 0), energies are
**battery-side** [kWh] at the end of a step. A reservation is present during ``[a, a + stay)``
where ``a = arrival_hour`` and ``stay = departure_hour + 24·departure_day − a`` (hours, any
fraction the reservation schema allows); times off the grid enter through the **presence
fraction** ``f[t] ∈ [0, 1]``, the share of step t the EV is plugged in, which scales its power
limits: ``p_ch[t] ≤ f[t]·P``. With whole-hour reservations (the default fleet) the 15-minute
presence is 0 or 1 and four quarters carry exactly the hour's presence.

Overnight stays: the representative (periodic) day
-------------------------------------------------
The study optimises one representative day that repeats (day-ahead, same reservations every
day). An EV arriving at 18:00 and leaving at 07:00 is therefore seen by the day's horizon
twice: from 18:00 to 24:00 (today's arrival) and from 00:00 to 07:00 (the same reservation
made the previous evening). Each overnight reservation is split at midnight into an
**evening session** ``[a, 24)`` and a **morning session** ``[0, d)``, coupled by a fixed
**midnight handover energy**

.. math:: E_{mid} = E_a + \max(E_{dep} − E_a, 0)\,\frac{24 − a}{stay}   \quad
          (E_{mid} = E_a \text{ for discharge-only})

(the energy need split pro rata to the hours plugged in before and after midnight, which is
feasible whenever the whole reservation is). The evening session must end *exactly* at
``E_mid`` and the morning session starts from it, so the battery energy is continuous across
midnight and no energy is created by the day boundary. The price is a restriction: the
optimiser cannot move energy between the evening and the morning of one stay. It applies
equally to the aggregated and to the exact per-EV model; :mod:`evsched.disaggregation`
verifies each reservation over its whole stay independently of the split.

Per-session bounds (cumulative energy delivered since hour 0)
-------------------------------------------------------------
For session s with initial energy ``E0`` (``E_a``, or ``E_mid`` for a morning session),
``x[t] = Σ_{τ≤t} (η·p_ch[τ] − p_dis[τ]/η)·Δt`` is the battery energy delivered since hour 0
(0 before arrival, constant after departure). With ``c_in[t] = Σ_{τ≤t} f[τ]·Δt``,
``c_rem[t] = Σ_{τ>t} f[τ]·Δt`` (plugged-in hours so far / still to come), charge and discharge
rates ``r_c = η·P_ch``, ``r_d = P_dis/η`` [kWh per plugged-in hour], SOC box
``[E_floor − E0, E_ceil − E0]`` with ``E_floor = min(soc_min, soc_arrival)·B`` and
``E_ceil = max(soc_max, soc_arrival)·B``, and departure target interval
``[x_lo^end, x_hi^end]`` (``[E_dep − E0, E_ceil − E0]``, or ``{E_mid − E_a}`` for an evening
session), the set of reachable ``x[t]`` is exactly the interval

.. math::
    x_{lo}[t] = \max(E_{floor} − E_0,\; −r_d c_{in}[t],\; x^{end}_{lo} − r_c c_{rem}[t])
    \qquad
    x_{hi}[t] = \min(E_{ceil} − E_0,\; r_c c_{in}[t],\; x^{end}_{hi} + r_d c_{rem}[t])

(forward reachability from E0 ∩ backward reachability to the target ∩ the SOC box); before
arrival it collapses to ``{0}`` and after departure to the target interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evsched.errors import InputError

T_HOURS = 24
"""Hours of the (representative) study day."""


def steps_per_day(dt_h: float = 1.0) -> int:
    """Steps of ``dt_h`` hours in the day (24 or 96); ``dt_h`` must divide one hour."""
    n = T_HOURS / float(dt_h) if dt_h and dt_h > 0 else float("nan")
    per_hour = 1.0 / float(dt_h) if dt_h and dt_h > 0 else float("nan")
    if not (np.isfinite(n) and abs(per_hour - round(per_hour)) < 1e-9 and round(per_hour) >= 1):
        raise InputError(f"time step dt_h = {dt_h!r} h: must divide one hour (1, 0.5, 0.25, ...)")
    return int(round(n))


def step_hours(dt_h: float = 1.0) -> np.ndarray:
    """Start hour of every step of the day: ``0, 1, ..., 23`` (integers) at ``dt_h = 1``,
    ``0, 0.25, ..., 23.75`` at ``dt_h = 0.25`` (the ``hour`` column of every time table)."""
    n = steps_per_day(dt_h)
    return np.arange(n) if n == T_HOURS else np.arange(n) * float(dt_h)


def hour_label(hour):
    """A step's start hour as a plain number for messages and lists: ``18`` for a whole hour,
    ``18.25`` for 18:15 (NumPy scalars become Python ``int`` / ``float``, so a list prints as
    ``[18, 18.25]``, never ``np.float64(18.25)``); a label that is not a number is returned as
    its string."""
    try:
        h = float(hour)
    except (TypeError, ValueError):
        return str(hour)
    if not np.isfinite(h):
        return str(hour)
    return int(h) if h.is_integer() else round(h, 6)


@dataclass
class Sessions:
    """Per-session arrays on the day grid (S sessions × T steps of ``dt_h`` hours). Energies
    battery-side [kWh].

    Attributes
    ----------
    ev_id, station, bus, mode, kind : (S,) — reservation id, station bus, EV's bus,
        mode, and 'day' / 'evening' / 'morning'
    res_index : (S,) row of the reservation in :attr:`reservations`
    presence : (S, T) presence fraction f
    p_charge_max_kw, p_discharge_max_kw, s_max_kva : (S, T) hour-average limits f·P
    energy_min_kwh, energy_max_kwh : (S, T) bounds on x (energy delivered since hour 0)
    soc_box_min_kwh, soc_box_max_kwh : (S,) SOC box ``E_floor − E0``, ``E_ceil − E0``
    target_min_kwh, target_max_kwh : (S,) bounds on x at and after departure
    e0_kwh : (S,) battery energy at the session start (on arrival, or at midnight)
    eta : (S,) one-way efficiency
    charger_kw : (S,) charger rating
    reservations : the typed reservation frame the sessions come from
    dt_h : step length [h]
    """

    ev_id: np.ndarray
    res_index: np.ndarray
    station: np.ndarray
    bus: np.ndarray
    mode: np.ndarray
    kind: np.ndarray
    presence: np.ndarray
    p_charge_max_kw: np.ndarray
    p_discharge_max_kw: np.ndarray
    s_max_kva: np.ndarray
    energy_min_kwh: np.ndarray
    energy_max_kwh: np.ndarray
    soc_box_min_kwh: np.ndarray
    soc_box_max_kwh: np.ndarray
    target_min_kwh: np.ndarray
    target_max_kwh: np.ndarray
    e0_kwh: np.ndarray
    eta: np.ndarray
    charger_kw: np.ndarray
    reservations: pd.DataFrame
    dt_h: float = 1.0

    @property
    def n(self) -> int:
        return len(self.ev_id)

    @property
    def T(self) -> int:
        return self.presence.shape[1]

    @property
    def hours(self) -> np.ndarray:
        """Start hour of every step (:func:`step_hours`)."""
        return step_hours(self.dt_h)

    def frame(self) -> pd.DataFrame:
        """Tidy per-session, per-step table (``ev_id, kind, station, hour, presence, ...``;
        ``hour`` = the step's start hour)."""
        S, T = self.presence.shape
        return pd.DataFrame({
            "ev_id": np.repeat(self.ev_id, T), "kind": np.repeat(self.kind, T),
            "station": np.repeat(self.station, T), "hour": np.tile(self.hours, S),
            "presence": self.presence.ravel(),
            "p_charge_max_kw": self.p_charge_max_kw.ravel(),
            "p_discharge_max_kw": self.p_discharge_max_kw.ravel(),
            "energy_min_kwh": self.energy_min_kwh.ravel(),
            "energy_max_kwh": self.energy_max_kwh.ravel(),
        })


def stay_presence(reservations: pd.DataFrame, horizon_h: int = 2 * T_HOURS,
                  dt_h: float = 1.0) -> np.ndarray:
    """Presence fraction on an absolute grid of ``horizon_h`` hours from today's 00:00, in
    steps of ``dt_h`` hours.

    ``F[i, j] = |[a_i, a_i + stay_i) ∩ [j·Δt, (j+1)·Δt)| / Δt`` (N × horizon_h/Δt); the
    second half of the default 48-h horizon is the next day (where overnight stays end).
    """
    a = reservations["arrival_hour"].to_numpy(float)
    e = a + stay_hours(reservations)
    dt = float(dt_h)
    j = np.arange(int(round(horizon_h * steps_per_day(dt) / T_HOURS)), dtype=float)
    return np.clip((np.minimum(e[:, None], (j + 1) * dt) - np.maximum(a[:, None], j * dt)) / dt, 0.0, 1.0)


def stay_hours(reservations: pd.DataFrame) -> np.ndarray:
    """``departure_hour + 24·departure_day − arrival_hour`` [h]."""
    r = reservations
    return (r["departure_hour"].to_numpy(float) + 24 * r["departure_day"].to_numpy(float)
            - r["arrival_hour"].to_numpy(float))


def _energies(r: pd.DataFrame):
    B = r["battery_kwh"].to_numpy(float)
    soc_a = r["soc_arrival"].to_numpy(float)
    e_a = soc_a * B
    e_dep = r["soc_departure_min"].to_numpy(float) * B
    e_floor = np.minimum(r["soc_min"].to_numpy(float), soc_a) * B
    e_ceil = np.maximum(r["soc_max"].to_numpy(float), soc_a) * B
    return B, e_a, e_dep, e_floor, e_ceil


def build_sessions(reservations: pd.DataFrame, dt_h: float = 1.0) -> Sessions:
    """Split validated reservations into day / evening / morning sessions with their bounds,
    on the day's grid of ``dt_h``-hour steps (1 or 0.25: the run parameter ``resolution_min``).

    ``reservations`` must have passed :func:`evsched.reservations.validate_reservations`
    (a missing column or a non-finite number raises :class:`InputError` naming the
    reservation and the field). Vectorised: no loop over reservations.
    """
    r = reservations.reset_index(drop=True)
    _check_typed(r)
    dt = float(dt_h)
    N, T = len(r), steps_per_day(dt)
    F = stay_presence(r, dt_h=dt)
    stay = stay_hours(r)
    a = r["arrival_hour"].to_numpy(float)
    mode = r["mode"].to_numpy(str)
    B, e_a, e_dep, e_floor, e_ceil = _energies(r)
    overnight = a + stay > T_HOURS + 1e-9
    can_charge = mode != "discharge"
    e_mid = e_a + np.where(can_charge, np.maximum(e_dep - e_a, 0.0), 0.0) * (T_HOURS - a) / stay

    # rows: every reservation's first session (day or evening), then overnight mornings
    first = np.arange(N)
    morning = np.flatnonzero(overnight)
    idx = np.concatenate([first, morning])
    kind = np.concatenate([np.where(overnight, "evening", "day"), np.full(len(morning), "morning")])
    presence = np.concatenate([F[:, :T], F[morning, T:2 * T]])
    e0 = np.concatenate([e_a, e_mid[morning]])
    tgt_lo = np.concatenate([np.where(overnight, e_mid, e_dep) - e_a, e_dep[morning] - e_mid[morning]])
    tgt_hi = np.concatenate([np.where(overnight, e_mid, e_ceil) - e_a, e_ceil[morning] - e_mid[morning]])
    box_lo = e_floor[idx] - e0
    box_hi = e_ceil[idx] - e0

    m = mode[idx]
    eta = r["efficiency"].to_numpy(float)[idx]
    P = r["charger_kw"].to_numpy(float)[idx]
    S_kva = r["charger_kva"].to_numpy(float)[idx]
    pc = np.where(m != "discharge", P, 0.0)
    pd_ = np.where(m != "charge", P, 0.0)
    c_in = np.cumsum(presence, axis=1) * dt  # plugged-in hours so far
    c_rem = presence.sum(axis=1, keepdims=True) * dt - c_in
    rc, rd = (eta * pc)[:, None], (pd_ / eta)[:, None]
    # in place: no stacked (3, S, T) temporaries (100,000 EVs: 160,000 sessions x 24 h)
    x_lo = -rd * c_in
    np.maximum(x_lo, tgt_lo[:, None] - rc * c_rem, out=x_lo)
    np.maximum(x_lo, box_lo[:, None], out=x_lo)
    x_hi = rc * c_in
    np.minimum(x_hi, tgt_hi[:, None] + rd * c_rem, out=x_hi)
    np.minimum(x_hi, box_hi[:, None], out=x_hi)
    # the interval is non-empty for every valid reservation; snap round-off, refuse the rest
    empty = x_lo > x_hi + 1e-6
    if empty.any():
        s, t = np.argwhere(empty)[0]
        raise InputError(f"reservation {str(r['ev_id'].iloc[idx[s]])!r} ({kind[s]} session) has no "
                         f"feasible energy at hour {step_hours(dt)[t]:g}: validate the reservations first")
    x_lo = np.minimum(x_lo, x_hi)
    return Sessions(
        ev_id=r["ev_id"].to_numpy(str)[idx], res_index=idx,
        station=r["station"].to_numpy(int)[idx], bus=r["bus"].to_numpy(int)[idx],
        mode=m, kind=kind, presence=presence,
        p_charge_max_kw=pc[:, None] * presence, p_discharge_max_kw=pd_[:, None] * presence,
        s_max_kva=S_kva[:, None] * presence, energy_min_kwh=x_lo, energy_max_kwh=x_hi,
        soc_box_min_kwh=box_lo, soc_box_max_kwh=box_hi, target_min_kwh=tgt_lo,
        target_max_kwh=tgt_hi, e0_kwh=e0, eta=eta, charger_kw=P, reservations=r, dt_h=dt)


_TYPED = ("arrival_hour", "departure_hour", "departure_day", "battery_kwh", "soc_arrival",
          "soc_departure_min", "soc_min", "soc_max", "charger_kw", "charger_kva", "efficiency",
          "station", "bus")


def _check_typed(r: pd.DataFrame) -> None:
    """Refuse what only an unvalidated frame can hold: a missing column, a non-number, NaN/inf."""
    missing = [c for c in ("ev_id", "mode") + _TYPED if c not in r.columns]
    if missing:
        raise InputError(f"reservations: missing column(s) {missing}; validate the reservations "
                         "first (evsched.reservations.validate_reservations)")
    for c in _TYPED:
        v = pd.to_numeric(r[c], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            value = r[c].iloc[i]
            value = value.item() if isinstance(value, np.generic) else value
            raise InputError(f"reservations, row {i + 1} (ev_id {str(r['ev_id'].iloc[i])!r}), field "
                             f"'{c}' = {value!r}: must be a finite number; validate the "
                             "reservations first (evsched.reservations.validate_reservations)")


def uncontrolled_charging(reservations: pd.DataFrame, target: str = "departure",
                          dt_h: float = 1.0) -> np.ndarray:
    """"Dumb" charging: each EV charges at full power from arrival until its target is met.

    Target energy ``E_dep = soc_departure_min·B`` (``target="departure"``) or
    ``soc_max·B`` (``"full"``). In stay time, the battery receives
    ``min(Σ_{j≤k} η·P·F[j]·Δt, E_target − E_a)`` by the end of absolute step k; grid power is
    that increment / (η·Δt). Overnight stays wrap onto the representative day (the next day's
    steps fold onto today's). Discharge-only EVs do not charge; nobody discharges.

    Returns
    -------
    (N, T) grid-side charging power per reservation [kW] (step averages, T = 24 h / ``dt_h``).
    """
    if target not in ("departure", "full"):
        raise ValueError(f"target must be 'departure' or 'full', got {target!r}")
    r = reservations.reset_index(drop=True)
    dt = float(dt_h)
    T = steps_per_day(dt)
    F = stay_presence(r, dt_h=dt)
    B, e_a, e_dep, _, e_ceil = _energies(r)
    e_t = e_dep if target == "departure" else r["soc_max"].to_numpy(float) * B
    need = np.where(r["mode"].to_numpy(str) != "discharge", np.maximum(e_t - e_a, 0.0), 0.0)
    eta = r["efficiency"].to_numpy(float)
    cap = eta[:, None] * r["charger_kw"].to_numpy(float)[:, None] * F * dt  # kWh per step
    delivered = np.minimum(np.cumsum(cap, axis=1), need[:, None])
    p = np.diff(delivered, axis=1, prepend=0.0) / eta[:, None] / dt
    return p[:, :T] + p[:, T:]


def per_bus_hour(values: np.ndarray, buses: np.ndarray, network) -> np.ndarray:
    """Sum per-row (R, T) values onto network buses → (n_bus, T) in internal bus order (any
    number of steps T)."""
    out = np.zeros((network.n_bus, values.shape[1]))
    np.add.at(out, network.bus_index(buses), values)
    return out
