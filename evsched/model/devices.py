"""Controllable devices attached to buses: what they are allowed to do, in kW / kvar / kWh.

Every device uses the **load convention**: ``p > 0`` draws active power from the grid
(an EV charging), ``p < 0`` injects it (PV, wind, an EV discharging); ``q > 0`` absorbs
reactive power, ``q < 0`` injects it. Arrays are (n_devices × T) unless stated; a scalar or a
(n,) vector is broadcast over hours.

Two families cover the study:

* :class:`DeviceGroup` — a device with box bounds on ``p`` and ``q`` and optionally an
  apparent-power circle ``p² + q² ≤ s²`` (PV and wind inverters, a static var source).
* :class:`StorageGroup` — an energy-constrained device with separate charge and discharge
  power and an energy state (an EV charging station's aggregate, or one EV).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evsched.errors import InputError


def _as_matrix(value, n: int, T: int, what: str) -> np.ndarray:
    """Broadcast a scalar, (n,), (n, 1) or (n, T) array-like to (n, T) floats."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return np.full((n, T), float(a))
    if a.ndim == 1:
        if a.shape[0] != n:
            raise InputError(f"{what}: expected {n} values (one per device), got {a.shape[0]}")
        return np.repeat(a[:, None], T, axis=1)
    if a.shape == (n, 1):
        return np.repeat(a, T, axis=1)
    if a.shape != (n, T):
        raise InputError(f"{what}: expected shape ({n}, {T}), got {a.shape}")
    return a.copy()


def _check(cond: np.ndarray, group: str, field_name: str, buses, values, rule: str) -> None:
    """Raise an InputError naming the first (device, hour) where ``cond`` is False."""
    cond = np.asarray(cond)
    if cond.all():
        return
    bad = np.argwhere(~cond)[0]
    i = int(bad[0])
    t = int(bad[1]) if len(bad) > 1 else None
    where = f"device {i} at bus {buses[i]}" + (f", hour {t}" if t is not None else "")
    val = values[tuple(bad)] if np.ndim(values) else values
    raise InputError(f"device group '{group}', {where}, field '{field_name}' = {val!r}: {rule}")


