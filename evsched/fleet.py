"""Seeded synthetic EV fleet: one reservation per EV, written in the :mod:`evsched.reservations` schema.

Defaults reproduce the paper's fleet size (500 EVs × 50 kWh, all reserving) with
distributions seen in comparable published EV-scheduling studies:

* **home (overnight) EVs** (share ``home_share``): arrival ~ N(18, 2²) h, departure
  ~ N(8, 2²) h the next morning — the private-car pattern;
* **workplace (daytime) EVs**: arrival ~ N(9, 2²) h, departure ~ N(17, 2²) h — commuters;
* arrival SOC ~ U(0.4, 0.6) for both;
* departure need: home U(0.8, 0.9), workplace U(0.4, 0.7) (our assumption: a commuter only
  needs the trip home, so some arrive with more than they need and can sell energy);
* 7 kW chargers (the 6.6-7 kW slow class), apparent-power rating 1.1 × 7 = 7.7 kVA (the
  1.1 inverter oversizing seen for PV), one-way efficiency 0.95, SOC window [0.3, 0.9]
  (the battery window 0.15-0.9 of the literature, with a 0.3 floor owners allow V2G to use).

Times are drawn in hours, wrapped to the clock (mod 24), then rounded to ``resolution_h``.
A stay shorter than ``min_stay_h`` is lengthened to ``min_stay_h``; a departure need above
what the charger can deliver in the stay is lowered to that maximum (so every generated row
passes validation; the counts of both adjustments are in ``fleet.attrs``).

**TOU response.** Owners see the day's TOU periods: a willingness to discharge (V2G) is only
offered by owners whose stay covers at least one peak hour (a discharge offer covers peak
hours); of those, a share ``v2g_share`` is willing. A willing owner who needs no energy
(``soc_departure_min ≤ soc_arrival``) reserves ``'discharge'`` (discharge only), otherwise
``'both'``. Everyone else reserves ``'charge'``; a charge reservation's window is the stay,
which for home EVs covers the night valley. Peak hours come from a TOU frame
(``hour, period, price_per_kwh``; periods 'peak' and 'sharp_peak') or the placeholder
:data:`DEFAULT_PEAK_HOURS`.

**Location and station.** Each EV's bus is drawn among the load buses with probability
proportional to nominal demand ``p_kw`` (a proxy for where people live and work); it reserves
at the nearest station (the paper uses proximity only) by along-feeder distance — the sum of
branch impedance magnitudes ``|r + jx|`` [Ω] on the path — or by straight-line distance
between bus coordinates (``station_distance="euclidean"``). Ties go to the lower station id.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from evsched.errors import InputError, input_error
from evsched.reservations import COLUMNS, _plain, check_station_buses
from evsched.schema import defaults as _schema_defaults

_D = _schema_defaults()
DEFAULT_STATION_BUSES = tuple(_D["station_buses"])
"""Default station buses: 14 on the main feeder's weak tail (13-18 sit lowest in voltage;
bus 14 is a loss-optimal DG site in the 33-bus literature), 22 at the end of the 19-22
lateral (electrically close to the substation: a contrast site) and 30 on the 26-33 branch
(largest reactive load, 600 kvar, and the other classic loss-optimal site)."""

DEFAULT_PEAK_HOURS = (9, 10, 11, 17, 18, 19, 20, 21)
"""Placeholder peak hours until the TOU module supplies the day's periods."""

PEAK_PERIODS = ("peak", "sharp_peak")


