"""Every parameter of the study, defined once: unit, range, default and one line of documentation.

The parameters are pydantic models nested by topic (:data:`TOPICS`): ``limits`` (network and
operating limits), ``forecast``, ``tou``, ``sites`` (where the stations, PV and wind turbines
are), ``fleet`` (the EV fleet of :func:`evsched.fleet.generate_fleet`), ``opf`` (the S2/S3
optimisation) and ``study`` (notebook options). :class:`Params` holds one of each. Parameter
files and notebooks use the *flat* keys (``v_min_pu``, ``target_day``, ``n_evs``, ...):
:data:`FLAT` maps each key to its ``(topic, field)``; keys are unique across topics.

Everything else is derived from these models:

* ``params/default.yaml`` is :func:`default_yaml`, each notebook's ``parameters`` cell is
  :func:`parameters_cell` of the keys it declares; ``evsched params --write`` regenerates both
  (:func:`write_generated`) and ``tests/test_schema.py`` fails when they disagree;
* :func:`evsched.case.load_case`, :func:`evsched.tou.check_params`,
  :func:`evsched.forecast.check_params`, :class:`evsched.fleet.FleetConfig`,
  :func:`evsched.params.check_voltage_band` and the batch runner validate through
  :func:`validate`, so a range or a rule lives here and nowhere else;
* :class:`OPFOptions` is what the OPF model takes from a case (voltage band, slack voltage,
  converter losses): :func:`evsched.scenarios.opf_model` and
  :func:`evsched.aggregation_gap.compare` receive one object.

Errors name the source (file or "notebook parameters"), the topic, the parameter, its value
(plain numbers) and the allowed range: ``params/x.yaml, network limits, field 'v_min_pu' =
1.04: must be in [0.8, 1.0] p.u.``. Cross-field rules (``v_min_pu < v_max_pu``, one capacity
per bus, distinct buses, TOU ratio and quantile ordering, ``charger_kva >= charger_kw``, SOC
ordering, ...) are part of the models and reported the same way. What depends on data (the
target day inside the history, buses on the feeder) is checked by
:func:`evsched.forecast.check_params` and :meth:`evsched.case.Case.check_network`.

Adding a parameter: add a field to its topic below (``P(default, doc, title=..., unit=...,
ge/le/gt/lt)``, a cross-field rule in the topic's ``_rules``), read it where it is used, list
it in the ``parameters`` cell of the notebooks that use it directly (a notebook building the
whole case reads it through ``params_file``), then run ``evsched params --write``.
"""
from __future__ import annotations

import ast
import datetime as dt
import difflib
import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Iterator, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from evsched.errors import InputError
from evsched.params import plain
from evsched.reservations import MAX_BATTERY_KWH, MAX_CHARGER_KW, MAX_KVA_RATIO

PARAM_SOURCE = "notebook parameters"
"""Source named in messages when the values come from a notebook or a function call."""


def P(default, doc: str, *, title: str, unit: str = "", rule: str | None = None,
      range: str | None = None, **constraints):
    """A parameter: ``default``, one line ``doc``, a short ``title`` (notebook comments), its
    ``unit``, bounds (``ge``/``gt``/``le``/``lt``, ``min_length``), a cross-field ``rule`` shown
    beside the range, and ``range``: the range text of a parameter without numeric bounds."""
    return Field(default, description=doc, title=title,
                 json_schema_extra={"unit": unit, "rule": rule, "range": range}, **constraints)


def _cross(field: str, rule: str):
    return PydanticCustomError("cross_field", "{rule}", {"field": field, "rule": rule})


