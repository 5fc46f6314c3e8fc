"""The study case: validated parameters (:class:`Case`) and the data they produce (:class:`CaseData`).

A :class:`Case` holds what a run may change (read from ``params/default.yaml`` and overridden
by notebook parameters): station, PV and wind-turbine buses, capacities, inverter ratings,
voltage limits, target day, fleet seed. :func:`build_case` turns it into the arrays every
scenario uses, on **one** forecast day and **one** fleet:

* base load ``load_p_kw``, ``load_q_kvar`` (bus × step) — the day-ahead forecast
  (:mod:`evsched.forecast`);
* PV and WT availability ``pv_avail_kw``, ``wt_avail_kw`` (site × step) = capacity ×
  forecast availability per unit;
* the TOU table ``hour, period, price_per_kwh`` (:mod:`evsched.tou`; whole clock hours at
  either resolution);
* the reservations (one row per EV, :mod:`evsched.fleet`) and each station's aggregated
  envelope (:mod:`evsched.aggregation`).

The choice of buses and capacities is justified in ``data/case/README.md``.

Time grid: the run parameter ``resolution_min`` (60 or 15) sets the step ``dt_h`` (1 or 0.25 h)
and ``hours`` (0..23, or 0, 0.25, ..., 23.75: each step's start hour), shared by the forecast,
the sessions and envelopes, the OPF (24 or 96 steps) and every result table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import InputError
from evsched.network import Network
from evsched.paths import PARAMS
from evsched.schema import FLAT, TOPICS, Params
from evsched.sessions import build_sessions

DEFAULT_PARAMS = PARAMS / "default.yaml"
FORECAST_KEYS = set(TOPICS["forecast"].model_fields)
"""Parameters of :func:`evsched.forecast.day_ahead` (topic ``forecast`` of :mod:`evsched.schema`)."""


class Case(Params):
    """Validated case parameters: the topics of :class:`evsched.schema.Params` (``limits``,
    ``forecast``, ``tou``, ``sites``, ``fleet``, ``opf``, ``study``).

    Every parameter is also readable flat (``case.v_min_pu``, ``case.station_buses``); the
    topics are read-only mappings (``tou.check_params(**case.tou)``,
    ``FleetConfig.from_params(**case.fleet)``); :attr:`opf_options` is what the OPF model
    takes; ``case.model_copy(update={...})`` takes flat keys and is validated. Units, ranges,
    defaults and documentation: :mod:`evsched.schema` (``evsched params``).
    """

    def check_network(self, network: Network) -> None:
        """Every bus of the case exists and none is the substation."""
        valid = set(int(b) for b in network.bus_ids)
        for key in ("station_buses", "pv_buses", "wt_buses"):
            for b in getattr(self, key):
                if b not in valid or b == int(network.slack_bus):
                    raise InputError(
                        f"case parameter '{key}' = {getattr(self, key)}: bus {b} must be a "
                        f"non-substation bus of '{network.name}' "
                        f"({min(valid - {int(network.slack_bus)})}..{max(valid)})")


def load_case(path: str | Path | None = DEFAULT_PARAMS, **overrides) -> Case:
    """Read a YAML parameter file, apply ``overrides`` (flat keys), validate.

    Every key is a parameter of :mod:`evsched.schema` (an unknown key in the file or in
    ``overrides`` is an error); a key the file leaves out takes the schema's default, which is
    the value in ``params/default.yaml``. Every range and cross-field rule is checked, and the
    target day against the forecast history (:func:`evsched.forecast.check_params`); errors
    name the file (or "notebook parameters" / "load_case overrides of <file>"), the
    parameter, its value and the allowed range. The file is read with
    :func:`evsched.yamlio.load_yaml_mapping` (duplicate keys, aliases, ... are errors);
    ``None`` overrides keep the file's value.
    """
    from evsched import forecast
    from evsched.params import rewrite_source
    from evsched.schema import suggest, validate
    from evsched.yamlio import load_yaml_mapping

    raw = {} if path is None else load_yaml_mapping(path)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = [k for k in overrides if k not in FLAT]
    if unknown:
        raise InputError(f"load_case: unknown case parameter(s) {unknown}{suggest(unknown[0])}; "
                         f"`evsched params` lists the {len(FLAT)} parameters")
    over_source = "notebook parameters" if path is None else f"load_case overrides of {path}"
    sources = {k: over_source if k in overrides else str(path) for k in {**raw, **overrides}}
    case = validate({**raw, **overrides}, source=over_source if path is None else str(path),
                    sources=sources, cls=Case)
    fc_source = over_source if path is None or FORECAST_KEYS & set(overrides) else str(path)
    with rewrite_source({"notebook parameters": fc_source}):
        forecast.check_params(**case.forecast)  # the target day inside the history
    return case


def _tou_keys() -> set:
    """Parameter names of :func:`evsched.tou.check_params` (topic ``tou`` of the schema)."""
    return set(TOPICS["tou"].model_fields)


def _fleet_keys() -> set:
    """Fleet parameters (topic ``fleet`` of the schema; the station buses are in ``sites``)."""
    return set(TOPICS["fleet"].model_fields)


@dataclass
class CaseData:
    """Everything the scenarios need, on one day (arrays are (element × hour), kW / kvar).

    Attributes
    ----------
    case : the validated parameters
    network : the feeder
    hours : start hour of every step (0..23 at ``resolution_min: 60``; 0, 0.25, ..., 23.75 at 15)
    load_p_kw, load_q_kvar : base load (bus × step) in network bus order
    pv_avail_kw, wt_avail_kw : renewable availability (site × step) [kW]
    tou : ``hour, period, price_per_kwh``
    reservations : one row per EV (schema of :mod:`evsched.reservations`)
    stations : :class:`evsched.aggregation.StationEnvelopes` (stations sorted by bus id)
    sessions : :class:`evsched.sessions.Sessions` (one per EV, two for an overnight stay), the
        exact per-EV model's devices
    dt_h : step length [h] (``resolution_min / 60``)
    sources : which evsched function produced each input (forecast, tou, fleet, aggregation)
    """

    case: Case
    network: Network
    hours: np.ndarray
    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    pv_avail_kw: np.ndarray
    wt_avail_kw: np.ndarray
    tou: pd.DataFrame
    reservations: pd.DataFrame
    stations: object  # StationEnvelopes
    sessions: object = None  # Sessions
    dt_h: float = 1.0
    sources: dict = field(default_factory=dict)

    @property
    def T(self) -> int:
        return len(self.hours)

    def device_table(self) -> pd.DataFrame:
        """One row per PV/WT site and EV station: ``device, bus, rated_kw, rating_kva,
        energy_kwh`` (for a station: peak connected charger power, peak connected kVA,
        and the net energy its EVs need over the day)."""
        c = self.case
        rows = [(k, b, cap, c.inverter_kva_ratio * cap, (avail.sum() * self.dt_h))
                for k, buses, caps, av in (("pv", c.pv_buses, c.pv_capacity_kw, self.pv_avail_kw),
                                           ("wt", c.wt_buses, c.wt_capacity_kw, self.wt_avail_kw))
                for b, cap, avail in zip(buses, caps, av)]
        env = self.stations
        for i, b in enumerate(env.stations):
            rows.append(("ev_station", int(b), float(env.p_charge_max_kw[i].max()),
                         float(env.s_max_kva[i].max()), float(env.energy_min_kwh[i, -1])))
        return pd.DataFrame(rows, columns=["device", "bus", "rated_kw", "rating_kva", "energy_kwh"])


def build_case(case: Case | None = None, network: Network | None = None) -> CaseData:
    """Forecast day, TOU table, fleet and station envelopes for ``case`` (default: the YAML)."""
    from evsched.feeders import load_network, plant_availability
    case = case or load_case()
    network = network or load_network(case.network)  # run parameter `network` (evsched.feeders)
    case.check_network(network)
    sources = {}
    load_p, load_q, ren, hours, sources["forecast"] = _forecast_day(case, network)
    pv_pu, wt_pu = ren.loc["pv"].to_numpy(float), ren.loc["wt"].to_numpy(float)
    tou, sources["tou"] = _tou_table(case, load_p, {"pv": pv_pu, "wt": wt_pu})
    res, sources["fleet"] = _fleet(case, network, tou)
    dt_h = case.resolution_min / 60
    sessions = build_sessions(res, dt_h=dt_h)
    stations, sources["aggregation"] = _stations(case, sessions, len(hours))
    # per plant: its own SimBench profile (site "pv@<bus>") where the feeder has one
    pv = np.asarray(case.pv_capacity_kw, float)[:, None] * plant_availability(ren, "pv", case.pv_buses)
    wt = np.asarray(case.wt_capacity_kw, float)[:, None] * plant_availability(ren, "wt", case.wt_buses)
    return CaseData(case=case, network=network, hours=hours, load_p_kw=load_p, load_q_kvar=load_q,
                    pv_avail_kw=pv, wt_avail_kw=wt, tou=tou, reservations=res, stations=stations,
                    sessions=sessions, dt_h=dt_h, sources=sources)


# --- inputs from the forecasting (issue 3) and reservations (issue 4) modules ----------------

def _forecast_day(case: Case, network: Network):
    """Bus load and renewable availability (site × hour frame) of
    :func:`evsched.forecast.day_ahead`, on the history of the case's feeder
    (:func:`evsched.feeders.feeder_history`)."""
    from evsched import forecast
    from evsched.feeders import feeder_history
    fc = case.forecast
    target = fc.target_day
    da = forecast.day_ahead(target, model=fc.forecast_model, train_days=fc.train_days,
                            renewable_window_days=fc.renewable_window_days,
                            backtest_days=fc.backtest_days, history=feeder_history(case.network),
                            resolution_min=fc.resolution_min)
    hours = np.sort(da.load["hour"].unique())
    p = da.load.pivot(index="bus", columns="hour", values="p_kw").reindex(network.bus_ids).fillna(0.0)
    q = da.load.pivot(index="bus", columns="hour", values="q_kvar").reindex(network.bus_ids).fillna(0.0)
    ren = da.renewables.pivot(index="site", columns="hour", values="availability_pu")
    for site in ("pv", "wt"):
        if site not in ren.index:
            raise InputError(f"the renewable forecast has no site '{site}' (sites: {list(ren.index)})")
    return (p.to_numpy(float), q.to_numpy(float), ren, hours,
            f"evsched.forecast.day_ahead({target}, {da.model})")


def _tou_table(case: Case, load_p, case_avail: dict):
    """TOU periods and prices of :func:`evsched.tou.tou_table` on the forecast feeder load
    (net of ``tou_pv_kw``·a_pv + ``tou_wt_kw``·a_wt when those TOU parameters are set); a
    15-minute curve is averaged to hours (the tariff stays in whole clock hours)."""
    from evsched import tou
    prm = tou.check_params(**case.tou)
    curve = load_p.sum(axis=0) - prm["pv_kw"] * case_avail["pv"] - prm["wt_kw"] * case_avail["wt"]
    table = tou.tou_table(curve, flat_price_per_kwh=prm["flat_price_per_kwh"], ratios=prm["ratios"],
                          **prm["rule"])
    return table, "evsched.tou.tou_table"


def _fleet(case: Case, network: Network, tou):
    """The reservations of :func:`evsched.fleet.generate_fleet` (TOU-aware, seeded)."""
    from evsched.fleet import FleetConfig, generate_fleet
    cfg = FleetConfig.from_params(source="case parameters", station_buses=tuple(case.station_buses),
                                  **case.fleet)
    return generate_fleet(network, cfg, tou=tou), "evsched.fleet.generate_fleet"


def _stations(case: Case, sessions, T: int):
    """Station envelopes of :func:`evsched.aggregation.aggregate` (stations sorted by bus)."""
    from evsched.aggregation import aggregate
    env = aggregate(sessions, stations=case.station_buses)
    if env.T != T:
        raise InputError(f"station envelopes have {env.T} steps, the forecast day {T}")
    return env, "evsched.aggregation.aggregate"


def case_keys() -> list[str]:
    """Every parameter name :func:`load_case` understands: the flat keys of :mod:`evsched.schema`."""
    return sorted(FLAT)
