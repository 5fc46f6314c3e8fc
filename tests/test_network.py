"""Network loading and validation: every rule is triggered by a malformed file."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import evsched
from evsched.errors import NetworkDataError
from evsched.network import load_network_csv
from evsched.paths import DATA


def test_ieee33_topology(ieee33):
    assert ieee33.n_bus == 33 and ieee33.n_branch == 32
    assert ieee33.slack_bus == 1
    assert ieee33.buses.p_kw.sum() == pytest.approx(3715.0)
    assert ieee33.buses.q_kvar.sum() == pytest.approx(2300.0)
    assert len(ieee33.lines) == 37 and (~ieee33.lines.in_service).sum() == 5
    # parents: main feeder 1-2-...-18 and laterals 2-19, 3-23, 6-26
    par = dict(zip(ieee33.bus_ids, [ieee33.bus_ids[p] if p >= 0 else None for p in ieee33.parent]))
    assert par[2] == 1 and par[18] == 17 and par[19] == 2 and par[23] == 3 and par[26] == 6
    assert ieee33.path_to(18) == list(range(1, 19))


def test_per_unit_and_line_7_8(ieee33):
    # Z_base = 12.66² / 1 MVA; the correct line 7-8 is 0.7114 + j0.2351 Ω (not 1.7114 + j1.2351)
    assert ieee33.z_base_ohm == pytest.approx(160.2756)
    br = ieee33.branch_table().set_index(["from_bus", "to_bus"])
    assert br.loc[(7, 8), "r_ohm"] == pytest.approx(0.7114)
    assert br.loc[(7, 8), "x_ohm"] == pytest.approx(0.2351)
    assert br.loc[(7, 8), "r_pu"] == pytest.approx(0.7114 / 160.2756)


def test_incidence_matrices(ieee33):
    Cf, Ct = ieee33.C_from.toarray(), ieee33.C_to.toarray()
    assert Cf.shape == (33, 32) and (Cf.sum(axis=0) == 1).all() and (Ct.sum(axis=0) == 1).all()
    # every bus but the slack is fed by exactly one branch
    assert Ct.sum(axis=1)[0] == 0 and (Ct.sum(axis=1)[1:] == 1).all()


def test_from_pandapower_matches_csv(ieee33):
    import pandapower.networks as pn
    other = evsched.from_pandapower(pn.case33bw())
    assert other.n_bus == 33
    np.testing.assert_allclose(np.sort(other.r_pu), np.sort(ieee33.r_pu), rtol=1e-9)
    assert other.buses.p_kw.sum() == pytest.approx(3715.0)


def test_from_pandapower_hand_built_feeder():
    import pandapower as pp
    net = pp.create_empty_network()
    b = [pp.create_bus(net, vn_kv=0.4) for _ in range(4)]
    pp.create_ext_grid(net, b[0])
    for f, t in ((0, 1), (1, 2), (1, 3)):
        pp.create_line_from_parameters(net, b[f], b[t], length_km=0.5, r_ohm_per_km=0.2,
                                       x_ohm_per_km=0.1, c_nf_per_km=0, max_i_ka=1)
    pp.create_load(net, b[2], p_mw=0.02, q_mvar=0.01)
    pp.create_sgen(net, b[3], p_mw=0.005)
    n = evsched.from_pandapower(net, name="lv4")
    assert n.n_bus == 4 and n.n_branch == 3
    assert n.r_pu * n.z_base_ohm == pytest.approx(np.full(3, 0.1))
    assert list(n.buses.p_kw) == pytest.approx([0, 0, 20, -5])
    assert n.parent.tolist() == [-1, 0, 1, 1]


def test_replicate(ieee33):
    big = ieee33.replicate(10)
    assert big.n_bus == 1 + 10 * 32 and big.n_branch == 10 * 32
    assert big.buses.p_kw.sum() == pytest.approx(37150.0)


# --- malformed files -----------------------------------------------------------------

@pytest.fixture
def case_dir(tmp_path):
    d = tmp_path / "feeder"
    shutil.copytree(DATA / "ieee33", d, ignore=shutil.ignore_patterns("*.py", "*.md"))
    return d


def _edit(case_dir, stem, fn):
    path = case_dir / f"{stem}.csv"
    df = pd.read_csv(path)
    df = fn(df)
    df.to_csv(path, index=False)


def _set(stem, row, col, value):
    def fn(df):
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df
    return stem, fn


CASES = [
    # (description, stem, edit function, expected message fragments)
    ("negative resistance", *_set("lines", 6, "r_ohm", -0.7), ["lines.csv", "row 8", "'r_ohm'", "> 0"]),
    ("zero reactance", *_set("lines", 0, "x_ohm", 0.0), ["lines.csv", "row 2", "'x_ohm'", "> 0"]),
    ("non-numeric resistance", *_set("lines", 3, "r_ohm", "abc"), ["lines.csv", "row 5", "'r_ohm'"]),
    ("unknown bus in a line", *_set("lines", 4, "to_bus", 99), ["lines.csv", "row 6", "'to_bus'", "99", "unknown bus"]),
    ("self loop", *_set("lines", 4, "to_bus", 5), ["lines.csv", "row 6", "'to_bus'", "different buses"]),
    ("duplicate bus", *_set("buses", 5, "bus", 5), ["buses.csv", "row 7", "'bus'", "duplicate"]),
    ("two slack buses", *_set("buses", 17, "type", "slack"), ["buses.csv", "exactly one", "slack", "found 2"]),
    ("no slack bus", *_set("buses", 0, "type", "pq"), ["buses.csv", "exactly one", "found 0"]),
    ("unknown bus type", *_set("buses", 3, "type", "pv"), ["buses.csv", "row 5", "'type'", "'slack' or 'pq'"]),
    ("NaN load", *_set("buses", 9, "p_kw", float("nan")), ["buses.csv", "row 11", "bus 10", "'p_kw'", "finite"]),
    ("zero nominal voltage", *_set("buses", 2, "vn_kv", 0.0), ["buses.csv", "row 4", "'vn_kv'"]),
    ("bad in_service flag", *_set("lines", 2, "in_service", "maybe"), ["lines.csv", "row 4", "'in_service'"]),
    ("closed tie line (loop)", *_set("lines", 32, "in_service", True), ["lines.csv", "row 34 (21-8)", "'in_service'", "closes a loop", "found 33"]),
    ("opened feeder line (island)", *_set("lines", 10, "in_service", False), ["buses.csv", "row 13 (bus 12)", "not connected", "31 in-service lines"]),
]


@pytest.mark.parametrize("desc,stem,fn,fragments", CASES, ids=[c[0] for c in CASES])
def test_malformed_file_is_named(case_dir, desc, stem, fn, fragments):
    _edit(case_dir, stem, fn)
    with pytest.raises(NetworkDataError) as err:
        load_network_csv(case_dir)
    for frag in fragments:
        assert frag in str(err.value), f"{desc}: {frag!r} not in {err.value}"


def test_duplicate_line(case_dir):
    def fn(df):
        extra = df.iloc[[3]].copy()
        extra["from_bus"], extra["to_bus"] = df.iloc[3]["to_bus"], df.iloc[3]["from_bus"]
        extra["in_service"] = False
        return pd.concat([df, extra], ignore_index=True)
    _edit(case_dir, "lines", fn)
    with pytest.raises(NetworkDataError, match=r"lines.csv, row 39, field 'from_bus/to_bus'.*duplicate line \(same buses as row 5\)"):
        load_network_csv(case_dir)


def test_loop_with_island(case_dir):
    # open line 2-3 and close tie 9-15: 32 in-service lines, but buses 3.. form an island with a loop
    def fn(df):
        df.loc[1, "in_service"] = False
        df.loc[33, "in_service"] = True
        return df
    _edit(case_dir, "lines", fn)
    with pytest.raises(NetworkDataError, match=r"lines.csv, row 35 \(9-15\), field 'in_service'.*closes a loop"):
        load_network_csv(case_dir)


def test_missing_column_and_file(case_dir):
    _edit(case_dir, "lines", lambda df: df.drop(columns=["x_ohm"]))
    with pytest.raises(NetworkDataError, match=r"lines.csv: missing column\(s\) \['x_ohm'\]"):
        load_network_csv(case_dir)
    (case_dir / "buses.csv").unlink()
    with pytest.raises(NetworkDataError, match="buses.csv: file not found"):
        load_network_csv(case_dir)


def test_unknown_bus_id_lookup(ieee33):
    with pytest.raises(NetworkDataError, match=r"unknown bus id\(s\) \[34\]"):
        ieee33.bus_index([2, 34])


def test_pandapower_with_transformer_rejected():
    import pandapower.networks as pn
    net = pn.example_simple()
    with pytest.raises(NetworkDataError, match="transformer"):
        evsched.from_pandapower(net)