class Topic(BaseModel):
    """One group of parameters. Read-only; also a read-only mapping ``key → value`` (so
    ``f(**case.tou)`` and ``case.forecast.get('target_day')`` work)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    TITLE: ClassVar[str] = ""
    """Section title in the YAML file and in ``evsched params``."""
    WHERE: ClassVar[str] = "parameters"
    """How messages name the group (``params/x.yaml, <WHERE>, field 'k' = ...``)."""

    def _rules(self) -> Iterator[tuple[str, bool, str]]:
        """Cross-field rules as ``(field named in the message, holds, rule text)``, in order."""
        return iter(())

    @model_validator(mode="after")
    def _cross_field_rules(self):
        for field, ok, rule in self._rules():
            if not ok:
                raise _cross(field, rule)
        return self

    # --- read-only mapping interface -------------------------------------------------------
    def keys(self) -> list[str]:
        return list(type(self).model_fields)

    def __getitem__(self, key: str):
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key) if key in type(self).model_fields else default

    def __contains__(self, key) -> bool:
        return key in type(self).model_fields

    def __iter__(self):  # keys, as for a dict
        return iter(type(self).model_fields)

    def __len__(self) -> int:
        return len(type(self).model_fields)

    def items(self):
        return [(k, getattr(self, k)) for k in self.keys()]


def _ordered(field_lo: str, field_hi: str, lo, hi, unit: str = "") -> tuple[str, bool, str]:
    return field_lo, lo <= hi, f"must be <= {field_hi} = {plain(hi)!r}{' ' + unit if unit else ''}"


# ----------------------------------------------------------------------------------- topics
class Limits(Topic):
    TITLE: ClassVar[str] = "network and operating limits (00_network, 03-05)"
    WHERE: ClassVar[str] = "network limits"

    network: str = P("ieee33", "the feeder: 'ieee33' (Baran & Wu, data/ieee33/) or 'simbench:<code>', a "
                     "SimBench grid cut at its HV/MV transformer with its own profiles (evsched.feeders; "
                     "notebooks 00-02 are IEEE-33 only)", title="network",
                     range="'ieee33' or 'simbench:<SimBench code>', e.g. 'simbench:1-MV-rural--0-sw'")
    thermal_limits: bool = P(False, "S2/S3 keep every line's current within its ampacity (rating_a of "
                             "the network); false: not enforced (the loading is reported either way)",
                             title="line thermal limits")
    transformer_kva: float = P(0.0, "substation transformer rating enforced in S2/S3 (apparent power "
                               "drawn at the slack bus); 0: no limit", title="transformer rating",
                               unit="kVA", ge=0, le=1_000_000)
    v_slack_pu: float = P(1.0, "substation (slack bus) voltage magnitude", title="substation voltage",
                          unit="p.u.", ge=0.9, le=1.1)
    v_min_pu: float = P(0.95, "lower voltage limit at every other bus (binds in S2/S3, drawn on the profiles)",
                        title="lower voltage limit", unit="p.u.", ge=0.8, le=1.0, rule="< v_max_pu")
    v_max_pu: float = P(1.05, "upper voltage limit at every other bus", title="upper voltage limit",
                        unit="p.u.", ge=1.0, le=1.2)

    @field_validator("network")
    @classmethod
    def _network_name(cls, v: str) -> str:
        if not (v == "ieee33" or re.fullmatch(r"simbench:[A-Za-z0-9][A-Za-z0-9_.+-]*", v)):
            raise ValueError("must be 'ieee33' or 'simbench:<SimBench code>' (e.g. "
                             "'simbench:1-MV-rural--0-sw')")
        return v

    def _rules(self):
        yield ("v_min_pu", self.v_min_pu < self.v_max_pu,
               f"must be < v_max_pu = {self.v_max_pu!r} p.u.")


class Forecast(Topic):
    TITLE: ClassVar[str] = "day-ahead forecast (01, 02, 03-05)"
    WHERE: ClassVar[str] = "forecast parameters"

    target_day: str = P("2016-12-07", "day to forecast (CET clock) in the 2016 SimBench history; needs "
                        "train_days + 14 + backtest_days days of history before it (defaults: 2016-05-10 "
                        "or later)", title="day to forecast", range="ISO date 'YYYY-MM-DD' in the history")
    resolution_min: Literal[60, 15] = P(
        60, "time step of the study day: forecast, reservations' presence, station envelopes, OPF "
        "(24 or 96 steps), metrics and result tables ('hour' = the step's start, 0, 0.25, ...); the "
        "TOU tariff stays in whole clock hours", title="time step", unit="min")
    forecast_model: Literal["ridge", "seasonal_naive", "auto"] = P(
        "ridge", "'ridge' (scikit-learn Ridge on lags + calendar), 'seasonal_naive' (same weekday last "
        "week) or 'auto' (lowest backtest MAPE)", title="forecast model")
    train_days: int = P(56, "training window of the ridge model", title="ridge training window",
                        unit="days", ge=28, le=180)
    backtest_days: int = P(60, "rolling day-ahead backtest before the target day", title="backtest length",
                           unit="days", ge=60, le=200)
    renewable_window_days: int = P(7, "renewable forecast = mean of the same hour over the last N days "
                                   "(1 = persistence)", title="renewable averaging window", unit="days",
                                   ge=1, le=28)

    @field_validator("target_day", mode="before")
    @classmethod
    def _date_to_text(cls, v):
        if isinstance(v, dt.date):  # datetime, pandas Timestamp
            return v.strftime("%Y-%m-%d")
        return v

    @field_validator("target_day")
    @classmethod
    def _iso_date(cls, v: str) -> str:
        try:
            ok = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)) and dt.date.fromisoformat(v) is not None
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be an ISO date 'YYYY-MM-DD' (a real calendar day)")
        return v


class TOU(Topic):
    TITLE: ClassVar[str] = "time-of-use periods and prices (02, 03-05)"
    WHERE: ClassVar[str] = "TOU parameters"

    flat_price_per_kwh: float = P(0.65, "flat-period energy price; an assumption (only the ratios shape "
                                  "the signal)", title="flat price", unit="currency/kWh", gt=0, le=10)
    tou_ratio_sharp_peak: float = P(2.05, "sharp-peak price / flat price (Zhejiang TOU rule from July "
                                    "2026)", title="sharp-peak ratio", ge=1, le=10, rule=">= tou_ratio_peak")
    tou_ratio_peak: float = P(1.85, "peak price / flat price", title="peak ratio", ge=1, le=10)
    tou_ratio_valley: float = P(0.4, "valley price / flat price", title="valley ratio", gt=0, le=1)
    tou_ratio_deep_valley: float = P(0.2, "deep-valley price / flat price", title="deep-valley ratio",
                                     gt=0, le=1, rule="<= tou_ratio_valley")
    tou_peak_quantile: float = P(0.75, "hours whose forecast is at or above this quantile are peak",
                                 title="peak quantile", gt=0, lt=1, rule="> tou_valley_quantile")
    tou_valley_quantile: float = P(0.35, "hours whose forecast is at or below this quantile are valley",
                                   title="valley quantile", gt=0, lt=1)
    tou_min_block_h: int = P(2, "minimum length of every TOU block", title="minimum block", unit="h",
                             ge=1, le=8)
    tou_sharp_peak_h: int = P(2, "sharp-peak window inside the peak (0: off)", title="sharp-peak window",
                              unit="h", ge=0, le=8, rule="0 or >= tou_min_block_h")
    tou_deep_valley_h: int = P(2, "deep-valley window inside the valley (0: off)", title="deep-valley window",
                               unit="h", ge=0, le=8, rule="0 or >= tou_min_block_h")
    tou_pv_kw: float = P(0.0, "PV capacity netted off the load before classifying the hours (0: gross "
                         "load)", title="PV netted off", unit="kW", ge=0, le=20000)
    tou_wt_kw: float = P(0.0, "WT capacity netted off the load before classifying the hours",
                         title="WT netted off", unit="kW", ge=0, le=20000)

    def _rules(self):
        yield ("tou_ratio_deep_valley", self.tou_ratio_deep_valley <= self.tou_ratio_valley,
               f"must not exceed tou_ratio_valley = {self.tou_ratio_valley!r}")
        yield ("tou_ratio_sharp_peak", self.tou_ratio_sharp_peak >= self.tou_ratio_peak,
               f"must be at least tou_ratio_peak = {self.tou_ratio_peak!r}")
        yield ("tou_peak_quantile", self.tou_valley_quantile < self.tou_peak_quantile,
               f"must satisfy tou_valley_quantile ({self.tou_valley_quantile!r}) < tou_peak_quantile < 1")
        mb = self.tou_min_block_h
        for name in ("tou_sharp_peak_h", "tou_deep_valley_h"):
            v = getattr(self, name)
            yield (name, v == 0 or v >= mb,
                   f"must be an integer 0 or in {mb}..8 (tou_min_block_h..8)")


_CAPACITY = Annotated[float, Field(ge=0, le=10_000)]


class Sites(Topic):
    TITLE: ClassVar[str] = ("sites and sizes of the modified IEEE 33-bus case (03-05; justified in "
                            "data/case/README.md)")
    WHERE: ClassVar[str] = "case parameters"

    station_buses: list[int] = P([14, 22, 30], "EV charging station buses (14 main feeder, 22 lateral "
                                 "19-22, 30 branch 26-33)", title="EV station buses", min_length=1,
                                 range="distinct bus ids other than the substation (2..33)")
    pv_buses: list[int] = P([13, 24], "PV plant buses", title="PV buses",
                            range="distinct bus ids other than the substation (2..33)")
    pv_capacity_kw: list[_CAPACITY] = P([500.0, 500.0], "PV rated power per plant", title="PV rated power",
                                        unit="kW", range="each in [0, 10000], one per pv_bus")
    wt_buses: list[int] = P([18, 33], "wind-turbine buses", title="WT buses",
                            range="distinct bus ids other than the substation (2..33)")
    wt_capacity_kw: list[_CAPACITY] = P([500.0, 500.0], "WT rated power per turbine", title="WT rated power",
                                        unit="kW", range="each in [0, 10000], one per wt_bus")
    inverter_kva_ratio: float = P(1.1, "PV/WT inverter rating / rated power (reactive range "
                                  "sqrt(S^2 - P^2))", title="inverter oversizing", ge=1.0, le=2.0)

    def _rules(self):
        for key in ("station_buses", "pv_buses", "wt_buses"):
            b = getattr(self, key)
            yield key, len(set(b)) == len(b), f"a bus may appear only once (repeated: " \
                                              f"{sorted({x for x in b if b.count(x) > 1})})"
        for kind in ("pv", "wt"):
            buses, caps = getattr(self, f"{kind}_buses"), getattr(self, f"{kind}_capacity_kw")
            yield (f"{kind}_capacity_kw", len(buses) == len(caps),
                   f"must give one capacity per bus of {kind}_buses = {buses} ({len(caps)} value(s) "
                   f"for {len(buses)} bus(es))")


class Fleet(Topic):
    TITLE: ClassVar[str] = "EV fleet: one reservation per EV (03-05; evsched.fleet.generate_fleet)"
    WHERE: ClassVar[str] = "fleet parameters"

    n_evs: int = P(500, "number of EVs (one reservation each); measured on IEEE 33: 3000 EVs solve S2/S3 in "
                   "about 7/11 s, about 5000 make S2 infeasible (the error names the buses where the lower "
                   "voltage limit binds); the per-EV split of notebook 03 needs about 0.3 GB per 1000 EVs",
                   title="number of EVs", ge=1, le=5_000)
    fleet_seed: int = P(20240501, "random seed of the fleet", title="fleet seed", ge=0)
    battery_kwh: float = P(50.0, "battery capacity of every EV (plausibility bound: "
                           "data/reservations/README.md)", title="battery capacity", unit="kWh",
                           gt=0, le=MAX_BATTERY_KWH)
    charger_kw: float = P(7.0, "charger active-power rating (the 6.6-7 kW slow class)", title="charger power",
                          unit="kW", gt=0, le=MAX_CHARGER_KW)
    charger_kva: float = P(7.7, "charger apparent-power rating (1.1 x charger_kw: the inverter oversizing "
                           "seen for PV)", title="charger rating", unit="kVA", gt=0,
                           rule=f"charger_kw..{MAX_KVA_RATIO:g} x charger_kw")
    efficiency: float = P(0.95, "one-way charger efficiency", title="charger efficiency", gt=0, le=1)
    home_share: float = P(0.6, "share of home (overnight) EVs; the rest are daytime commuters",
                          title="share of home EVs", ge=0, le=1)
    v2g_share: float = P(0.3, "willingness to discharge among owners whose stay covers a peak hour",
                         title="V2G willingness", ge=0, le=1)
    station_distance: Literal["feeder", "euclidean"] = P(
        "feeder", "each EV reserves at the nearest station by 'feeder' (along-feeder |z|) or "
        "'euclidean' distance", title="nearest-station distance")
    home_arrival_mean_h: float = P(18.0, "home EVs arrive ~ N(mean, std^2)", title="home arrival, mean",
                                   unit="h", ge=0, lt=24)
    home_arrival_std_h: float = P(2.0, "home EVs' arrival spread", title="home arrival, std", unit="h",
                                  ge=0, le=12)
    home_departure_mean_h: float = P(8.0, "home EVs leave ~ N(mean, std^2) the next morning",
                                     title="home departure, mean", unit="h", ge=0, lt=24)
    home_departure_std_h: float = P(2.0, "home EVs' departure spread", title="home departure, std",
                                    unit="h", ge=0, le=12)
    work_arrival_mean_h: float = P(9.0, "workplace EVs arrive ~ N(mean, std^2)", title="work arrival, mean",
                                   unit="h", ge=0, lt=24)
    work_arrival_std_h: float = P(2.0, "workplace EVs' arrival spread", title="work arrival, std", unit="h",
                                  ge=0, le=12)
    work_departure_mean_h: float = P(17.0, "workplace EVs leave ~ N(mean, std^2)",
                                     title="work departure, mean", unit="h", ge=0, lt=24)
    work_departure_std_h: float = P(2.0, "workplace EVs' departure spread", title="work departure, std",
                                    unit="h", ge=0, le=12)
    soc_arrival_low: float = P(0.4, "arrival SOC ~ U(low, high): low", title="arrival SOC, low", ge=0, le=1,
                               rule="<= soc_arrival_high")
    soc_arrival_high: float = P(0.6, "arrival SOC ~ U(low, high): high", title="arrival SOC, high",
                                ge=0, le=1)
    home_soc_departure_low: float = P(0.8, "departure need of home EVs ~ U(low, high): low",
                                      title="home departure SOC, low", ge=0, le=1,
                                      rule="<= home_soc_departure_high")
    home_soc_departure_high: float = P(0.9, "departure need of home EVs ~ U(low, high): high",
                                       title="home departure SOC, high", ge=0, le=1)
    work_soc_departure_low: float = P(0.4, "departure need of workplace EVs ~ U(low, high): low (a "
                                      "commuter only needs the trip home)", title="work departure SOC, low",
                                      ge=0, le=1, rule="<= work_soc_departure_high")
    work_soc_departure_high: float = P(0.7, "departure need of workplace EVs ~ U(low, high): high",
                                       title="work departure SOC, high", ge=0, le=1)
    soc_min: float = P(0.3, "SOC floor owners allow V2G to use", title="V2G SOC floor", ge=0, le=1,
                       rule="<= the departure SOC lows")
    soc_max: float = P(0.9, "charging ceiling", title="SOC ceiling", ge=0, le=1,
                       rule=">= every SOC upper bound")
    resolution_h: float = P(1.0, "arrival and departure times are rounded to this step",
                            title="time resolution", unit="h", gt=0, le=1,
                            rule="divides one hour (1, 0.5, 0.25, ...)")
    min_stay_h: float = P(1.0, "a shorter stay is lengthened to this", title="shortest stay", unit="h",
                          le=12, rule=">= resolution_h")

    @field_validator("resolution_h")
    @classmethod
    def _divides_one_hour(cls, v: float) -> float:
        if abs(1 / v - round(1 / v)) >= 1e-9:
            raise ValueError("must divide one hour (1, 0.5, 0.25, ...)")
        return v

    def _rules(self):
        yield ("charger_kva", self.charger_kva >= self.charger_kw,
               f"must be >= charger_kw = {self.charger_kw!r} kVA")
        yield ("charger_kva", self.charger_kva <= MAX_KVA_RATIO * self.charger_kw,
               f"must be <= {MAX_KVA_RATIO:g} x charger_kw = {plain(MAX_KVA_RATIO * self.charger_kw)!r} kVA "
               "(plausibility bound, see data/reservations/README.md)")
        for lo, hi in (("soc_arrival_low", "soc_arrival_high"),
                       ("home_soc_departure_low", "home_soc_departure_high"),
                       ("work_soc_departure_low", "work_soc_departure_high")):
            yield _ordered(lo, hi, getattr(self, lo), getattr(self, hi))
        floor = min(self.home_soc_departure_low, self.work_soc_departure_low)
        yield ("soc_min", self.soc_min <= floor,
               f"must be <= the lowest departure SOC (home/work_soc_departure_low) = {floor!r}")
        top = max(self.home_soc_departure_high, self.work_soc_departure_high, self.soc_arrival_high)
        yield ("soc_max", self.soc_max >= top,
               f"must be >= every departure and arrival SOC upper bound = {top!r}")
        yield ("min_stay_h", self.resolution_h <= self.min_stay_h,
               f"must be in [resolution_h, 12] = [{self.resolution_h!r}, 12] h")


class OPF(Topic):
    TITLE: ClassVar[str] = "scenarios S2/S3: the optimisation (04, 05)"
    WHERE: ClassVar[str] = "OPF options"

    count_converter_losses: bool = P(True, "add the chargers' conversion losses (1 - eta) to the S2/S3 "
                                     "objective; false: network loss only (the paper's objective)",
                                     title="count converter losses")
    ev_model: Literal["exact", "envelope"] = P(
        "exact", "EVs in S2/S3: 'exact' (one storage per EV: every reservation honoured by construction) "
        "or 'envelope' (the paper's station envelope, an outer approximation)", title="EV model")
    curtail_renewables: bool = P(False, "let S2/S3 curtail PV/WT at a price (the cure when must-take "
                                 "generation makes the relaxation inexact); false: must-take",
                                 title="curtail renewables")
    curtailment_penalty: float = P(0.5, "objective weight per curtailed kWh, below 1 so that curtailing "
                                   "beats the fictitious losses of an inexact relaxation",
                                   title="curtailment price", unit="kWh loss per kWh curtailed", gt=0, lt=1)


class Study(Topic):
    TITLE: ClassVar[str] = "notebook options"
    WHERE: ClassVar[str] = "notebook options"

    run_exact: bool = P(True, "notebook 03 also solves the exact per-EV model (aggregation gap)",
                        title="solve the exact per-EV model")
    overload_fleet_factor: float = P(4.0, "notebook 09 (IEEE-33): the larger fleet whose uncontrolled "
                                     "charging overloads the first feeder sections, as a multiple of n_evs",
                                     title="larger fleet, x n_evs", ge=1, le=10)
    overload_charger_kw: float = P(11.0, "notebook 09 (IEEE-33): charger rating of that larger fleet (11 kW: "
                                   "the three-phase home wallbox)", title="larger fleet's chargers",
                                   unit="kW", gt=0, le=MAX_CHARGER_KW)
    demo_transformer_kva: float = P(2800.0, "notebook 09 (IEEE-33): a substation transformer rating that "
                                    "binds in S2 (Baran & Wu publish none; S2 draws up to 2.97 MVA on the "
                                    "default day)", title="demonstration transformer", unit="kVA",
                                    gt=0, le=1_000_000)


class Uncertainty(Topic):
    TITLE: ClassVar[str] = "no-shows, delays and forecast error; re-dispatch policies (06; evsched.uncertainty)"
    WHERE: ClassVar[str] = "uncertainty parameters"

    no_show_prob: float = P(0.1, "no-show probability of a reserved EV", title="no-show probability",
                            ge=0, le=0.9)
    arrival_delay_pmf: list[float] = P([0.6, 0.25, 0.1, 0.05], "probabilities of an arrival delay of 0, 1, "
                                       "2, ... h (checked to sum to 1 by evsched.uncertainty)",
                                       title="arrival delay distribution",
                                       range="1..7 values in [0, 1] summing to 1", min_length=1, max_length=7)
    departure_shift_pmf: list[float] = P([0.05, 0.1, 0.7, 0.1, 0.05], "probabilities of a departure shift "
                                         "of -m..+m h (negative: leaves early)", title="departure shift "
                                         "distribution", range="an odd number 1..9 of values "
                                         "summing to 1", min_length=1, max_length=9)
    energy_request_sd: float = P(0.15, "relative sd of the energy request, normal truncated at 2 sd",
                                 title="energy request deviation", ge=0, le=0.5)
    forecast_error: Literal["backtest", "actual", "none"] = P(
        "backtest", "load/PV/WT of a sample: 'backtest' (residual days of the day-ahead backtest), "
        "'actual' (the target day) or 'none'", title="forecast error source")
    forecast_error_scale: float = P(1.0, "multiplies the forecast error", title="forecast error scale",
                                    ge=0, le=3)
    uncertainty_seed: int = P(20240601, "seed of the deviation samples", title="uncertainty seed",
                              ge=0, le=2 ** 32 - 1)
    n_samples: int = P(20, "Monte Carlo samples at no_show_prob", title="samples", ge=1, le=10_000)
    n_samples_sweep: int = P(6, "samples per no-show rate of the sweep (the first ones of n_samples)",
                             title="samples per swept rate", ge=1, le=10_000)
    no_show_sweep: list[float] = P([0.0, 0.1, 0.2, 0.3], "no-show rates of the sweep",
                                   title="swept no-show rates", range="1..10 values, each 0..0.9",
                                   min_length=1, max_length=10)
    reactive_power: bool = P(True, "the policies coordinate reactive power as S3 (true) or active power "
                             "only as S2 (false)", title="coordinate reactive power")
    robust_level: float = P(1.0, "quantile of the robust voltage back-off (1: the largest over the "
                            "training scenarios)", title="robust quantile", ge=0.5, le=1)
    robust_scenarios: int = P(60, "training scenarios of the robust plan (60: every backtest day once)",
                              title="robust training scenarios", ge=1, le=10_000)
    n_workers: int = P(2, "worker processes (dask.distributed; 1: this kernel only)", title="workers",
                       ge=1, le=64)


TOPICS: dict[str, type[Topic]] = {"limits": Limits, "forecast": Forecast, "tou": TOU, "sites": Sites,
                                  "fleet": Fleet, "opf": OPF, "study": Study, "uncertainty": Uncertainty}
"""Topic name (attribute of :class:`Params`) → model, in file order."""

FLAT: dict[str, tuple[str, str]] = {}
"""Flat key (YAML, notebooks) → ``(topic, field)``."""
for _t, _m in TOPICS.items():
    for _k in _m.model_fields:
        if _k in FLAT:
            raise RuntimeError(f"parameter {_k!r} is defined in topics {FLAT[_k][0]!r} and {_t!r}")
        FLAT[_k] = (_t, _k)

RUNNER_KEYS = {
    "results_dir": ('"../results"', "where tables and figures are written (make run sets it)"),
    "params_file": ('"../params/default.yaml"', "the study's parameters: every key not declared here "
                                                "(make run passes the run's file)"),
}
"""Notebook parameters that are not study parameters: set by the batch runner, never in a file."""


class _Nested(BaseModel):
    """Topics as attributes, plus flat read access: ``p.v_min_pu`` is ``p.limits.v_min_pu``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __getattr__(self, name: str):
        loc = FLAT.get(name)
        if loc is not None and loc[0] in type(self).model_fields and loc[0] in self.__dict__:
            return getattr(self.__dict__[loc[0]], loc[1])
        return super().__getattr__(name)

    def flat(self) -> dict[str, Any]:
        """Flat ``key → value`` of every parameter held."""
        return {k: getattr(getattr(self, t), f) for k, (t, f) in FLAT.items() if t in type(self).model_fields}


