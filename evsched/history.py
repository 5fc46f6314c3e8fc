"""Feeder history: a year of bus-level load and renewable availability from SimBench classes.

Customer mix
------------
``data/profiles/customer_mix.csv`` gives, for every IEEE-33 load bus b, the share
:math:`w_{bc}` of its annual energy drawn by each SimBench load class c (households H0-*,
commercial G*-*); shares sum to 1 per bus. Each class profile :math:`x_c(t)` [p.u.] is
normalised to an annual mean of 1, :math:`\\tilde x_c = x_c / \\overline{x_c}`, and

.. math::

    p_b(t) = s \\, P^{nom}_b \\sum_c w_{bc} \\, \\tilde x_c(t) \\quad [kW],

with :math:`P^{nom}_b` the Baran & Wu nominal load and one feeder-wide factor :math:`s`
chosen so that the feeder's **hourly** yearly peak :math:`\\max_t \\sum_b p_b(t)` equals the
nominal 3715 kW (hourly values are means of the four 15-minute steps, i.e. energy-consistent).
Bus peaks do not coincide, so single buses can exceed their nominal load at their own peak.

Reactive power
--------------
Each class has a power factor: reference values :data:`REFERENCE_POWER_FACTOR` (households
0.95, commercial 0.90, typical for German LV customers) give the *relative* reactive
intensity :math:`\\tau_c = \\tan\\varphi_c^{ref}`. The IEEE-33 nominal point (3715 kW,
2300 kvar) implies a feeder power factor of 0.850, lower than either reference, so all
:math:`\\tan\\varphi_c = k\\,\\tau_c` share one factor :math:`k` chosen so that the yearly hourly
peak of :math:`q(t) = \\sum_b \\sum_c \\tan\\varphi_c \\, p_{bc}(t)` equals 2300 kvar. The
resulting class power factors (:attr:`Feeder.power_factor`: 0.885 for households, 0.790
for commercial classes) are the documented ones. As a consequence the reactive load is
distributed in proportion to each bus's class mix, not as in Baran & Wu's per-bus data
(e.g. bus 30's nominal 600 kvar becomes about 112 kvar at the feeder peak); feeder totals match.

Renewables
----------
SimBench PV*/WP* profiles are already per unit of installed capacity; a *site* maps to one
profile (:data:`RENEWABLE_SITES`: generic shapes ``pv`` → PV3, ``wt`` → WP4).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import input_error
from evsched.network import load_ieee33
from evsched.paths import DATA, rel
from evsched.profiles import is_load_column, load_profiles

MIX_FILE = DATA / "profiles" / "customer_mix.csv"
P_PEAK_KW = 3715.0
Q_PEAK_KVAR = 2300.0
#: Reference power factor per class prefix (first letter of the SimBench class name).
REFERENCE_POWER_FACTOR = {"H": 0.95, "G": 0.90, "L": 0.90}
#: Generic renewable sites → SimBench profile column (availability in p.u. of installed kW).
RENEWABLE_SITES = {"pv": "PV3", "wt": "WP4"}


def _source(path) -> str:
    return rel(path)


def read_customer_mix(path=None, *, classes=None, buses=None) -> pd.DataFrame:
    """Read and validate the customer mix (tidy: ``bus, zone, profile, energy_share``).

    Rules: shares in (0, 1]; they sum to 1 (±1e-9) per bus; a bus appears in one zone;
    every profile is one of ``classes`` (if given); every bus in ``buses`` (if given) with a
    nominal load is present and no other bus.
    """
    path = MIX_FILE if path is None else Path(path)
    src = _source(path)
    mix = pd.read_csv(path)
    need = ["bus", "zone", "profile", "energy_share"]
    missing = [c for c in need if c not in mix.columns]
    if missing:
        raise input_error(src, "header", missing[0], list(mix.columns), f"columns {need} are required")
    for i, r in mix.iterrows():
        if not (0 < r.energy_share <= 1):
            raise input_error(src, f"line {i + 2} (bus {r.bus})", "energy_share", r.energy_share,
                              "must lie in (0, 1]")
        if classes is not None and r.profile not in classes:
            raise input_error(src, f"line {i + 2} (bus {r.bus})", "profile", r.profile,
                              f"unknown load profile; available: {sorted(classes)}")
    tot = mix.groupby("bus")["energy_share"].sum()
    bad = tot[(tot - 1).abs() > 1e-9]
    if len(bad):
        raise input_error(src, f"bus {bad.index[0]}", "energy_share", float(bad.iloc[0]),
                          "shares of a bus must sum to 1")
    if buses is not None:
        extra = sorted(set(mix.bus) - set(buses))
        absent = sorted(set(buses) - set(mix.bus))
        if extra or absent:
            b = (extra or absent)[0]
            raise input_error(src, f"bus {b}", "bus", b, "every load bus of the network needs a mix "
                              "and no other bus may have one" + (f" (missing: {absent})" if absent else ""))
    return mix


@dataclass
class Feeder:
    """Bus loads as a linear map of normalised class profiles.

    Attributes
    ----------
    buses : ndarray of bus ids (1..33; the substation bus 1 has zero coefficients)
    classes : list of SimBench load-class columns
    p_coef_kw : DataFrame (bus × class), :math:`s P^{nom}_b w_{bc}` [kW per unit of
        normalised class profile], so ``p_kw(t) = p_coef_kw @ x̃(t)``
    q_coef_kvar : DataFrame (bus × class), ``p_coef_kw * tan φ_c`` [kvar per unit]
    power_factor : Series class → power factor (after calibration to 2300 kvar)
    class_15min : DataFrame (time × class) normalised class profiles x̃ (annual mean 1), CET
    class_hourly : DataFrame (time × class) hourly means of ``class_15min``
    scale : s, the feeder-wide factor (dimensionless)
    """

    buses: np.ndarray
    classes: list
    p_coef_kw: pd.DataFrame
    q_coef_kvar: pd.DataFrame
    power_factor: pd.Series
    class_15min: pd.DataFrame
    class_hourly: pd.DataFrame
    scale: float

    def bus_load(self, class_values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Map normalised class values (rows × class) to ``(p_kw, q_kvar)`` frames (rows × bus)."""
        x = class_values[self.classes].to_numpy()
        p = pd.DataFrame(x @ self.p_coef_kw.to_numpy().T, index=class_values.index, columns=self.buses)
        q = pd.DataFrame(x @ self.q_coef_kvar.to_numpy().T, index=class_values.index, columns=self.buses)
        return p, q

    def feeder_load(self, class_values: pd.DataFrame) -> pd.DataFrame:
        """Feeder totals ``p_kw, q_kvar`` for normalised class values (rows × class)."""
        x = class_values[self.classes].to_numpy()
        return pd.DataFrame({"p_kw": x @ self.p_coef_kw.sum().to_numpy(),
                             "q_kvar": x @ self.q_coef_kvar.sum().to_numpy()}, index=class_values.index)