@dataclass
class DeviceGroup:
    """Devices with box-bounded active/reactive power and an optional apparent-power circle.

    Constraints (per device i and hour t)::

        p_min[i,t] ≤ p[i,t] ≤ p_max[i,t]            [kW]
        q_min[i,t] ≤ q[i,t] ≤ q_max[i,t]            [kvar]
        p[i,t]² + q[i,t]² ≤ s_max[i,t]²             [kVA]   (only if s_max is given)

    A PV plant with availability ``a[t]`` (kW) and inverter rating ``S`` (kVA) is
    ``p_min = −a, p_max = −a`` (must-take) or ``p_min = −a, p_max = 0`` (curtailable),
    ``q_min = −S, q_max = S``, ``s_max = S``: its reactive range is then
    ``|q| ≤ sqrt(S² − p²)``.

    ``energy_cost`` [objective kWh per kWh, dimensionless] adds ``energy_cost · Σ_t Σ_i p[i,t] · Δt``
    to the objective. For a curtailable generator (``p_min = −a``, ``p_max = 0``) this is,
    up to the constant ``energy_cost · Σ a · Δt``, the price of the curtailed energy
    ``Σ (a + p) · Δt`` [kWh] (see :func:`evsched.scenarios.renewable_groups`).
    """

    name: str
    buses: np.ndarray
    p_min_kw: np.ndarray
    p_max_kw: np.ndarray
    q_min_kvar: np.ndarray | float = 0.0
    q_max_kvar: np.ndarray | float = 0.0
    s_max_kva: np.ndarray | float | None = None
    kind: str = "device"
    energy_cost: float = 0.0
    T: int = field(init=False)

    def __post_init__(self):
        self.buses = np.atleast_1d(np.asarray(self.buses))
        n = len(self.buses)
        p_min = np.asarray(self.p_min_kw, dtype=float)
        T = p_min.shape[1] if p_min.ndim == 2 else np.asarray(self.p_max_kw, dtype=float).shape[-1] \
            if np.ndim(self.p_max_kw) == 2 else 1
        self.T = T
        self.p_min_kw = _as_matrix(self.p_min_kw, n, T, f"{self.name}.p_min_kw")
        self.p_max_kw = _as_matrix(self.p_max_kw, n, T, f"{self.name}.p_max_kw")
        self.q_min_kvar = _as_matrix(self.q_min_kvar, n, T, f"{self.name}.q_min_kvar")
        self.q_max_kvar = _as_matrix(self.q_max_kvar, n, T, f"{self.name}.q_max_kvar")
        if self.s_max_kva is not None:
            self.s_max_kva = _as_matrix(self.s_max_kva, n, T, f"{self.name}.s_max_kva")
        self.energy_cost = float(self.energy_cost)
        self.validate()

    @property
    def n(self) -> int:
        return len(self.buses)

    def validate(self) -> None:
        """Finite data, ``p_min ≤ p_max``, ``q_min ≤ q_max``, ``s_max ≥ 0`` and the box
        intersecting the circle (``|p_min|`` or ``|p_max|`` reachable within ``s_max``)."""
        for f in ("p_min_kw", "p_max_kw", "q_min_kvar", "q_max_kvar"):
            v = getattr(self, f)
            _check(np.isfinite(v), self.name, f, self.buses, v, "must be finite")
        if not (np.isfinite(self.energy_cost) and 0.0 <= self.energy_cost <= 10.0):
            raise InputError(f"device group '{self.name}', field 'energy_cost' = {self.energy_cost}: "
                             "must be a number in [0, 10] (objective kWh per kWh)")
        _check(self.p_min_kw <= self.p_max_kw + 1e-9, self.name, "p_min_kw", self.buses,
               self.p_min_kw, "must be ≤ p_max_kw of the same device and hour")
        _check(self.q_min_kvar <= self.q_max_kvar + 1e-9, self.name, "q_min_kvar", self.buses,
               self.q_min_kvar, "must be ≤ q_max_kvar of the same device and hour")
        if self.s_max_kva is not None:
            s = self.s_max_kva
            _check(np.isfinite(s) & (s >= 0), self.name, "s_max_kva", self.buses, s,
                   "must be a finite number ≥ 0 kVA")
            p_closest = np.clip(0.0, self.p_min_kw, self.p_max_kw)
            _check(np.abs(p_closest) <= s + 1e-9, self.name, "s_max_kva", self.buses, s,
                   "the active-power range lies outside the apparent-power rating "
                   "(need min |p| ≤ s_max)")

    @property
    def has_reactive(self) -> bool:
        return bool(np.any(self.q_max_kvar > self.q_min_kvar) or np.any(self.q_min_kvar != 0))