class OPFOptions(_Nested):
    """What an OPF model takes from a case: the voltage band and slack voltage (``limits``) and
    the objective options (``opf``). One object flows from the case
    (:attr:`Params.opf_options`) into :func:`evsched.scenarios.opf_model`,
    :func:`evsched.aggregation_gap.compare` and, through :meth:`evsched.model.OPFModel.clone`,
    every model derived from them."""

    limits: Limits = Field(default_factory=Limits)
    opf: OPF = Field(default_factory=OPF)

    def model_kwargs(self) -> dict:
        """The keyword arguments of :class:`evsched.model.OPFModel` these options set."""
        lim = self.limits
        kw = {"v_min_pu": lim.v_min_pu, "v_max_pu": lim.v_max_pu, "v_slack_pu": lim.v_slack_pu,
              "count_converter_losses": self.opf.count_converter_losses}
        if lim.thermal_limits or lim.transformer_kva > 0:  # evsched.model.constraints.OPTIONAL
            from evsched.model.constraints import thermal_families
            kw["families"] = thermal_families(lines=lim.thermal_limits, transformer=lim.transformer_kva > 0)
        if lim.transformer_kva > 0:
            kw["transformer_kva"] = lim.transformer_kva
        return kw

    @classmethod
    def from_values(cls, source: str = PARAM_SOURCE, **values) -> "OPFOptions":
        """Options from flat keys of the ``limits`` and ``opf`` topics (others: defaults)."""
        bad = [k for k in values if k not in FLAT or FLAT[k][0] not in cls.model_fields]
        if bad:
            raise InputError(f"{source}: {bad} are not OPF options; known: "
                             f"{[k for k, (t, _) in FLAT.items() if t in cls.model_fields]}")
        p = validate(values, source=source)
        return cls(limits=p.limits, opf=p.opf)