@dataclass
class FleetConfig:
    """Parameters of :func:`generate_fleet`. Defaults, units, ranges, rules and documentation
    are those of :class:`evsched.schema.Fleet` (and ``station_buses`` of
    :class:`evsched.schema.Sites`), checked by :meth:`validate`; ``evsched params`` lists them."""

    n_evs: int = _D["n_evs"]
    fleet_seed: int = _D["fleet_seed"]
    battery_kwh: float = _D["battery_kwh"]
    charger_kw: float = _D["charger_kw"]
    charger_kva: float = _D["charger_kva"]
    efficiency: float = _D["efficiency"]
    home_share: float = _D["home_share"]
    home_arrival_mean_h: float = _D["home_arrival_mean_h"]
    home_arrival_std_h: float = _D["home_arrival_std_h"]
    home_departure_mean_h: float = _D["home_departure_mean_h"]
    home_departure_std_h: float = _D["home_departure_std_h"]
    work_arrival_mean_h: float = _D["work_arrival_mean_h"]
    work_arrival_std_h: float = _D["work_arrival_std_h"]
    work_departure_mean_h: float = _D["work_departure_mean_h"]
    work_departure_std_h: float = _D["work_departure_std_h"]
    soc_arrival_low: float = _D["soc_arrival_low"]
    soc_arrival_high: float = _D["soc_arrival_high"]
    home_soc_departure_low: float = _D["home_soc_departure_low"]
    home_soc_departure_high: float = _D["home_soc_departure_high"]
    work_soc_departure_low: float = _D["work_soc_departure_low"]
    work_soc_departure_high: float = _D["work_soc_departure_high"]
    soc_min: float = _D["soc_min"]
    soc_max: float = _D["soc_max"]
    v2g_share: float = _D["v2g_share"]
    station_buses: tuple = DEFAULT_STATION_BUSES
    station_distance: str = _D["station_distance"]
    resolution_h: float = _D["resolution_h"]
    min_stay_h: float = _D["min_stay_h"]
    peak_hours: tuple = DEFAULT_PEAK_HOURS  # clock hours 0..23 of the TOU peak

    def __post_init__(self):
        self.station_buses = _int_tuple(self.station_buses)
        self.peak_hours = _int_tuple(self.peak_hours)

    @classmethod
    def from_params(cls, source: str = "parameters", **params) -> "FleetConfig":
        """Build from keyword parameters (notebook / YAML names), rejecting unknown names."""
        known = {f.name for f in fields(cls)}
        for k in params:
            if k not in known:
                raise input_error(source, "fleet parameters", k, params[k],
                                  f"unknown parameter; known: {sorted(known)}")
        cfg = cls(**params)
        cfg.validate(source)
        return cfg

    def with_tou(self, tou: pd.DataFrame) -> "FleetConfig":
        """A copy whose peak hours are the 'peak'/'sharp_peak' hours of a TOU frame."""
        return FleetConfig(**{**asdict(self), "peak_hours": peak_hours_from_tou(tou)})

    def validate(self, source: str = "fleet parameters") -> "FleetConfig":
        """Raise :class:`InputError` naming every parameter outside its range or rule
        (:mod:`evsched.schema`), or peak hours that are not whole clock hours."""
        from evsched.schema import validate as validate_params

        validate_params({f.name: getattr(self, f.name) for f in fields(self) if f.name != "peak_hours"},
                        source=source, where="fleet parameters")
        if not all(isinstance(h, (int, np.integer)) and not isinstance(h, (bool, np.bool_)) and 0 <= h < 24
                   for h in self.peak_hours):
            raise input_error(source, "fleet parameters", "peak_hours",
                              tuple(_plain(v) for v in self.peak_hours), "must be whole clock hours 0..23")
        return self


def _int_tuple(values) -> tuple:
    """Whole numbers as a tuple of int; anything else is kept as given (``validate`` names it)."""
    vals = tuple(_plain(v) for v in np.atleast_1d(np.asarray(values, dtype=object)))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
           and float(v).is_integer() for v in vals):
        return tuple(int(v) for v in vals)
    return vals


