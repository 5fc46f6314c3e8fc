"""The study case: validated parameters (:class:`Case`) and the data they produce (:class:`CaseData`).

A :class:`Case` holds what a run may change (read from ``params/default.yaml`` and overridden
by notebook parameters): station, PV and wind-turbine buses, capacities, inverter ratings,
voltage limits, target day, fleet seed. :func:`build_case` turns it into the arrays every
scenario uses, on **one** forecast day and **one** fleet:

* base load ``load_p_kw``, ``load_q_kvar`` (bus × hour) — the day-ahead forecast
  (:mod:`evsched.forecast`);
* PV and WT availability ``pv_avail_kw``, ``wt_avail_kw`` (site × hour) = capacity ×
  forecast availability per unit;
* the TOU table ``hour, period, price_per_kwh`` (:mod:`evsched.tou`);
* the reservations (one row per EV, :mod:`evsched.fleet`) and each station's aggregated
  envelope (:mod:`evsched.aggregation`).

The choice of buses and capacities is justified in ``data/case/README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evsched.errors import InputError
from evsched.network import Network, load_ieee33
from evsched.sessions import build_sessions
from evsched.paths import PARAMS

DEFAULT_PARAMS = PARAMS / "default.yaml"
FORECAST_KEYS = {"target_day", "forecast_model", "train_days", "renewable_window_days", "backtest_days"}


class Case(BaseModel):
    """Validated case parameters (units in the names; buses are Baran & Wu ids 1..33).

    Every field has a documented range; :func:`load_case` turns a violation into an
    :class:`InputError` naming the parameter, its value and the allowed range.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    v_slack_pu: float = Field(1.0, ge=0.9, le=1.1, description="substation voltage [p.u.]")
    v_min_pu: float = Field(0.95, ge=0.8, le=1.0, description="lower voltage limit [p.u.]")
    v_max_pu: float = Field(1.05, ge=1.0, le=1.2, description="upper voltage limit [p.u.]")
    station_buses: list[int] = Field([14, 22, 30], min_length=1,
                                     description="EV station buses (default: evsched.fleet)")
    pv_buses: list[int] = Field([13, 24], description="PV plant buses")
    pv_capacity_kw: list[float] = Field([500.0, 500.0], description="PV rated power [kW], 0..10000 each")
    wt_buses: list[int] = Field([18, 33], description="wind-turbine buses")
    wt_capacity_kw: list[float] = Field([500.0, 500.0], description="WT rated power [kW], 0..10000 each")
    inverter_kva_ratio: float = Field(1.1, ge=1.0, le=2.0,
                                      description="PV/WT inverter rating / rated active power")
    count_converter_losses: bool = Field(
        True, description="add the EV chargers' conversion losses to the S2/S3 objective "
                          "(False: network loss only, as in the paper; lets the optimiser cycle energy for free)")
    ev_model: Literal["exact", "envelope"] = Field(
        "exact", description="EVs in S2/S3: 'exact' (one storage per EV session: every reservation is "
                             "honoured by construction) or 'envelope' (the paper's station envelope, an "
                             "outer approximation: some reservations may fall short)")
    curtail_renewables: bool = Field(
        False, description="let S2/S3 curtail PV/WT output at a price (curtailment_penalty); False: must-take")
    curtailment_penalty: float = Field(
        0.5, gt=0.0, lt=1.0,
        description="objective weight per curtailed kWh [kWh of loss per kWh curtailed], (0, 1): below 1 so "
                    "that curtailing is cheaper than the fictitious losses of an inexact relaxation")
    forecast: dict = Field(default_factory=dict,
                           description="evsched.forecast.day_ahead parameters (target_day, forecast_model, ...)")
    tou: dict = Field(default_factory=dict,
                      description="evsched.tou.check_params parameters (flat_price_per_kwh, tou_*)")
    fleet: dict = Field(default_factory=dict,
                        description="evsched.fleet.FleetConfig parameters (n_evs, seed, v2g_share, ...)")

    @model_validator(mode="after")
    def _check(self):
        if not self.v_min_pu < self.v_max_pu:
            raise ValueError(f"v_min_pu = {self.v_min_pu} must be < v_max_pu = {self.v_max_pu}")
        for kind in ("pv", "wt"):
            buses, caps = getattr(self, f"{kind}_buses"), getattr(self, f"{kind}_capacity_kw")
            if len(buses) != len(caps):
                raise ValueError(f"{kind}_capacity_kw has {len(caps)} value(s) but {kind}_buses has "
                                 f"{len(buses)}: give one capacity per bus")
            for c in caps:
                if not (0 <= c <= 10_000):
                    raise ValueError(f"{kind}_capacity_kw value {c} must be in 0..10000 kW")
        for key in ("station_buses", "pv_buses", "wt_buses"):
            b = getattr(self, key)
            if len(set(b)) != len(b):
                raise ValueError(f"{key} = {b}: a bus may appear only once")
        return self

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
    """Read the case keys from a YAML parameter file, apply ``overrides``, validate.

    Case keys are :class:`Case`'s own fields plus the pass-through groups ``forecast``
    (:data:`FORECAST_KEYS`, handed to :func:`evsched.forecast.day_ahead`), ``tou`` (the
    parameters of :func:`evsched.tou.check_params`) and ``fleet`` (the fields of
    :class:`evsched.fleet.FleetConfig`, e.g. ``n_evs``, ``fleet_seed``, ``v2g_share``), given
    flat as in the YAML. Every group is validated (the forecast group when ``target_day`` is
    given); errors name the file (or "notebook parameters" / "load_case overrides"), the
    parameter, its value and the allowed range. The file is read with
    :func:`evsched.yamlio.load_yaml_mapping` (duplicate keys, aliases, ... are errors). Other
    keys of the file (other notebooks') are ignored; unknown ``overrides`` are an error;
    ``None`` overrides keep the file's value.
    """
    from dataclasses import fields as dataclass_fields

    from evsched.params import field_rule, plain, rewrite_source
    from evsched.yamlio import load_yaml_mapping

    groups = {"forecast": FORECAST_KEYS, "tou": _tou_keys(), "fleet": _fleet_keys()}
    own = set(Case.model_fields) - set(groups)
    raw = {} if path is None else load_yaml_mapping(path)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    known = own.union(*groups.values())
    unknown = [k for k in overrides if k not in known]
    if unknown:
        raise InputError(f"load_case: unknown case parameter(s) {unknown}; known: {sorted(known)}")
    over_source = "notebook parameters" if path is None else f"load_case overrides of {path}"

    def source(*keys) -> str:
        return over_source if path is None or any(k in overrides for k in keys) else str(path)

    flat = {k: v for k, v in {**raw, **overrides}.items() if k in known}
    values = {k: v for k, v in flat.items() if k in own}
    for g, keys in groups.items():
        values[g] = {k: v for k, v in flat.items() if k in keys}
    for k, v in values.items():  # pydantic would read true/false as 1.0/0.0
        if isinstance(v, bool) and Case.model_fields[k].annotation in (int, float, "int", "float"):
            raise InputError(f"{source(k)}, parameter '{k}' = {v!r}: "
                             f"{field_rule(Case, k, {'type': 'float_type', 'msg': 'must be a number'})}")
    try:
        case = Case(**values)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            if not e["loc"]:  # a cross-field rule: its message names the parameters and values
                lines.append(f"{source(*values)}: {e['msg'].removeprefix('Value error, ')}")
                continue
            key = ".".join(str(p) for p in e["loc"])
            val = values.get(e["loc"][0])
            lines.append(f"{source(e['loc'][0])}, parameter '{key}' = {plain(val)!r}: "
                         f"{field_rule(Case, str(e['loc'][0]), e)}")
        raise InputError("; ".join(lines)) from None
    from evsched import forecast, tou
    from evsched.fleet import FleetConfig
    for f in dataclass_fields(FleetConfig):
        v = case.fleet.get(f.name)
        if f.name in case.fleet and type(f.default) in (int, float) and (
                isinstance(v, bool) or not isinstance(v, (int, float))):
            raise InputError(f"{source(f.name)}, fleet parameters, field '{f.name}' = {plain(v)!r}: "
                             f"must be a number (default {f.default})")
    try:
        FleetConfig.from_params(source=source(*case.fleet), station_buses=tuple(case.station_buses),
                                **case.fleet)
    except InputError:
        raise
    except (TypeError, ValueError) as exc:  # a wrong type the range checks cannot compare
        raise InputError(f"{source(*case.fleet)}, fleet parameters {plain(case.fleet)!r}: "
                         f"{exc} (each must be a number)") from None
    with rewrite_source({"notebook parameters": source(*case.tou)}):
        tou.check_params(**case.tou)
    if "target_day" in case.forecast:
        with rewrite_source({"notebook parameters": source(*case.forecast)}):
            forecast.check_params(**case.forecast)
    return case


