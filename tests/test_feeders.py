"""Real feeders: the SimBench import (cut at the transformer, switches, slack, ratings, meshed
operation refused), its own profiles, the documented rules and the network run parameter."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evsched import feeders
from evsched.errors import InputError, NetworkDataError
from evsched.network import from_pandapower
from evsched.paths import NOTEBOOKS, PARAMS

CODE = "1-MV-rural--0-sw"


@pytest.fixture(scope="module")
def rural():
    return feeders.simbench_feeder(CODE)


@pytest.fixture(scope="module")
def raw():
    return feeders.simbench_net(CODE)


def test_cut_at_the_transformer_slack_on_its_busbar(rural, raw):
    net = rural.network
    assert net.name == f"simbench:{CODE}" and net.vn_kv == 20.0
    # the HV buses (110 kV), the two HV/MV transformers and the HV ext_grid are gone; the slack
    # is the transformers' LV busbar, its two sections fused by their closed bus-bus switch
    lv_busbars = set(raw.trafo.lv_bus)
    assert int(net.buses.pp_index.iloc[net.slack]) in lv_busbars
    assert net.buses.attrs["pp_fused_buses"] == {2: [3]}
    assert not net.buses.pp_index.isin(raw.bus.index[raw.bus.vn_kv > 20]).any()
    assert net.n_bus == len(raw.bus) - 2 - 1 and net.n_branch == net.n_bus - 1
    assert rural.transformer_kva == pytest.approx(1e3 * raw.trafo.sn_mva.sum())  # 2 × 25 MVA


def test_switches_honoured(rural, raw):
    net = rural.network
    open_lines = set(raw.switch[(raw.switch.et == "l") & ~raw.switch.closed.astype(bool)].element)
    assert len(open_lines) == 6
    # the lines at the normally open points are kept but out of service: not branches
    n_lines = len(net.lines)
    assert n_lines == len(raw.line) and int((~net.lines.in_service).sum()) == len(open_lines)
    used = set(net.branch_line)
    assert not used & set(np.flatnonzero(~net.lines.in_service.to_numpy()))
    # ratings: pandapower's max_i_ka (e.g. 220 A for the NA2XS2Y 1x70 cables), every branch rated
    np.testing.assert_allclose(net.lines.rating_a.to_numpy(), raw.line.max_i_ka.to_numpy() * 1e3)
    assert np.isfinite(net.branch_rating_a).all()


def test_meshed_operation_is_refused(raw):
    cut, _ = feeders.cut_at_transformers(raw)
    sw = cut.switch[(cut.switch.et == "l") & ~cut.switch.closed.astype(bool)].index[0]
    line = int(cut.switch.at[sw, "element"])
    cut.switch.at[sw, "closed"] = True   # close a normally open point: the feeders form a loop
    with pytest.raises(NetworkDataError, match=rf"line {line} \(.*\), field 'in_service'.*closes a loop"):
        from_pandapower(cut)


def test_reconfiguration_by_switches_stays_radial(rural, raw):
    """Closing an open point and opening another switch on the loop it closes is a valid
    radial reconfiguration: the conversion follows the switch states."""
    cut, _ = feeders.cut_at_transformers(raw)
    sw = cut.switch[(cut.switch.et == "l") & ~cut.switch.closed.astype(bool)].index[0]
    line = int(cut.switch.at[sw, "element"])
    cut.switch.at[sw, "closed"] = True
    a, b = int(cut.line.at[line, "from_bus"]), int(cut.line.at[line, "to_bus"])
    # open the line feeding the far end of the tie (its parent branch in the base topology)
    ids = feeders._bus_map(rural.network)
    net0 = rural.network
    child = net0.bus_index([ids[b]])[0]
    parent_line = int(net0.branch_line[net0.branch_of_bus[child]])
    closed_parent = cut.switch.index[(cut.switch.et == "l") & (cut.switch.element == parent_line)]
    cut.switch.loc[closed_parent, "closed"] = False
    n = from_pandapower(cut)
    assert n.n_branch == n.n_bus - 1
    assert n.parent[n.bus_index([ids[b]])[0]] == n.bus_index([ids[a]])[0]


def test_no_transformer_is_an_error():
    import pandapower as pp
    net = pp.create_empty_network()
    b = [pp.create_bus(net, vn_kv=20.0) for _ in range(2)]
    pp.create_ext_grid(net, b[0])
    with pytest.raises(NetworkDataError, match="no in-service transformer"):
        feeders.cut_at_transformers(net)


def test_history_is_the_feeders_own_profiles(rural, raw):
    """Bus net demand of the history = SimBench loads × their profiles − must-take generators ×
    theirs, at any step (here 2016-12-07 12:00 CET, a winter step without clock change)."""
    h = rural.history
    f = h.feeder
    t = pd.Timestamp("2016-12-07 12:00")
    p, q = f.bus_load(f.class_15min.loc[[t]])
    prof_l = raw.profiles["load"].set_index("time").loc["07.12.2016 12:00"]
    prof_r = raw.profiles["renewables"].set_index("time").loc["07.12.2016 12:00"]
    ids = feeders._bus_map(rural.network)
    cut, _ = feeders.cut_at_transformers(raw)
    exp_p = pd.Series(0.0, index=rural.network.bus_ids)
    exp_q = pd.Series(0.0, index=rural.network.bus_ids)
    for _, ld in cut.load.iterrows():
        exp_p[ids[ld.bus]] += ld.p_mw * 1e3 * prof_l[f"{ld.profile}_pload"]
        exp_q[ids[ld.bus]] += ld.q_mvar * 1e3 * prof_l[f"{ld.profile}_qload"]
    plants = set(zip(rural.plants.bus, rural.plants.kind))
    for _, g in cut.sgen.iterrows():
        kind = "pv" if "PV" in g.type and g.type != "lv_RES" else "wt" if "Wind" in g.type else ""
        if (ids[g.bus], kind) not in plants:
            exp_p[ids[g.bus]] -= g.p_mw * 1e3 * prof_r[g.profile]
    np.testing.assert_allclose(p.iloc[0].to_numpy(), exp_p.to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(q.iloc[0].to_numpy(), exp_q.to_numpy(), rtol=1e-9, atol=1e-9)
    # every MV plant has its own renewable site with its own SimBench profile
    assert set(rural.plants.site) <= set(h.sites) and {"pv", "wt"} <= set(h.sites)
    assert set(rural.plants.profile) == {"PV3", "PV7", "WP4", "WP7"}


def test_mv_rural_yaml_follows_the_documented_rules():
    from evsched.yamlio import load_yaml_mapping
    params = load_yaml_mapping(PARAMS / "mv_rural.yaml")
    for k, v in feeders.suggested_parameters(CODE).items():
        assert params[k] == v, k


def test_station_rule_one_per_largest_feeder(rural):
    net = rural.network
    st = feeders.station_rule(net)
    head = feeders.feeder_of_bus(net)
    heads = {int(head[i]) for i in net.bus_index(st)}
    assert len(st) == 3 and len(heads) == 3  # three different MV feeders


def test_network_parameter():
    from evsched.case import load_case
    with pytest.raises(InputError, match="field 'network' = 'ieee34': must be 'ieee33' or 'simbench:"):
        load_case(network="ieee34")
    with pytest.raises(InputError, match="not a SimBench grid code"):
        feeders.load_network("simbench:no-such-grid")
    assert feeders.load_network("ieee33").name == "ieee33"
    from evsched import run_study
    for nb in ("00_network", "01_load_forecast", "02_tou"):
        assert run_study.notebook_scope(NOTEBOOKS / f"{nb}.ipynb").get("network") == ["ieee33"]
    for nb in ("03_reservations", "04_scenarios", "05_visualisation", "09_network_realism"):
        assert run_study.notebook_scope(NOTEBOOKS / f"{nb}.ipynb").get("network") is None


@pytest.mark.slow
def test_mv_rural_study_is_certified():
    """S0-S3 on the MV feeder: S2/S3 exact and AC-verified (1e-4 p.u., 0.5 %), every reservation
    honoured, every line within its rating and the transformer within its 50 MVA."""
    from evsched import scenarios
    from evsched.case import build_case, load_case
    cd = build_case(load_case(PARAMS / "mv_rural.yaml"))
    assert cd.network.n_bus == 94 and len(cd.reservations) == 917
    for name in ("S2", "S3"):
        r = scenarios.run_scenario(name, cd)
        row = r.summary()
        chk = r.ac_check()
        assert row["exact"] and chk["max_voltage_mismatch_pu"] < 1e-4 and abs(chk["loss_rel_diff"]) < 5e-3
        assert row["reservations_not_honoured"] == 0
        assert row["max_loading_pct"] <= 100 + 1e-3 and chk["max_loading_mismatch_pct"] < 0.5


def test_15_minute_history_keeps_simbenchs_own_quarter_hours(rural, raw):
    """SimBench profiles are 15-minute: the plants' availability in the history is SimBench's
    own quarter-hour value (not the hour's mean repeated), its hourly means are the hourly
    history, and the 15-minute renewable forecast is the mean of the same quarter-hour over
    the window (so the quarter-hours of one hour differ)."""
    from evsched import forecast
    h = rural.history
    assert h.renewables_15min is not None and h.load_15min is not None
    d = h.index_of("2016-12-07")
    prof = raw.profiles["renewables"].set_index("time")
    site = "wt@12"
    profile = rural.plants.set_index("site").at[site, "profile"]
    s = h.sites.index(site)
    for q, label in ((48, "07.12.2016 12:00"), (49, "07.12.2016 12:15"), (75, "07.12.2016 18:45")):
        assert h.renewables_15min[d, q, s] == pytest.approx(max(float(prof.at[label, profile]), 0.0), abs=1e-12)
    np.testing.assert_allclose(h.renewables_15min.reshape(len(h.dates), 24, 4, -1).mean(axis=2),
                               h.renewables, rtol=0, atol=1e-12)
    fc = forecast.forecast_renewables("2016-12-07", 7, h, resolution_min=15)
    w = fc[fc.site == site].sort_values("hour").availability_pu.to_numpy()
    np.testing.assert_allclose(w, h.renewables_15min[d - 7:d, :, s].mean(axis=0), rtol=0, atol=1e-12)
    assert np.ptp(w.reshape(24, 4), axis=1).max() > 1e-3   # not an hourly value repeated


def test_transformers_on_separate_busbars_are_refused(raw):
    """The slack is the transformers' one LV busbar: with the bus-bus switch between the two
    busbar sections open, the second transformer would be a second infeed, which the cut
    refuses, naming the transformer, its bus and the switch to close."""
    import copy
    net = copy.deepcopy(raw)
    tr = net.trafo[net.trafo.in_service.astype(bool)]
    a, b = (int(x) for x in tr.lv_bus)
    sw = net.switch.index[(net.switch.et == "b") & net.switch.bus.isin([a, b]) & net.switch.element.isin([a, b])]
    assert len(sw) == 1
    net.switch.loc[sw, "closed"] = False
    with pytest.raises(NetworkDataError, match=rf"transformer {tr.index[1]} feeds bus {b}, which is not joined "
                                               rf"to bus {a} .*close bus-bus switch\(es\) \[{sw[0]}\]"):
        feeders.cut_at_transformers(net)
    # the slack is the first in-service transformer's LV busbar, whichever transformer that is
    net = copy.deepcopy(raw)
    net.trafo.loc[tr.index[0], "in_service"] = False
    cut, kva = feeders.cut_at_transformers(net)
    assert kva == pytest.approx(1e3 * float(tr.sn_mva.iloc[1]))
    assert cut.ext_grid.bus.tolist() == [b]