class Params(_Nested):
    """Every parameter of the study, by topic (see the module docstring)."""

    limits: Limits = Field(default_factory=Limits)
    forecast: Forecast = Field(default_factory=Forecast)
    tou: TOU = Field(default_factory=TOU)
    sites: Sites = Field(default_factory=Sites)
    fleet: Fleet = Field(default_factory=Fleet)
    opf: OPF = Field(default_factory=OPF)
    study: Study = Field(default_factory=Study)
    uncertainty: Uncertainty = Field(default_factory=Uncertainty)

    @property
    def opf_options(self) -> OPFOptions:
        """The :class:`OPFOptions` of this case."""
        return OPFOptions(limits=self.limits, opf=self.opf)

    def replace(self, source: str = "model_copy", **changes) -> "Params":
        """A validated copy with flat keys (or whole topics) changed."""
        flat = self.flat()
        for k, v in changes.items():
            if k in TOPICS:
                flat.update(dict(v))
            else:
                flat[k] = v
        return validate(flat, source=source, cls=type(self))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False):
        """A copy; ``update`` takes flat keys and is validated like a parameter file."""
        if not update:
            return super().model_copy(deep=deep)
        return self.replace(**update)


# ----------------------------------------------------------------------------- validation
def _normal(v):
    """Python numbers and lists for numpy scalars/arrays and tuples (what a file would hold)."""
    v = plain(v)
    if isinstance(v, tuple):
        return [_normal(x) for x in v]
    if isinstance(v, list):
        return [_normal(x) for x in v]
    return v