def peak_hours_from_tou(tou: pd.DataFrame) -> tuple:
    """Clock hours whose TOU ``period`` is 'peak' or 'sharp_peak' (frame ``hour, period, ...``)."""
    for c in ("hour", "period"):
        if c not in tou.columns:
            raise input_error("TOU table", "header", c, None, "required column missing")
    hours = pd.to_numeric(tou["hour"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        bad = ~((hours == np.round(hours)) & (hours >= 0) & (hours <= 23))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise input_error("TOU table", f"row {i + 1}", "hour", _plain(tou["hour"].iloc[i]),
                          "must be a whole clock hour 0..23")
    peak = tou["period"].isin(PEAK_PERIODS).to_numpy()
    return tuple(sorted(int(h) for h in hours[peak]))


# --- distances and station assignment ---------------------------------------------------------
def feeder_distance_ohm(network) -> np.ndarray:
    """Along-feeder distance between every pair of buses [Ω]: ``D(u) + D(v) − 2·D(lca(u, v))``
    with ``D`` the sum of branch ``|r + jx|`` from the substation (internal bus order)."""
    par, bo = network.parent, network.branch_of_bus
    z = np.hypot(network.r_pu, network.x_pu) * network.z_base_ohm
    depth_from_slack = np.zeros(network.n_bus)
    for i in network.depth_order():  # parents come first
        if par[i] >= 0:
            depth_from_slack[i] = depth_from_slack[par[i]] + z[bo[i]]
    # ancestor indicator A[i, k] = 1 if k is on the path slack → i
    anc = np.zeros((network.n_bus, network.n_bus), dtype=bool)
    for i in range(network.n_bus):
        anc[i, network.bus_index(network.path_to(network.bus_ids[i]))] = True
    common = anc[:, None, :] & anc[None, :, :]
    d_lca = np.where(common, depth_from_slack[None, None, :], -np.inf).max(axis=2)
    return depth_from_slack[:, None] + depth_from_slack[None, :] - 2 * d_lca


def nearest_station(network, buses, station_buses, distance: str = "feeder") -> np.ndarray:
    """Station bus id nearest to each bus id in ``buses`` (ties → lower station id)."""
    stations = np.array(sorted(int(s) for s in station_buses))
    bi, si = network.bus_index(np.asarray(buses)), network.bus_index(stations)
    if distance == "feeder":
        d = feeder_distance_ohm(network)[np.ix_(bi, si)]
    elif distance == "euclidean":
        xy = network.buses[["x", "y"]].to_numpy(float)
        d = np.hypot(xy[bi, None, 0] - xy[None, si, 0], xy[bi, None, 1] - xy[None, si, 1])
    else:
        raise InputError(f"distance must be 'feeder' or 'euclidean', got {distance!r}")
    return stations[np.argmin(d, axis=1)]


# --- the generator ---------------------------------------------------------------------------
def generate_fleet(network, config: FleetConfig | None = None, tou: pd.DataFrame | None = None,
                   **overrides) -> pd.DataFrame:
    """Draw a fleet of reservations (one row per EV, :data:`evsched.reservations.COLUMNS`).

    Parameters
    ----------
    network : the feeder (bus ids, loads for location weights, coordinates/impedances)
    config : :class:`FleetConfig` (default: the paper's fleet); ``overrides`` replace fields
    tou : optional TOU frame ``hour, period, price_per_kwh``; its peak hours replace
        ``config.peak_hours``

    Returns
    -------
    DataFrame in the reservation schema, ``attrs`` holding the config and adjustment counts.
    Deterministic: the same config gives the same frame (and CSV, :func:`write_fleet`).
    """
    cfg = FleetConfig(**{**asdict(config or FleetConfig()), **overrides})
    if tou is not None:
        cfg = cfg.with_tou(tou)
    cfg.validate()
    check_station_buses(network, cfg.station_buses, "fleet parameters")  # on the network, not bus 1
    rng = np.random.default_rng(cfg.fleet_seed)
    n = cfg.n_evs
    # fixed draw order (determinism): segment, times, SOCs, location, willingness
    home = rng.random(n) < cfg.home_share
    z = rng.standard_normal((4, n))
    u = rng.random((3, n))
    arr = np.where(home, cfg.home_arrival_mean_h + cfg.home_arrival_std_h * z[0],
                   cfg.work_arrival_mean_h + cfg.work_arrival_std_h * z[1])
    dep = np.where(home, cfg.home_departure_mean_h + cfg.home_departure_std_h * z[2],
                   cfg.work_departure_mean_h + cfg.work_departure_std_h * z[3])
    res = cfg.resolution_h
    arr = np.mod(np.round(np.mod(arr, 24) / res) * res, 24)
    dep = np.mod(np.round(np.mod(dep, 24) / res) * res, 24)
    stay = np.mod(dep - arr, 24)
    short = stay < cfg.min_stay_h - 1e-9
    stay = np.where(short, cfg.min_stay_h, stay)
    dep = np.mod(arr + stay, 24)
    dep_day = (arr + stay >= 24 - 1e-9).astype(int)

    soc_a = np.round(cfg.soc_arrival_low + (cfg.soc_arrival_high - cfg.soc_arrival_low) * u[0], 3)
    lo = np.where(home, cfg.home_soc_departure_low, cfg.work_soc_departure_low)
    hi = np.where(home, cfg.home_soc_departure_high, cfg.work_soc_departure_high)
    soc_d = np.round(lo + (hi - lo) * u[1], 3)
    # cap the need at what the charger delivers in the stay (rounded down to 0.001 SOC)
    soc_cap = soc_a + np.floor(cfg.efficiency * cfg.charger_kw * stay / cfg.battery_kwh * 1000) / 1000
    capped = soc_d > soc_cap + 1e-12
    soc_d = np.round(np.minimum(soc_d, soc_cap), 3)

    load_buses = network.buses.loc[network.buses["p_kw"] > 0, ["bus", "p_kw"]]
    if load_buses.empty:
        raise InputError(f"network '{network.name}', field 'p_kw': no bus has a load > 0 kW, so "
                         "there is nowhere to place the EVs (they are drawn in proportion to p_kw)")
    w = load_buses["p_kw"].to_numpy(float)
    bus = load_buses["bus"].to_numpy()[np.searchsorted(np.cumsum(w) / w.sum(), u[2], side="right")]
    station = nearest_station(network, bus, cfg.station_buses, cfg.station_distance)

    willing = rng.random(n) < cfg.v2g_share
    covers_peak = _covers_hours(arr, arr + stay, cfg.peak_hours)
    v2g = willing & covers_peak
    mode = np.where(v2g, np.where(soc_d <= soc_a, "discharge", "both"), "charge")

    width = len(str(n))
    fleet = pd.DataFrame({
        "ev_id": [f"EV{i + 1:0{max(width, 3)}d}" for i in range(n)],
        "bus": bus.astype(int), "station": station.astype(int),
        "arrival_hour": arr, "departure_hour": dep, "departure_day": dep_day,
        "mode": mode, "battery_kwh": float(cfg.battery_kwh),
        "soc_arrival": soc_a, "soc_departure_min": soc_d,
        "soc_min": float(cfg.soc_min), "soc_max": float(cfg.soc_max),
        "charger_kw": float(cfg.charger_kw), "charger_kva": float(cfg.charger_kva),
        "efficiency": float(cfg.efficiency),
    })[COLUMNS]
    fleet.attrs.update(config=asdict(cfg), n_stay_lengthened=int(short.sum()),
                       n_need_capped=int(capped.sum()), n_home=int(home.sum()))
    return fleet


def _covers_hours(start: np.ndarray, end: np.ndarray, hours) -> np.ndarray:
    """True where the interval [start, end) (end may exceed 24) overlaps any clock hour in ``hours``."""
    if not len(hours):
        return np.zeros(len(start), dtype=bool)
    h = np.asarray(hours, dtype=float)
    h = np.concatenate([h, h + 24])  # the next day's copy for overnight stays
    return ((start[:, None] < h[None, :] + 1) & (end[:, None] > h[None, :])).any(axis=1)


def write_fleet(fleet: pd.DataFrame, path) -> None:
    """Write a fleet CSV byte-for-byte reproducibly (fixed float format, ``\\n`` line ends)."""
    fleet[COLUMNS].to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def fleet_summary(fleet: pd.DataFrame) -> pd.DataFrame:
    """EVs per station and mode (a ``station × mode`` count table with totals)."""
    return (pd.crosstab(fleet["station"], fleet["mode"], margins=True, margins_name="total")
            .reindex(columns=[m for m in ("charge", "both", "discharge", "total")
                              if m in set(fleet["mode"]) | {"total"}]))