def _tou_keys() -> set:
    """Parameter names of :func:`evsched.tou.check_params`."""
    import inspect

    from evsched import tou
    return set(inspect.signature(tou.check_params).parameters)


def _fleet_keys() -> set:
    """Parameter names of :class:`evsched.fleet.FleetConfig` except the station buses."""
    from dataclasses import fields as dc_fields

    from evsched.fleet import FleetConfig
    return {f.name for f in dc_fields(FleetConfig)} - {"station_buses"}


@dataclass
class CaseData:
    """Everything the scenarios need, on one day (arrays are (element × hour), kW / kvar).

    Attributes
    ----------
    case : the validated parameters
    network : the feeder
    hours : hour labels 0..T−1
    load_p_kw, load_q_kvar : base load (bus × hour) in network bus order
    pv_avail_kw, wt_avail_kw : renewable availability (site × hour) [kW]
    tou : ``hour, period, price_per_kwh``
    reservations : one row per EV (schema of :mod:`evsched.reservations`)
    stations : :class:`evsched.aggregation.StationEnvelopes` (stations sorted by bus id)
    sessions : :class:`evsched.sessions.Sessions` (one per EV, two for an overnight stay), the
        exact per-EV model's devices
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
    case = case or load_case()
    network = network or load_ieee33()
    case.check_network(network)
    sources = {}
    load_p, load_q, pv_pu, wt_pu, hours, sources["forecast"] = _forecast_day(case, network)
    tou, sources["tou"] = _tou_table(case, load_p, {"pv": pv_pu, "wt": wt_pu})
    res, sources["fleet"] = _fleet(case, network, tou)
    sessions = build_sessions(res)
    stations, sources["aggregation"] = _stations(case, sessions, len(hours))
    pv = np.asarray(case.pv_capacity_kw, float)[:, None] * pv_pu[None, :]
    wt = np.asarray(case.wt_capacity_kw, float)[:, None] * wt_pu[None, :]
    return CaseData(case=case, network=network, hours=hours, load_p_kw=load_p, load_q_kvar=load_q,
                    pv_avail_kw=pv, wt_avail_kw=wt, tou=tou, reservations=res, stations=stations,
                    sessions=sessions, sources=sources)


# --- inputs from the forecasting (issue 3) and reservations (issue 4) modules ----------------

def _forecast_day(case: Case, network: Network):
    """Bus load and renewable availability of :func:`evsched.forecast.day_ahead`."""
    from evsched import forecast
    fc = dict(case.forecast)
    target = fc.pop("target_day", None)
    if target is None:
        raise InputError("case parameter 'target_day' is missing (set it in params/default.yaml "
                         "or pass target_day='YYYY-MM-DD')")
    da = forecast.day_ahead(target, model=fc.get("forecast_model", "ridge"),
                            train_days=fc.get("train_days", 56),
                            renewable_window_days=fc.get("renewable_window_days", 7),
                            backtest_days=fc.get("backtest_days", 60))
    hours = np.sort(da.load["hour"].unique())
    p = da.load.pivot(index="bus", columns="hour", values="p_kw").reindex(network.bus_ids).fillna(0.0)
    q = da.load.pivot(index="bus", columns="hour", values="q_kvar").reindex(network.bus_ids).fillna(0.0)
    ren = da.renewables.pivot(index="site", columns="hour", values="availability_pu")
    for site in ("pv", "wt"):
        if site not in ren.index:
            raise InputError(f"the renewable forecast has no site '{site}' (sites: {list(ren.index)})")
    return (p.to_numpy(float), q.to_numpy(float), ren.loc["pv"].to_numpy(float),
            ren.loc["wt"].to_numpy(float), hours, f"evsched.forecast.day_ahead({target}, {da.model})")


def _tou_table(case: Case, load_p, case_avail: dict):
    """TOU periods and prices of :func:`evsched.tou.tou_table` on the forecast feeder load
    (net of ``tou_pv_kw``·a_pv + ``tou_wt_kw``·a_wt when those TOU parameters are set)."""
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
        raise InputError(f"station envelopes have {env.T} hours, the forecast day {T}")
    return env, "evsched.aggregation.aggregate"


def case_keys() -> list[str]:
    """Every parameter name :func:`load_case` understands (case, forecast, TOU and fleet keys)."""
    own = set(Case.model_fields) - {"forecast", "tou", "fleet"}
    return sorted(own | FORECAST_KEYS | _tou_keys() | _fleet_keys() | {"station_buses"})


def scale_renewables(cd: CaseData, factor: float) -> CaseData:
    """A copy of ``cd`` with every PV and WT capacity (and so availability and inverter
    rating) multiplied by ``factor`` (0..10); load, TOU and fleet unchanged.

    Used for the documented DG-capacity sensitivity (calibration) step of notebook 04, never
    to change the default case silently.
    """
    import dataclasses

    if not (0 <= factor <= 10):
        raise InputError(f"scale_renewables: factor = {factor!r} must be in 0..10")
    c = cd.case
    case = c.model_copy(update={"pv_capacity_kw": [x * factor for x in c.pv_capacity_kw],
                                "wt_capacity_kw": [x * factor for x in c.wt_capacity_kw]})
    return dataclasses.replace(cd, case=case, pv_avail_kw=cd.pv_avail_kw * factor,
                               wt_avail_kw=cd.wt_avail_kw * factor)