def suggest(key: str) -> str:
    """`` (did you mean 'x'?)`` for a misspelt key, else ``''``."""
    close = difflib.get_close_matches(key, list(FLAT), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate(values: Mapping[str, Any], source: str = PARAM_SOURCE, *,
             sources: Mapping[str, str] | None = None, where: str | None = None,
             cls: type[Params] = Params) -> Params:
    """Validate flat ``key → value`` pairs (missing keys take their defaults).

    ``source`` names where the values come from (a file, "notebook parameters"); ``sources``
    may name it per key; ``where`` replaces the topic's name in messages. Raises
    :class:`InputError` listing every broken range or rule (``"; "``-separated), each as
    ``<source>, <topic>, field '<key>' = <value>: <rule>``; a value the caller did not give
    (a default named by a cross-field rule) is marked ``(default)``.
    """
    sources = dict(sources or {})
    values = {k: _normal(v) for k, v in dict(values).items()}
    unknown = [k for k in values if k not in FLAT]
    if unknown:
        src = sources.get(unknown[0], source)
        raise InputError(f"{src}: unknown parameter(s) {unknown}{suggest(unknown[0])}; "
                         f"`evsched params` lists the {len(FLAT)} parameters")
    given: dict[str, dict] = {t: {} for t in TOPICS}
    for k, v in values.items():
        given[FLAT[k][0]][k] = v
    built, messages = {}, []
    for t, vals in given.items():
        if not vals:
            built[t] = _default_topic(t)
            continue
        try:
            built[t] = TOPICS[t](**vals)
        except ValidationError as exc:
            messages += [_message(TOPICS[t], vals, e, sources, source, where)
                         for e in exc.errors(include_url=False)]
    if messages:
        raise InputError("; ".join(messages))
    return cls(**built)


def validate_topic(topic: str, values: Mapping[str, Any], source: str = PARAM_SOURCE,
                   where: str | None = None) -> Topic:
    """Validate the keys of one topic (others are an error); return the topic's model."""
    other = [k for k in values if k not in TOPICS[topic].model_fields]
    if other:
        raise InputError(f"{source}: {other} are not {TOPICS[topic].WHERE}; known: "
                         f"{list(TOPICS[topic].model_fields)}")
    return getattr(validate(values, source, where=where), topic)


_DEFAULTS: dict[str, Topic] = {}


def _default_topic(t: str) -> Topic:
    if t not in _DEFAULTS:
        _DEFAULTS[t] = TOPICS[t]()
    return _DEFAULTS[t]


def defaults(topic: str | None = None) -> dict[str, Any]:
    """Default value of every flat key (of one topic)."""
    return {k: TOPICS[t].model_fields[f].get_default(call_default_factory=True)
            for k, (t, f) in FLAT.items() if topic in (None, t)}


def info(key: str):
    """The pydantic ``FieldInfo`` of a flat key."""
    t, f = FLAT[key]
    return TOPICS[t].model_fields[f]


def _extra(key_or_info, name: str):
    fi = info(key_or_info) if isinstance(key_or_info, str) else key_or_info
    return (fi.json_schema_extra or {}).get(name)


def unit(key: str) -> str:
    return _extra(key, "unit") or ""


def _bounds(metadata) -> dict:
    """``{'ge'|'gt'|'le'|'lt': bound}`` of a field's metadata (annotated_types constraints)."""
    out = {}
    for m in metadata:
        if isinstance(m, FieldInfo):  # Annotated[float, Field(ge=...)] of a list item
            out.update(_bounds(m.metadata))
        out.update({k: getattr(m, k) for k in ("ge", "gt", "le", "lt") if getattr(m, k, None) is not None})
    return out


def _interval(b: dict) -> str:
    """``[lo, hi]`` / ``(lo, hi]`` ... for two bounds, ``> lo`` / ``<= hi`` ... for one."""
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    if lo is not None and hi is not None:
        return f"{'(' if 'gt' in b else '['}{plain(lo)!r}, {plain(hi)!r}{')' if 'lt' in b else ']'}"
    if lo is not None:
        return f"{'>' if 'gt' in b else '>='} {plain(lo)!r}"
    if hi is not None:
        return f"{'<' if 'lt' in b else '<='} {plain(hi)!r}"
    return ""


def _int_interval(b: dict) -> str:
    lo, hi = b.get("ge"), b.get("le")
    if lo is not None and hi is not None:
        return f"in {lo}..{hi}"
    return _interval(b)


def _literal(ann) -> tuple | None:
    return typing.get_args(ann) if typing.get_origin(ann) is Literal else None


def _item_type(ann):
    """``(type, bounds)`` of the items of a ``list[...]`` annotation."""
    (item,) = typing.get_args(ann)
    if typing.get_origin(item) is Annotated:
        base, *meta = typing.get_args(item)
        return base, _bounds(meta)
    return item, {}


def _number_rule(kind: str, base, b: dict, u: str, broke_range: bool) -> str:
    u = f" {u}" if u else ""
    if base is int:
        return f"must be an integer {_int_interval(b)}{u}"
    rng = _interval(b)
    two_sided = rng[:1] in "[("
    if broke_range:
        return f"must be {'in ' if two_sided else ''}{rng}{u}"
    return f"must be a number {'in ' if two_sided else ''}{rng}{u}".rstrip()


_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _field_rule(model: type[Topic], key: str, e: dict) -> str:
    """The rule a pydantic error ``e`` on field ``key`` of ``model`` broke, with the range."""
    fi = model.model_fields[key]
    kind, loc, ann = e["type"], e["loc"], fi.annotation
    u = _extra(fi, "unit") or ""
    if kind == "value_error":
        return e["msg"].removeprefix("Value error, ")
    if typing.get_origin(ann) is list:
        base, b = _item_type(ann)
        if len(loc) > 1 and isinstance(loc[1], int):
            what = (_number_rule(kind, base, b, u, kind in _RANGE_ERRORS) if b
                    else "must be a whole bus id" if base is int else "must be a number")
            return f"item {loc[1] + 1} = {plain(e.get('input'))!r}: {what}"
        if kind == "too_short":
            return f"must list at least {(e.get('ctx') or {}).get('min_length', 1)} value(s)"
        return f"must be a list like {fi.default}"
    choices = _literal(ann)
    if choices:
        return "must be one of " + ", ".join(repr(c) for c in choices)
    if ann is bool:
        return "must be true or false"
    if ann in (int, float):
        return _number_rule(kind, ann, _bounds(fi.metadata), u, kind in _RANGE_ERRORS)
    if ann is str:
        return f"must be text: {_extra(fi, 'range') or 'a string'}"
    return e["msg"]


def _message(model: type[Topic], vals: dict, e: dict, sources: Mapping, source: str,
             where: str | None) -> str:
    ctx = e.get("ctx") or {}
    if e["type"] == "cross_field":
        key, rule = ctx["field"], ctx["rule"]
    elif e["type"] == "extra_forbidden":
        key, rule = str(e["loc"][0]), "unknown parameter" + suggest(str(e["loc"][0]))
    else:
        key, rule = str(e["loc"][0]), _field_rule(model, str(e["loc"][0]), e)
    if key in vals:
        shown = repr(plain(vals[key]))
    else:
        shown = f"{getattr(model(), key, None)!r} (default)" if key in model.model_fields else "?"
    return f"{sources.get(key, source)}, {where or model.WHERE}, field '{key}' = {shown}: {rule}"


# ------------------------------------------------------------------------- documentation
def range_text(key: str, style: str = "yaml") -> str:
    """The allowed values of ``key`` as shown in the YAML file, the notebook cells and
    ``evsched params`` (``style="python"`` writes True/False for booleans)."""
    fi = info(key)
    ann = fi.annotation
    text = _extra(fi, "range")
    if text is None:
        choices = _literal(ann)
        if choices:
            text = " | ".join(repr(c) for c in choices)
        elif ann is bool:
            text = "True/False" if style == "python" else "true/false"
        elif ann is int:
            b = _bounds(fi.metadata)
            text = (f"integer {b['ge']}..{b['le']}" if "ge" in b and "le" in b
                    else f"integer {_interval(b)}")
        else:
            text = _interval(_bounds(fi.metadata))
    rule = _extra(fi, "rule")
    return f"{text}, {rule}" if rule else text


def _comment(key: str, text: str, style: str, sep: str = ", ") -> str:
    u = unit(key)
    return f"{text}{f' [{u}]' if u else ''}{sep}{range_text(key, style)}"


def _yaml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        plain_ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) and v.lower() not in (
            "true", "false", "yes", "no", "on", "off", "null", "y", "n")
        return v if plain_ok else json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return repr(v)


