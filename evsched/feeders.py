"""Real feeders: SimBench grids cut at their HV/MV transformer, with their own profiles.

The run parameter ``network`` selects the feeder of a study (:func:`load_network`):

* ``ieee33`` — Baran & Wu's 33-bus feeder (``data/ieee33/``), loads from the customer-mix
  history of :mod:`evsched.history`;
* ``simbench:<code>`` — a SimBench grid (PyPI ``simbench``, scenario in the code, e.g.
  ``simbench:1-MV-rural--0-sw``, ``simbench:1-MV-semiurb--0-sw``), prepared here.

What :func:`simbench_feeder` does with a SimBench grid, and why
----------------------------------------------------------------
**Cut at the transformer.** The DistFlow model is single-voltage-level, so the grid is cut at
its in-service HV/MV transformers: the HV buses, the transformers, their switches and the
HV ext_grid are removed and the slack (a new ext_grid) is the transformers' LV busbar — the
substation busbar the on-load tap changer holds (its voltage is the run parameter
``v_slack_pu``). Several transformers must feed busbars joined by closed bus-bus switches
(one slack). Their rating, :attr:`SimbenchFeeder.transformer_kva` = Σ ``sn_mva`` of the
in-service transformers (they operate in parallel), is what ``transformer_kva`` may enforce.

**Switches.** :func:`evsched.network.from_pandapower` honours every switch: SimBench's open
line switches (load-break switches at the normally open points) take their lines out of
service, closed bus-bus switches fuse the busbar sections. A switching state that leaves a
loop (meshed operation) is refused, naming the line that closes it.

**Ratings.** Each line's ampacity is pandapower's ``max_i_ka · df · parallel`` (e.g. 220 A
for the NA2XS2Y 1×70 mm² cables of ``1-MV-rural``). Line capacitance is neglected (DistFlow).

**Generation.** MV-connected PV and wind plants (SimBench types containing ``PV`` or
``Wind``, not the aggregated LV feed-in ``lv_RES``) outside the substation busbar are the
study's PV and WT devices (:func:`suggested_parameters`: their buses and capacities; with
``curtail_renewables`` they are curtailable, in S3 their inverters give reactive power), each
with its own SimBench profile (renewable site ``pv@<bus>`` / ``wt@<bus>``). Every other
static generator (LV feed-in aggregated at the MV/LV substations, biomass, hydro, a plant on
the busbar itself) is must-take and part of the bus net demand.

**History (own profiles per bus).** The net demand of bus b is

.. math::
    p_b(t) = \\sum_{l \\in b} P_l\\, x^{p}_{c(l)}(t) - \\sum_{g \\in b} P_g\\, x_{c(g)}(t), \\qquad
    q_b(t) = \\sum_{l \\in b} Q_l\\, x^{q}_{c(l)}(t)

with :math:`P_l, Q_l` the SimBench reference powers of the loads, :math:`x^p, x^q` their
``<profile>_pload`` / ``_qload`` profiles and :math:`P_g, x_{c(g)}` the must-take generators'
capacities and profiles, on the CET clock of :func:`evsched.profiles.parse_clock`. In the
:class:`evsched.history.Feeder` these profiles are the *classes* (normalised to an annual
mean of 1; a generator class has a negative coefficient), so :mod:`evsched.forecast`
forecasts them like the IEEE-33 customer classes and the bus forecast is their linear map.
No calibration: the SimBench powers are used as they are. SimBench profiles are natively
15-minute: the history keeps the quarter-hours of the loads, the must-take generators and the
plants' availability, so a study at ``resolution_min: 15`` forecasts from them (the hourly
arrays are their hourly means).

**Stations and fleet** (:func:`station_rule`, :func:`fleet_size`): one station in each of the
three MV feeders (lines leaving the busbar) with the largest reference load, at the bus of
that feeder with the largest reference load; the fleet is the default's 500 EVs scaled by
the feeder's yearly hourly peak load over the IEEE-33 history's 3715 kW.
"""
from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evsched.errors import InputError, NetworkDataError
from evsched.network import Network, from_pandapower, load_ieee33

logger = logging.getLogger(__name__)

PREFIX = "simbench:"
"""``network`` values naming a SimBench grid start with this."""
DEFAULT = "ieee33"
EXAMPLES = ("1-MV-rural--0-sw", "1-MV-semiurb--0-sw")
"""SimBench codes this project runs and tests (any SimBench code with one feeding voltage
level below its transformers works the same way)."""
N_STATIONS = 3
REFERENCE_EVS, REFERENCE_PEAK_KW = 500, 3715.0
"""The default fleet and the IEEE-33 history's yearly hourly peak: :func:`fleet_size` keeps
their ratio."""
PLANT_KINDS = {"pv": "PV", "wt": "Wind"}
"""Study device kind → substring of the SimBench ``sgen.type`` of MV plants of that kind."""


