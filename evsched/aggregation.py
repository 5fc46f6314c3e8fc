r"""Station aggregation: reservations → per-station, per-step bounds for the optimiser.

Steps are those of the sessions (:mod:`evsched.sessions`: 24 hours or 96 quarter-hours, the
run parameter ``resolution_min``); ``Δt`` below is their length in hours.

Each station k sends the dispatch centre one flexibility profile, the sum over its sessions
s ∈ k (:mod:`evsched.sessions`) of the individual limits:

.. math::
    \bar P^{ch}_k[t] = \sum_{s∈k} f_s[t] P^{ch}_s \qquad
    \bar P^{dis}_k[t] = \sum_{s∈k} f_s[t] P^{dis}_s \qquad
    \bar S_k[t] = \sum_{s∈k} f_s[t] S_s

    E^{min}_k[t] = \sum_{s∈k} x^{lo}_s[t] \;\le\; E_k[t] \;\le\; \sum_{s∈k} x^{hi}_s[t] = E^{max}_k[t]

where ``E_k[t]`` is the **net battery energy delivered to the station's EVs since hour 0**
(``E_k[-1] = 0``), so the optimiser's storage model
``E_k[t] = Σ_{τ≤t} (η_k p^{ch}_k[τ] − p^{dis}_k[τ]/η_k)·Δt`` applies with ``E0 = 0``. Arrivals
raise ``E^{max}`` (room brought in) and lower ``E^{min}`` (energy V2G EVs may give);
departures freeze each EV's share at its target (at least ``soc_departure_min``).

**Outer approximation.** Any set of individually feasible schedules sums to a station
schedule inside these bounds (sum of per-EV bounds), but not every station schedule inside
them splits into feasible EV schedules: the box of sums is larger than the (Minkowski) sum of
the individual sets. :mod:`evsched.disaggregation` measures how often that bites.

**Efficiency.** ``η_k`` is the presence-weighted mean of the station's EV efficiencies:
exact when they are equal (the default fleet), an approximation otherwise.

**Apparent power.** ``(p_k)² + q_k² ≤ \bar S_k²`` with ``\bar S_k = Σ f S`` is again an outer
bound of the chargers' individual circles (triangle inequality).

Worked example (one station, two EVs, 1-h steps, η = 1): EV A plugged 0-2 h, 10 kW, arrives
with 0 kWh, needs 10 kWh, ceiling 20 kWh; EV B plugged 1-3 h, 10 kW, arrives with 5 kWh,
must leave with 10 kWh, ceiling 20 kWh; both charge only. ``x^{lo}_A = [0, 10, 10]``,
``x^{hi}_A = [10, 20, 20]``; ``x^{lo}_B = [0, 0, 5]``, ``x^{hi}_B = [0, 10, 15]``;
station ``E^{min} = [0, 10, 15]``, ``E^{max} = [10, 30, 35]``, ``\bar P^{ch} = [10, 20, 10]``
(tested in ``tests/test_aggregation.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evsched.sessions import Sessions, per_bus_hour, step_hours, uncontrolled_charging


@dataclass
class StationEnvelopes:
    """Aggregated station bounds (K stations × T hours).

    Attributes
    ----------
    stations : (K,) station bus ids (sorted)
    p_charge_max_kw, p_discharge_max_kw : (K, T) Σ connected charger ratings [kW]
    s_max_kva : (K, T) Σ connected charger apparent ratings [kVA]
    energy_min_kwh, energy_max_kwh : (K, T) cumulative energy envelope [kWh] (E at step end)
    p_total_max_kw : (K, T) Σ connected charger ratings f·P of every EV [kW]: bound on
        ``p_ch + p_dis`` (a charger cannot charge and discharge at full power in one hour)
    n_connected : (K, T) EVs plugged in (Σ presence fractions)
    n_reservations : (K,) reservations per station
    eta : (K,) station efficiency
    dt_h : step length [h]
    """

    stations: np.ndarray
    p_charge_max_kw: np.ndarray
    p_discharge_max_kw: np.ndarray
    s_max_kva: np.ndarray
    energy_min_kwh: np.ndarray
    energy_max_kwh: np.ndarray
    p_total_max_kw: np.ndarray
    n_connected: np.ndarray
    n_reservations: np.ndarray
    eta: np.ndarray
    dt_h: float = 1.0

    @property
    def T(self) -> int:
        return self.energy_min_kwh.shape[1]

    @property
    def hours(self) -> np.ndarray:
        """Start hour of every step (0, 1, ... or 0, 0.25, ...)."""
        return step_hours(self.dt_h)

    def frame(self) -> pd.DataFrame:
        """Tidy ``station, hour, n_connected, p_charge_max_kw, p_discharge_max_kw, s_max_kva,
        energy_min_kwh, energy_max_kwh`` (``hour`` = the step's start hour)."""
        K, T = self.energy_min_kwh.shape
        return pd.DataFrame({
            "station": np.repeat(self.stations, T), "hour": np.tile(self.hours, K),
            "n_connected": self.n_connected.ravel(),
            "p_charge_max_kw": self.p_charge_max_kw.ravel(),
            "p_discharge_max_kw": self.p_discharge_max_kw.ravel(),
            "s_max_kva": self.s_max_kva.ravel(),
            "energy_min_kwh": self.energy_min_kwh.ravel(),
            "energy_max_kwh": self.energy_max_kwh.ravel(),
            "p_total_max_kw": self.p_total_max_kw.ravel(),
        })

    def storage_group(self, name: str = "ev_stations", reactive: bool = False):
        """The stations as one :class:`evsched.model.StorageGroup` (one row per station, E0 = 0).

        ``reactive=True`` gives each station a reactive power variable limited by
        ``(p_ch − p_dis)² + q² ≤ s_max_kva²``.
        """
        from evsched.model import StorageGroup

        return StorageGroup(
            name=name, buses=self.stations, p_charge_max_kw=self.p_charge_max_kw,
            p_discharge_max_kw=self.p_discharge_max_kw, energy_min_kwh=self.energy_min_kwh,
            energy_max_kwh=self.energy_max_kwh, energy_initial_kwh=0.0, eta_charge=self.eta,
            eta_discharge=self.eta, s_max_kva=self.s_max_kva, reactive=reactive,
            kind="ev_station", p_total_max_kw=self.p_total_max_kw)


def station_incidence(sessions: Sessions, stations) -> sp.csr_matrix:
    """(K × S) 0/1 matrix: ``A[k, s] = 1`` if session s belongs to station k."""
    stations = np.asarray(stations)
    k = np.searchsorted(stations, sessions.station)
    if not np.array_equal(stations[np.minimum(k, len(stations) - 1)], sessions.station):
        missing = sorted(set(sessions.station) - set(stations))
        raise ValueError(f"sessions reference stations {missing} not in {list(stations)}")
    return sp.csr_matrix((np.ones(sessions.n), (k, np.arange(sessions.n))),
                         shape=(len(stations), sessions.n))


def aggregate(sessions: Sessions, stations=None) -> StationEnvelopes:
    """Sum the sessions' limits and energy bounds per station (see module docstring).

    ``stations`` (bus ids) defaults to the stations that have sessions; a listed station
    without reservations gets all-zero bounds.
    """
    st = np.array(sorted(set(sessions.station) if stations is None else set(int(s) for s in stations)))
    A = station_incidence(sessions, st)
    n_conn = A @ sessions.presence
    w = A @ (sessions.presence.sum(axis=1) * sessions.eta)
    tot = A @ sessions.presence.sum(axis=1)
    eta = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.95)
    n_res = np.asarray(A @ (sessions.kind != "morning").astype(float)).astype(int)
    return StationEnvelopes(
        stations=st, p_charge_max_kw=A @ sessions.p_charge_max_kw,
        p_discharge_max_kw=A @ sessions.p_discharge_max_kw, s_max_kva=A @ sessions.s_max_kva,
        energy_min_kwh=A @ sessions.energy_min_kwh, energy_max_kwh=A @ sessions.energy_max_kwh,
        p_total_max_kw=A @ (sessions.charger_kw[:, None] * sessions.presence),
        n_connected=n_conn, n_reservations=n_res, eta=eta, dt_h=sessions.dt_h)