def _py_value(v) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v)


def _aligned(rows: list[tuple[str, str]], width: int) -> list[str]:
    return [f"{left:<{width}}# {right}" if len(left) < width else f"{left}  # {right}"
            for left, right in rows]


YAML_HEADER = """\
# Default parameters of the study. GENERATED from evsched/schema.py by `evsched params --write`:
# edit the schema, not this file (tests/test_schema.py checks that they agree). `evsched params`
# prints every parameter with its unit, range, default and documentation.
# `make run` passes each notebook the keys its `parameters` cell declares, and the file itself to
# the notebooks that build the whole case (03-05); an unknown key is an error. A parameter file
# may list only what it changes: copy this file (e.g. params/windy.yaml), change one value and
# run `make run PARAMS=params/windy.yaml` (→ results/windy/).
"""


def default_yaml() -> str:
    """The complete default parameter file (``params/default.yaml``), one section per topic,
    each key with its default and ``# doc [unit], range``."""
    out = [YAML_HEADER]
    d = defaults()
    for t, model in TOPICS.items():
        out.append(f"\n# --- {model.TITLE} " + "-" * max(3, 92 - len(model.TITLE)) + "\n")
        rows = [(f"{k}: {_yaml_value(d[k])}", _comment(k, info(k).description, "yaml", ". Allowed: "))
                for k in model.model_fields]
        out += [line + "\n" for line in _aligned(rows, 30)]
    return "".join(out)