def parse(network: str) -> str | None:
    """The SimBench code of a ``network`` value, None for ``ieee33``; anything else raises."""
    if network == DEFAULT:
        return None
    if isinstance(network, str) and network.startswith(PREFIX) and len(network) > len(PREFIX):
        return network[len(PREFIX):]
    raise InputError(f"network = {network!r}: must be '{DEFAULT}' or '{PREFIX}<SimBench code>' "
                     f"(e.g. '{PREFIX}{EXAMPLES[0]}')")


def load_network(network: str = DEFAULT) -> Network:
    """The :class:`~evsched.network.Network` a ``network`` run parameter names."""
    code = parse(network)
    return load_ieee33() if code is None else simbench_feeder(code).network


def feeder_history(network: str = DEFAULT):
    """The :class:`evsched.forecast.History` of a feeder: None for ``ieee33`` (the forecast
    module's default history), the SimBench feeder's own profiles otherwise."""
    code = parse(network)
    return None if code is None else simbench_feeder(code).history


# --- SimBench grid → radial feeder ----------------------------------------------------------

CACHE_ENV = "EVSCHED_CACHE"
"""Folder of the on-disk cache of SimBench grids (default ``~/.cache/evsched``; ``0`` turns it off)."""


def _cache_file(code: str):
    import os
    from pathlib import Path

    import simbench

    root = os.environ.get(CACHE_ENV, str(Path.home() / ".cache" / "evsched"))
    if root == "0" or not code.replace("-", "").replace("_", "").replace(".", "").replace("+", "").isalnum():
        return None
    return Path(root) / f"simbench-{simbench.__version__}-{code}.pkl"