def exact_storage_group(sessions: Sessions, name: str = "ev_exact", reactive: bool = False,
                        kind: str = "ev"):
    """The exact alternative: one :class:`evsched.model.StorageGroup` row per session (per EV,
    two rows for an overnight stay), at its station bus, with its own bounds (E0 = 0).

    Every schedule of this group is a set of individually feasible EV schedules, so a solved
    model honours every reservation by construction (checked independently by
    :func:`evsched.disaggregation.verify`). The optimiser only creates variables where an EV is
    plugged in (:meth:`evsched.model.StorageGroup.active_mask`)."""
    from evsched.model import StorageGroup

    return StorageGroup(
        name=name, buses=sessions.station, p_charge_max_kw=sessions.p_charge_max_kw,
        p_discharge_max_kw=sessions.p_discharge_max_kw, energy_min_kwh=sessions.energy_min_kwh,
        energy_max_kwh=sessions.energy_max_kwh, energy_initial_kwh=0.0, eta_charge=sessions.eta,
        eta_discharge=sessions.eta, s_max_kva=sessions.s_max_kva, reactive=reactive, kind=kind,
        p_total_max_kw=session_power_limit_kw(sessions))


def uncontrolled_station_demand(reservations: pd.DataFrame, network,
                                target: str = "departure", dt_h: float = 1.0) -> np.ndarray:
    """Uncontrolled ("dumb") EV demand per bus and step [kW], (n_bus, T) in internal bus order
    (T = 24 h / ``dt_h``).

    Each EV charges at full power from arrival until ``soc_departure_min`` (``target=
    "departure"``) or ``soc_max`` (``"full"``) is reached, at its station's bus
    (:func:`evsched.sessions.uncontrolled_charging`); zero at buses without a station.
    """
    p = uncontrolled_charging(reservations, target=target, dt_h=dt_h)
    return per_bus_hour(p, reservations["station"].to_numpy(int), network)


def session_power_limit_kw(sessions: Sessions) -> np.ndarray:
    """(S, T) charger rating × presence of each session [kW] (its time-sharing limit)."""
    return sessions.charger_kw[:, None] * sessions.presence