CELL_HEADER = ("# Parameters (papermill; `make run` passes the run's values). Generated by `evsched params\n"
               "# --write` from evsched/schema.py; documentation: params/default.yaml, `evsched params`.\n")


def parameters_cell(notebook_keys) -> str:
    """Source of a notebook's ``parameters`` cell declaring ``notebook_keys`` (runner keys
    :data:`RUNNER_KEYS` and parameters of :data:`FLAT`), in that order, each with its default
    and ``# title [unit], range``. ``results_dir`` always comes first."""
    keys = list(dict.fromkeys(["results_dir", *notebook_keys]))
    bad = [k for k in keys if k not in FLAT and k not in RUNNER_KEYS]
    if bad:
        raise InputError(f"notebook parameter(s) {bad} are not defined in evsched/schema.py"
                         f"{suggest(bad[0])}: add them to a topic there first")
    d = defaults()
    rows = [(f"{k} = {RUNNER_KEYS[k][0]}", RUNNER_KEYS[k][1]) if k in RUNNER_KEYS
            else (f"{k} = {_py_value(d[k])}", _comment(k, info(k).title, "python")) for k in keys]
    # papermill skips a line with more than one '=' (its parameter parser): none in comments
    rows = [(left, right.replace(">=", "≥").replace("<=", "≤")) for left, right in rows]
    lines = _aligned(rows, 30)
    bad = [line for line in lines if line.count("=") != 1]
    if bad:
        raise InputError(f"parameters cell: papermill cannot parse {bad[0]!r} (one '=' per line)")
    return CELL_HEADER + "\n".join(lines)