@functools.lru_cache(maxsize=4)
def _simbench_net(code: str):
    """SimBench's pandapower net (with its profiles) for ``code``. ``simbench`` reads its whole
    CSV data set for every grid (≈ 10 s), so the result is also pickled to :func:`_cache_file`
    (keyed by the simbench version and the code: the data of a simbench release never change)."""
    import os
    import pickle

    try:
        import simbench
    except ImportError as exc:  # pragma: no cover - simbench is in requirements.lock
        raise InputError("network 'simbench:...' needs the 'simbench' package (pip install simbench)") from exc
    path = _cache_file(code)
    if path is not None and path.is_file():
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # a broken cache file is rebuilt
            logger.info("SimBench cache %s unreadable; rebuilding", path)
    try:
        net = simbench.get_simbench_net(code)
    except Exception as exc:  # unknown code: simbench raises various errors
        raise InputError(f"network = '{PREFIX}{code}': not a SimBench grid code ({type(exc).__name__}: "
                         f"{exc}); e.g. {', '.join(PREFIX + c for c in EXAMPLES)}") from None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(net, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass
    return net


def simbench_net(code: str):
    """A fresh copy of the SimBench pandapower net ``code`` (the download/parse is cached)."""
    return copy.deepcopy(_simbench_net(code))


def cut_at_transformers(net):
    """The part of ``net`` below its in-service transformers, with an ext_grid on their LV
    busbar, and the transformers' total rating [kVA]: ``(net, transformer_kva)`` (a copy).

    The transformers must all be fed from the ext_grid's voltage level and feed one voltage
    level; everything at the upper level (buses, lines, switches, loads, generators, the
    ext_grid) is removed, as are the transformers and their switches. Raises
    :class:`~evsched.errors.NetworkDataError` for a grid without an in-service transformer.
    """
    import pandapower as pp

    net = copy.deepcopy(net)
    name = getattr(net, "name", "") or "net"
    tr = net.trafo[net.trafo.in_service.astype(bool)]
    if not len(tr):
        raise NetworkDataError(f"pandapower net '{name}': no in-service transformer to cut at")
    eg = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    if len(eg) != 1:
        raise NetworkDataError(f"pandapower net '{name}': needs exactly one in-service ext_grid, "
                               f"found {len(eg)}")
    hv_kv = float(net.bus.at[int(eg.bus.iloc[0]), "vn_kv"])
    bad = tr[net.bus.loc[tr.hv_bus, "vn_kv"].to_numpy() != hv_kv]
    if len(bad):
        raise NetworkDataError(f"pandapower net '{name}': transformer {bad.index[0]} is not fed "
                               f"from the ext_grid's level ({hv_kv:g} kV)")
    lv_kv = net.bus.loc[tr.lv_bus, "vn_kv"].unique()
    if len(lv_kv) != 1:
        raise NetworkDataError(f"pandapower net '{name}': the transformers feed several voltage "
                               f"levels {sorted(lv_kv)} kV")
    upper = net.bus.index[net.bus.vn_kv.to_numpy() == hv_kv]
    kva = float((tr.sn_mva * tr.parallel).sum() * 1e3)
    slack = int(tr.lv_bus.iloc[0])
    _check_one_busbar(net, tr, slack, name)
    sw = net.switch
    drop_sw = sw.index[(sw.et.isin(["t", "t3"])) | sw.bus.isin(upper)
                       | ((sw.et == "b") & sw.element.isin(upper))]
    net.switch.drop(drop_sw, inplace=True)
    net.trafo.drop(net.trafo.index, inplace=True)
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    for key in ("line",):
        df = net[key]
        df.drop(df.index[df.from_bus.isin(upper) | df.to_bus.isin(upper)], inplace=True)
    for key in ("load", "sgen"):
        df = net[key]
        df.drop(df.index[df.bus.isin(upper)], inplace=True)
    if "measurement" in net:
        net.measurement.drop(net.measurement.index, inplace=True)
    net.bus.drop(upper, inplace=True)
    pp.create_ext_grid(net, bus=slack, vm_pu=1.0, name="substation busbar (transformer LV side)")
    return net, kva


def _check_one_busbar(net, tr, slack: int, name: str) -> None:
    """The in-service transformers' LV buses must form one busbar: joined to ``slack`` (the
    first transformer's LV bus, the study's slack) by closed bus-bus switches. Otherwise the
    grid has several infeed points (one slack each), which the single-slack model cannot
    represent: raise :class:`~evsched.errors.NetworkDataError` naming the transformer, its bus
    and the open bus-bus switches that would join them."""
    sw = net.switch[net.switch.et == "b"]
    closed = sw[sw.closed.astype(bool)]
    joined, frontier = {slack}, [slack]
    while frontier:  # buses reachable from the slack through closed bus-bus switches
        b = frontier.pop()
        for other in (list(closed.element[closed.bus == b]) + list(closed.bus[closed.element == b])):
            if int(other) not in joined:
                joined.add(int(other))
                frontier.append(int(other))
    for t, lv in zip(tr.index, tr.lv_bus):
        if int(lv) not in joined:
            opened = sw.index[~sw.closed.astype(bool) & (sw.bus.isin(joined | {int(lv)})
                                                         & sw.element.isin(joined | {int(lv)}))]
            hint = (f"close bus-bus switch(es) {[int(i) for i in opened]}" if len(opened)
                    else "join the busbars by a closed bus-bus switch")
            raise NetworkDataError(
                f"pandapower net '{name}': transformer {t} feeds bus {int(lv)}, which is not joined to bus "
                f"{slack} (the LV busbar of transformer {int(tr.index[0])}, the slack) by closed bus-bus "
                f"switches: several infeed points cannot be one slack; {hint}, or take transformer {t} "
                "out of service")


@dataclass
class SimbenchFeeder:
    """A SimBench grid prepared for the study (see the module docstring).

    Attributes
    ----------
    code : the SimBench code
    network : the radial feeder (loads only: nominal ``p_kw``/``q_kvar`` are the SimBench
        reference loads; ``rating_a`` from ``max_i_ka``)
    history : :class:`evsched.forecast.History` of the feeder's own profiles
    plants : the study's PV/WT devices: ``kind, bus, capacity_kw, profile, site``
    must_take : the must-take generators: ``bus, capacity_kw, profile, type``
    transformer_kva : Σ rating of the in-service HV/MV transformers [kVA]
    pp_net : the cut pandapower net (with every static generator)
    """

    code: str
    network: Network
    history: object
    plants: pd.DataFrame
    must_take: pd.DataFrame
    transformer_kva: float
    pp_net: object

    @property
    def name(self) -> str:
        return PREFIX + self.code


def _bus_map(network: Network) -> dict:
    """pandapower bus index → network bus id, fused buses included."""
    out = {int(pi): int(b) for pi, b in zip(network.buses.pp_index, network.bus_ids)}
    for rep, others in network.buses.attrs.get("pp_fused_buses", {}).items():
        for o in others:
            out[int(o)] = out[int(rep)]
    return out


@functools.lru_cache(maxsize=4)
def simbench_feeder(code: str) -> SimbenchFeeder:
    """The SimBench grid ``code`` cut at its transformers, with its history (cached)."""
    from evsched.forecast import build_history
    from evsched.history import RENEWABLE_SITES, Feeder, hourly

    raw = _simbench_net(code)
    cut, kva = cut_at_transformers(raw)
    loads_only = copy.deepcopy(cut)
    loads_only.sgen.drop(loads_only.sgen.index, inplace=True)
    network = from_pandapower(loads_only, name=PREFIX + code)
    ids = _bus_map(network)
    slack = int(network.slack_bus)

    sg = cut.sgen[cut.sgen.in_service.astype(bool)].copy()
    sg["bus_id"] = sg.bus.map(ids)
    kind = pd.Series("", index=sg.index)
    for k, token in PLANT_KINDS.items():
        kind[sg.type.astype(str).str.contains(token, case=False) & (sg.type != "lv_RES")] = k
    is_plant = (kind != "") & (sg.bus_id != slack)
    plants = (sg[is_plant].assign(kind=kind[is_plant], capacity_kw=sg.p_mw * sg.scaling * 1e3)
              .groupby(["kind", "bus_id"], as_index=False)
              .agg(capacity_kw=("capacity_kw", "sum"), profile=("profile", _one_profile))
              .rename(columns={"bus_id": "bus"}).sort_values(["kind", "bus"], ignore_index=True))
    plants["site"] = [f"{k}@{b}" for k, b in zip(plants.kind, plants.bus)]
    must = sg[~is_plant]
    must_take = pd.DataFrame({"bus": must.bus_id.to_numpy(int),
                              "capacity_kw": (must.p_mw * must.scaling * 1e3).to_numpy(float),
                              "profile": must.profile.astype(str).to_numpy(),
                              "type": must.type.astype(str).to_numpy()})

    load_tab, ren_tab = _profiles(raw, code)
    ld = cut.load[cut.load.in_service.astype(bool)]
    classes, p_coef, q_coef = [], {}, {}

    def coef(store, cls, bus, value):
        store.setdefault(cls, {}).setdefault(bus, 0.0)
        store[cls][bus] += value

    for prof, g in ld.groupby("profile"):
        for part, store, col in (("pload", p_coef, "p_mw"), ("qload", q_coef, "q_mvar")):
            cls = f"{prof}_{part}"
            if cls not in load_tab:
                raise InputError(f"SimBench grid {code}: load profile column '{cls}' missing")
            classes.append(cls)
            for b, v in zip(g.bus.map(ids), g[col] * g.scaling * 1e3):
                coef(store, cls, int(b), float(v))
    for prof, g in must_take.groupby("profile"):
        cls = f"gen:{prof}"
        if prof not in ren_tab:
            raise InputError(f"SimBench grid {code}: generator profile '{prof}' missing")
        classes.append(cls)
        for b, v in zip(g.bus, g.capacity_kw):
            coef(p_coef, cls, int(b), -float(v))
    x = pd.concat([load_tab[[c for c in classes if not c.startswith("gen:")]],
                   ren_tab[[c[4:] for c in classes if c.startswith("gen:")]]
                   .set_axis([c for c in classes if c.startswith("gen:")], axis=1)], axis=1)[classes]
    mean = x.mean()
    if (mean <= 0).any():
        raise InputError(f"SimBench grid {code}: profile(s) {list(mean.index[mean <= 0])} have a "
                         "non-positive annual mean and cannot be normalised")
    x15 = x / mean
    buses = network.bus_ids

    def frame(store):
        df = pd.DataFrame(0.0, index=buses, columns=classes)
        for cls, per_bus in store.items():
            for b, v in per_bus.items():
                df.at[b, cls] += v * mean[cls]  # coefficient on the normalised profile
        return df

    feeder = Feeder(buses=buses, classes=classes, p_coef_kw=frame(p_coef), q_coef_kvar=frame(q_coef),
                    power_factor=pd.Series(np.nan, index=classes, name="power_factor"),
                    class_15min=x15, class_hourly=hourly(x15), scale=1.0)
    sites = {}
    for k in PLANT_KINDS:
        own = plants[plants.kind == k].sort_values("capacity_kw", ascending=False, kind="stable")
        sites[k] = own.profile.iloc[0] if len(own) else RENEWABLE_SITES[k]
    sites.update(dict(zip(plants.site, plants.profile)))
    # SimBench profiles are 15-minute: the history keeps them (hourly means for the hourly
    # arrays, the quarter-hours themselves for resolution_min = 15)
    ren = ren_tab[list(dict.fromkeys(sites.values()))].clip(lower=0.0)
    renewables_15min = pd.DataFrame({s: ren[p].to_numpy() for s, p in sites.items()}, index=ren.index)
    history = build_history(feeder, renewables_15min=renewables_15min)
    return SimbenchFeeder(code=code, network=network, history=history, plants=plants,
                          must_take=must_take, transformer_kva=kva, pp_net=cut)


def _one_profile(s: pd.Series) -> str:
    vals = s.astype(str).unique()
    if len(vals) != 1:
        raise InputError(f"plants at one bus with different profiles {list(vals)}: not supported")
    return vals[0]


def _profiles(net, code: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The grid's load and renewable profile tables on the CET clock (15-minute, validated:
    a regular grid, finite values)."""
    from evsched.profiles import parse_clock

    out = []
    for key in ("load", "renewables"):
        tab = net.profiles[key]
        src = f"SimBench {code} profiles['{key}']"
        idx = parse_clock(tab["time"].astype(str), src)
        df = tab.drop(columns="time").astype(float)
        df.index = idx
        step = np.diff(idx.asi8)
        if not (step == step[0]).all():
            raise InputError(f"{src}: not a regular 15-minute grid after the clock change")
        bad = ~np.isfinite(df.to_numpy())
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(f"{src}, timestamp {df.index[i]}, column '{df.columns[j]}': not finite")
        out.append(df)
    return out[0], out[1]


# --- documented rules: stations, fleet, case parameters ---------------------------------------

def feeder_of_bus(network: Network) -> np.ndarray:
    """For every bus (internal order) the internal index of the first bus below the slack on
    its path (its MV feeder, "branch" of the substation); −1 for the slack."""
    par = network.parent
    out = np.full(network.n_bus, -1, dtype=int)
    for i in network.depth_order():
        if par[i] == network.slack:
            out[i] = i
        elif par[i] >= 0:
            out[i] = out[par[i]]
    return out


def station_rule(network: Network, n: int = N_STATIONS) -> list[int]:
    """Station buses: in each of the ``n`` feeders (subtrees of the slack) with the largest
    reference load, the bus with the largest reference load (ties: lower bus id); sorted."""
    p = network.buses.p_kw.to_numpy(float)
    head = feeder_of_bus(network)
    heads = [h for h in np.unique(head) if h >= 0]
    total = {h: p[head == h].sum() for h in heads}
    chosen = sorted(heads, key=lambda h: (-total[h], h))[:n]
    ids = network.bus_ids
    out = []
    for h in chosen:
        members = np.flatnonzero(head == h)
        best = members[np.lexsort((ids[members], -p[members]))[0]]
        out.append(int(ids[best]))
    return sorted(out)


def fleet_size(feeder: SimbenchFeeder) -> int:
    """``round(500 × P_peak / 3715 kW)``, P_peak the yearly hourly peak of the feeder's load
    (loads only, without generation)."""
    h = feeder.history
    a = feeder.history.feeder.p_coef_kw.clip(lower=0.0).sum().to_numpy()  # load classes only
    peak = float((h.load.reshape(-1, h.load.shape[2]) @ a).max())
    return round(REFERENCE_EVS * peak / REFERENCE_PEAK_KW)


def suggested_parameters(code: str) -> dict:
    """The case parameters that follow from the documented rules for SimBench grid ``code``:
    ``network``, ``station_buses``, PV/WT buses and capacities (the MV plants), ``n_evs``,
    ``transformer_kva`` (``params/mv_rural.yaml`` holds them for ``1-MV-rural--0-sw``)."""
    f = simbench_feeder(code)
    pl = f.plants
    out = {"network": PREFIX + code, "station_buses": station_rule(f.network)}
    for k in PLANT_KINDS:
        sel = pl[pl.kind == k]
        out[f"{k}_buses"] = [int(b) for b in sel.bus]
        out[f"{k}_capacity_kw"] = [round(float(c), 3) for c in sel.capacity_kw]
    out["n_evs"] = fleet_size(f)
    out["transformer_kva"] = round(f.transformer_kva, 3)
    return out


def plant_availability(renewables: pd.DataFrame, kind: str, buses) -> np.ndarray:
    """Availability [p.u.] per plant (rows in ``buses`` order) from a (site × hour) forecast:
    the plant's own site ``<kind>@<bus>`` where the history has one, else the generic ``kind``."""
    rows = [renewables.loc[f"{kind}@{b}"] if f"{kind}@{b}" in renewables.index else renewables.loc[kind]
            for b in buses]
    return np.array([r.to_numpy(float) for r in rows]).reshape(len(rows), renewables.shape[1])