def hourly(df: pd.DataFrame) -> pd.DataFrame:
    """Hourly means of a 15-minute frame (hour-beginning labels); requires whole hours."""
    if len(df) % 4 or df.index[0].minute != 0:
        raise input_error("<profiles>", f"timestamp {df.index[0]}", "time", len(df),
                          "hourly aggregation needs whole hours of 4 × 15-minute steps")
    return df.resample("1h").mean()


def build_feeder(profiles: pd.DataFrame | None = None, mix: pd.DataFrame | None = None,
                 network=None, p_peak_kw: float = P_PEAK_KW, q_peak_kvar: float = Q_PEAK_KVAR) -> Feeder:
    """Calibrate the :class:`Feeder` (see module docstring for the maths).

    Parameters
    ----------
    profiles : validated 15-minute profile frame (default :func:`evsched.profiles.load_profiles`)
    mix : customer mix (default :func:`read_customer_mix`)
    network : :class:`evsched.network.Network` (default IEEE-33)
    p_peak_kw, q_peak_kvar : yearly hourly feeder peaks to calibrate to [kW], [kvar]
    """
    profiles = load_profiles() if profiles is None else profiles
    network = load_ieee33() if network is None else network
    classes_all = [c for c in profiles.columns if is_load_column(c)]
    nominal = network.buses.set_index("bus")["p_kw"]
    load_buses = nominal.index[nominal > 0].tolist()
    mix = read_customer_mix(classes=classes_all, buses=load_buses) if mix is None else mix
    classes = [c for c in classes_all if c in set(mix.profile)]
    x15 = profiles[classes] / profiles[classes].mean()
    xh = hourly(x15)
    w = mix.pivot_table(index="bus", columns="profile", values="energy_share", fill_value=0.0)
    w = w.reindex(index=nominal.index, columns=classes, fill_value=0.0)
    base = w.mul(nominal, axis=0)  # P_nom,b * w_bc  [kW]
    scale = p_peak_kw / float((xh.to_numpy() @ base.sum().to_numpy()).max())
    p_coef = base * scale
    tau = np.array([np.tan(np.arccos(REFERENCE_POWER_FACTOR[c[0]])) for c in classes])
    k = q_peak_kvar / float((xh.to_numpy() @ (p_coef.sum().to_numpy() * tau)).max())
    tan_phi = k * tau
    q_coef = p_coef * tan_phi
    pf = pd.Series(np.cos(np.arctan(tan_phi)), index=classes, name="power_factor")
    return Feeder(buses=nominal.index.to_numpy(), classes=classes, p_coef_kw=p_coef,
                  q_coef_kvar=q_coef, power_factor=pf, class_15min=x15, class_hourly=xh, scale=scale)


def bus_history(feeder: Feeder, resolution: str = "1h") -> pd.DataFrame:
    """Tidy bus-level history ``time, bus, p_kw, q_kvar`` at ``'1h'`` or ``'15min'``."""
    x = {"1h": feeder.class_hourly, "15min": feeder.class_15min}.get(resolution)
    if x is None:
        raise input_error("bus_history", "argument", "resolution", resolution, "must be '1h' or '15min'")
    p, q = feeder.bus_load(x)
    out = p.stack().rename("p_kw").to_frame()
    out["q_kvar"] = q.stack().to_numpy()
    out.index.names = ["time", "bus"]
    return out.reset_index()


def feeder_history(feeder: Feeder, resolution: str = "1h") -> pd.DataFrame:
    """Feeder totals ``p_kw, q_kvar`` indexed by time, at ``'1h'`` or ``'15min'``."""
    x = feeder.class_hourly if resolution == "1h" else feeder.class_15min
    return feeder.feeder_load(x)


def renewable_history(profiles: pd.DataFrame | None = None, sites: dict | None = None,
                      resolution: str = "1h") -> pd.DataFrame:
    """Availability per kW installed [p.u.], frame (time × site), hourly means or 15-minute."""
    profiles = load_profiles() if profiles is None else profiles
    sites = RENEWABLE_SITES if sites is None else sites
    for site, col in sites.items():
        if col not in profiles.columns:
            raise input_error("renewable sites", f"site '{site}'", "profile", col,
                              f"not a column of the profiles; available: {list(profiles.columns)}")
    df = profiles[list(sites.values())].set_axis(list(sites), axis=1)
    return hourly(df) if resolution == "1h" else df