def describe() -> list[dict]:
    """One row per parameter: ``topic, key, unit, range, default, doc`` (``evsched params``)."""
    d = defaults()
    return [{"topic": t, "key": k, "unit": unit(k), "range": range_text(k), "default": _yaml_value(d[k]),
             "doc": info(k).description} for k, (t, _) in FLAT.items()]


def describe_text() -> str:
    """The documented schema as text, grouped by topic."""
    rows = describe()
    out = [f"  {'key':<24} {'default':<16} [unit] allowed values", f"  {'':<24} documentation", ""]
    for t, model in TOPICS.items():
        out.append(f"{t}: {model.TITLE}")
        for r in (r for r in rows if r["topic"] == t):
            out.append(f"  {r['key']:<24} {r['default']:<16} [{r['unit'] or '-'}] {r['range']}")
            out.append(f"  {'':<24} {r['doc']}")
        out.append("")
    out.append("Notebooks only: " + "; ".join(f"{k} = {v} ({doc})" for k, (v, doc) in RUNNER_KEYS.items()))
    return "\n".join(out)


# ------------------------------------------------------------------- generated notebook cells
def _parameters_cell_index(nb: dict, path) -> int:
    for i, c in enumerate(nb.get("cells", [])):
        if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", []):
            return i
    raise InputError(f"{path}: no code cell tagged 'parameters'")


def notebook_keys(path) -> list[str]:
    """The names a notebook's ``parameters`` cell assigns, in order."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    src = "".join(nb["cells"][_parameters_cell_index(nb, path)]["source"])
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        raise InputError(f"{path}: the parameters cell is not valid Python ({exc.msg}, line {exc.lineno})") from None
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def _source_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def notebook_with_cell(path) -> tuple[str, str]:
    """``(current text, text with the regenerated parameters cell)`` of a notebook file: only
    that cell's source changes (ids, metadata, other cells and the JSON layout are kept)."""
    raw = Path(path).read_text(encoding="utf-8")
    nb = json.loads(raw)
    i = _parameters_cell_index(nb, path)
    nb["cells"][i]["source"] = _source_lines(parameters_cell(notebook_keys(path)))
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if json.dumps(json.loads(raw), indent=1, ensure_ascii=False) + "\n" != raw:
        raise InputError(f"{path}: not in Jupyter's JSON layout (indent 1); save it from Jupyter first, "
                         "so that regenerating the parameters cell changes nothing else")
    return raw, new


def generated_files() -> dict[Path, tuple[str, str]]:
    """Every generated file: ``path → (current text, generated text)``."""
    from evsched.paths import NOTEBOOKS, PARAMS

    yml = PARAMS / "default.yaml"
    out = {yml: (yml.read_text(encoding="utf-8") if yml.exists() else "", default_yaml())}
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        out[nb] = notebook_with_cell(nb)
    return out


def write_generated() -> list[Path]:
    """Regenerate ``params/default.yaml`` and every notebook's parameters cell; return the
    files that changed."""
    changed = []
    for path, (old, new) in generated_files().items():
        if old != new:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


# ------------------------------------------------------------------------------ command line
def add_params_command(sub) -> None:
    """Register ``evsched params`` (see :mod:`evsched.cli`)."""
    p = sub.add_parser("params", help="print every study parameter (unit, range, default, doc)",
                       description="The study's parameters, defined in evsched/schema.py: key, "
                                   "default, [unit], range and one line of documentation, by topic.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--yaml", action="store_true", help="print a complete default parameter file")
    g.add_argument("--write", action="store_true",
                   help="regenerate params/default.yaml and the notebooks' parameters cells")
    g.add_argument("--check", action="store_true",
                   help="exit 1 if params/default.yaml or a notebook's parameters cell is stale")
    p.set_defaults(func=_cmd_params)


def _cmd_params(args) -> int:
    import sys

    if args.yaml:
        sys.stdout.write(default_yaml())
        return 0
    if args.write:
        changed = write_generated()
        print("regenerated: " + (", ".join(str(_rel(c)) for c in changed) if changed else "nothing (up to date)"))
        return 0
    if args.check:
        stale = [p for p, (old, new) in generated_files().items() if old != new]
        for p in stale:
            print(f"stale: {_rel(p)} (run `evsched params --write`)", file=sys.stderr)
        return 1 if stale else 0
    print(describe_text())
    return 0


def _rel(p: Path) -> str:
    from evsched.paths import ROOT
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)