@dataclass
class StorageGroup:
    """Energy-constrained devices: EV charging stations (aggregated) or individual EVs.

    Variables: charge power ``p_ch ≥ 0`` and discharge power ``p_dis ≥ 0`` [kW]; net grid
    power ``p = p_ch − p_dis`` (load convention); optionally reactive power ``q`` [kvar].
    Energy at the **end** of step t [kWh]::

        E[i,t] = E0[i] + Δt · Σ_{τ ≤ t} ( η_c[i]·p_ch[i,τ] − p_dis[i,τ]/η_d[i] )
        E_min[i,t] ≤ E[i,t] ≤ E_max[i,t]
        0 ≤ p_ch[i,t] ≤ p_ch_max[i,t],   0 ≤ p_dis[i,t] ≤ p_dis_max[i,t]
        p_ch[i,t] + p_dis[i,t] ≤ p_total_max[i,t]             (if given: charger time-sharing)
        (p_ch − p_dis)² + q² ≤ s_max²                         (if reactive)

    ``p_total_max_kw`` matters: with separate charge and discharge bounds only, a
    loss-minimising OPF may charge and discharge at once and burn surplus energy in the
    converters (which the network loss does not count). A charger serves one direction at a
    time, so for one EV ``p_total_max = charger_kw × presence``; for a station the sum of its
    plugged-in chargers' ratings.

    For a station aggregate, ``E`` is the net energy delivered to the plugged-in fleet since
    the start of the horizon, and ``E_min``/``E_max`` the cumulative envelope built from
    arrivals, departures and their energy needs (see :mod:`evsched.aggregation`).
    """

    name: str
    buses: np.ndarray
    p_charge_max_kw: np.ndarray
    p_discharge_max_kw: np.ndarray
    energy_min_kwh: np.ndarray
    energy_max_kwh: np.ndarray
    energy_initial_kwh: np.ndarray | float = 0.0
    eta_charge: np.ndarray | float = 0.95
    eta_discharge: np.ndarray | float = 0.95
    s_max_kva: np.ndarray | float | None = None
    reactive: bool = False
    kind: str = "ev_station"
    p_total_max_kw: np.ndarray | float | None = None
    active: np.ndarray | None = None
    T: int = field(init=False)

    def __post_init__(self):
        self.buses = np.atleast_1d(np.asarray(self.buses))
        n = len(self.buses)
        self.T = T = np.asarray(self.energy_min_kwh, dtype=float).reshape(n, -1).shape[1]
        self.p_charge_max_kw = _as_matrix(self.p_charge_max_kw, n, T, f"{self.name}.p_charge_max_kw")
        self.p_discharge_max_kw = _as_matrix(self.p_discharge_max_kw, n, T, f"{self.name}.p_discharge_max_kw")
        self.energy_min_kwh = _as_matrix(self.energy_min_kwh, n, T, f"{self.name}.energy_min_kwh")
        self.energy_max_kwh = _as_matrix(self.energy_max_kwh, n, T, f"{self.name}.energy_max_kwh")
        self.energy_initial_kwh = _as_matrix(self.energy_initial_kwh, n, 1, f"{self.name}.energy_initial_kwh")[:, 0]
        self.eta_charge = _as_matrix(self.eta_charge, n, 1, f"{self.name}.eta_charge")[:, 0]
        self.eta_discharge = _as_matrix(self.eta_discharge, n, 1, f"{self.name}.eta_discharge")[:, 0]
        if self.s_max_kva is not None:
            self.s_max_kva = _as_matrix(self.s_max_kva, n, T, f"{self.name}.s_max_kva")
        if self.p_total_max_kw is not None:
            self.p_total_max_kw = _as_matrix(self.p_total_max_kw, n, T, f"{self.name}.p_total_max_kw")
        if self.active is not None:
            self.active = np.asarray(self.active, dtype=bool)
            if self.active.shape != (n, T):
                raise InputError(f"device group '{self.name}': active has shape {self.active.shape}, "
                                 f"expected ({n}, {T})")
        if self.reactive and self.s_max_kva is None:
            raise InputError(f"device group '{self.name}': reactive=True needs s_max_kva "
                             "(the chargers' apparent-power rating)")
        self.validate()

    @property
    def n(self) -> int:
        return len(self.buses)

    def active_mask(self) -> np.ndarray:
        """(n, T) bool: the (device, step) pairs where the device may exchange power
        (``p_ch_max > 0``, ``p_dis_max > 0`` or, if reactive, ``s_max > 0``).

        The optimiser creates power variables only there: an EV that is not plugged in has no
        variables at all, instead of variables pinned to zero by ``0 ≤ p ≤ 0`` (which a conic
        interior-point solver handles badly, and which made the per-EV model 3× slower)."""
        mask = (self.p_charge_max_kw > 0) | (self.p_discharge_max_kw > 0)
        if self.reactive:
            mask |= self.s_max_kva > 0
        if self.active is not None:
            return self.active
        return mask

    def validate(self) -> None:
        """Finite, non-negative power limits, ``E_min ≤ E_max``, efficiencies in (0, 1]."""
        for f in ("p_charge_max_kw", "p_discharge_max_kw", "p_total_max_kw"):
            v = getattr(self, f)
            if v is None:
                continue
            _check(np.isfinite(v) & (v >= 0), self.name, f, self.buses, v, "must be finite and ≥ 0 kW")
        for f in ("energy_min_kwh", "energy_max_kwh"):
            v = getattr(self, f)
            _check(np.isfinite(v), self.name, f, self.buses, v, "must be finite")
        _check(self.energy_min_kwh <= self.energy_max_kwh + 1e-9, self.name, "energy_min_kwh",
               self.buses, self.energy_min_kwh, "must be ≤ energy_max_kwh of the same device and hour")
        for f in ("eta_charge", "eta_discharge"):
            v = getattr(self, f)
            _check((v > 0) & (v <= 1), self.name, f, self.buses, v, "must be in (0, 1]")
        if self.s_max_kva is not None:
            s = self.s_max_kva
            _check(np.isfinite(s) & (s >= 0), self.name, "s_max_kva", self.buses, s,
                   "must be a finite number ≥ 0 kVA")
        if self.active is not None:
            need = (self.p_charge_max_kw > 0) | (self.p_discharge_max_kw > 0)
            if self.reactive:
                need = need | (self.s_max_kva > 0)
            _check(self.active | ~need, self.name, "active", self.buses, self.active,
                   "is False where a power limit is positive (the pattern must cover every "
                   "pair where the device may exchange power)")
