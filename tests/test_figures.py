"""Figure properties (units in hovers, distinguishable scenarios, one TOU scheme, round price
ticks, a planar network map, the peak hour) and where figures go (batch vs interactive runs).

The figures are built from small synthetic scenario results on the IEEE 33-bus feeder: the
builders only read the result tables, so no optimisation runs here.
"""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from evsched import figures, netmap
from evsched.network import build_network

UNITS = ("kW", "kvar", "p.u.", "kWh", "%", "/kWh", "Ω", "kV")
HOURS = np.arange(24)
STATIONS, PV, WT = (14, 22, 30), (13, 24), (18, 33)


def _result(name, net, ev_kw, q_scale, v_drop):
    shape = 0.7 + 0.3 * np.sin(np.pi * (HOURS - 5) / 14).clip(0)
    rows, vrows, brows = [], [], []
    for _, b in net.buses.iterrows():
        if b.type == "slack":
            continue
        for h in HOURS:
            rows.append((h, b.bus, "load", b.p_kw * shape[h], b.q_kvar * shape[h]))
    for k, s in enumerate(STATIONS):
        for h in HOURS:
            rows.append((h, s, "ev_station", ev_kw[k][h], -q_scale * 30.0 * (1 + k)))
    for s in PV:
        for h in HOURS:
            rows.append((h, s, "pv", -400.0 * max(0.0, np.sin(np.pi * (h - 6) / 12)), -q_scale * 20.0))
    for s in WT:
        for h in HOURS:
            rows.append((h, s, "wt", -250.0, -q_scale * 10.0))
    depth = netmap.tree_layout(net)["depth"]
    for bus, d in depth.items():
        for h in HOURS:
            vrows.append((h, bus, 1.0 - v_drop * d / depth.max() * shape[h]))
    for f, t in zip(net.lines.from_bus[net.lines.in_service], net.lines.to_bus[net.lines.in_service]):
        for h in HOURS:
            brows.append((h, f, t, 100.0, 50.0, 2.0 * shape[h]))
    return SimpleNamespace(
        name=name, dt_h=1.0,
        dispatch=pd.DataFrame(rows, columns=["hour", "bus", "device", "p_kw", "q_kvar"]),
        voltages=pd.DataFrame(vrows, columns=["hour", "bus", "v_pu"]),
        branches=pd.DataFrame(brows, columns=["hour", "from_bus", "to_bus", "p_kw", "q_kvar", "loss_kw"]))


@pytest.fixture(scope="module")
def results(ieee33):
    uncontrolled = [np.where((HOURS >= 17) & (HOURS <= 21), 300.0, 10.0)] * 3
    scheduled = [np.where(HOURS <= 5, 200.0, 20.0)] * 3   # S2 and S3 coincide in P
    return {"S0": _result("S0", ieee33, uncontrolled, 0.0, 0.07),
            "S1": _result("S1", ieee33, [np.zeros(24)] * 3, 0.0, 0.08),
            "S2": _result("S2", ieee33, scheduled, 0.0, 0.05),
            "S3": _result("S3", ieee33, scheduled, 1.0, 0.03)}


@pytest.fixture(scope="module")
def tou():
    period = (["valley"] * 3 + ["deep_valley"] * 2 + ["valley"] * 2 + ["peak"] * 3 + ["sharp_peak"] * 2
              + ["peak"] * 2 + ["flat"] * 8 + ["valley"] * 2)
    ratio = {"deep_valley": 0.2, "valley": 0.4, "flat": 1.0, "peak": 1.85, "sharp_peak": 2.05}
    return pd.DataFrame({"hour": HOURS, "period": period, "price_per_kwh": [0.65 * ratio[p] for p in period]})


@pytest.fixture(scope="module")
def all_figures(results, tou, ieee33):
    comparison = pd.DataFrame({"metric": ["loss_kwh", "peak_valley_kw"], "comparison": ["S2 vs S1", "S2 vs S1"],
                               "paper_pct": [-85.19, np.nan], "ours_pct": [-40.0, -30.6]})
    curve = 2000 + 900 * np.sin(np.pi * (HOURS - 5) / 14).clip(0)
    return {
        "network_map": netmap.network_map(ieee33),
        "base_voltage_profile": netmap.voltage_profile(ieee33, results["S1"].voltages.query("hour == 11")
                                                       .set_index("bus").v_pu, v_min_pu=0.95, v_max_pu=1.05),
        "tou": figures.tou_figure(tou, curve),
        "equivalent_load": figures.equivalent_load_figure(results, tou),
        "voltage_heatmaps": figures.voltage_heatmaps(results),
        "voltage_profile": figures.voltage_profile_figure(results, ieee33),
        "network_voltage_map": figures.network_voltage_map(results["S3"], ieee33),
        "station_power": figures.station_power_figure({k: results[k] for k in ("S0", "S2", "S3")}),
        "renewables": figures.renewable_power_figure(results["S3"]),
        "losses": figures.losses_figure(results),
        "paper": figures.paper_comparison_figure(comparison),
    }


def _hoverable(trace) -> bool:
    if getattr(trace, "hoverinfo", None) == "skip" or trace.type == "contour":
        return False
    xs = getattr(trace, "x", None)
    return xs is None or any(x is not None for x in xs)


# --- hovers and styles ---------------------------------------------------------------------

def test_every_hover_has_a_unit(all_figures):
    for name, fig in all_figures.items():
        for tr in fig.data:
            if not _hoverable(tr):
                continue
            tmpl = tr.hovertemplate or ""
            assert tmpl, f"{name}: trace {tr.name!r} has no hovertemplate"
            assert any(u in tmpl for u in UNITS), f"{name}: trace {tr.name!r} hover {tmpl!r} names no unit"


def test_s2_and_s3_are_distinguishable_where_they_coincide(all_figures):
    for name in ("equivalent_load", "station_power", "voltage_profile", "losses"):
        fig = all_figures[name]
        s2 = [t for t in fig.data if (t.name or "").startswith("S2")]
        s3 = [t for t in fig.data if (t.name or "").startswith("S3")]
        assert s2 and s3, name
        for a, b in zip(s2, s3):
            assert a.line.dash != b.line.dash, f"{name}: S2 and S3 share a dash style"
            assert a.marker.symbol != b.marker.symbol, f"{name}: S2 and S3 share a marker"
            assert a.zorder > b.zorder, f"{name}: the dashed S2 must be drawn above the wide S3"
            assert b.line.width > a.line.width, name
    # in the station figure the coinciding S2/S3 curves are both drawn (not hidden by a filter)
    p = [t for t in all_figures["station_power"].data if t.name in ("S2", "S3") and t.xaxis == "x"]
    assert len(p) == 2 and np.allclose(p[0].y, p[1].y)


def test_one_tou_colour_scheme_and_a_flat_legend_entry(all_figures):
    eq = all_figures["equivalent_load"]
    legend = {t.name: t.marker.color for t in eq.data if (t.name or "").startswith("TOU ")}
    assert set(legend) == {"TOU deep valley", "TOU valley", "TOU flat", "TOU peak", "TOU sharp peak"}
    for period, colour in figures.TOU_COLORS.items():
        assert legend[figures._tou_label(period)] == colour
    shade = {s.fillcolor for s in eq.layout.shapes}
    assert shade == set(figures.TOU_COLORS.values())      # flat is shaded too
    bars = {t.name: t.marker.color for t in all_figures["tou"].data if t.type == "bar"}
    assert bars == {p.replace("_", " "): c for p, c in figures.TOU_COLORS.items()}


def test_price_axis_has_round_ticks_aligned_with_the_load_axis(all_figures):
    lay = all_figures["tou"].layout
    for ax in (lay.yaxis, lay.yaxis2):
        step = ax.dtick
        mantissa = step / 10 ** np.floor(np.log10(step))
        assert any(np.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), f"tick step {step}"
        assert ax.range[0] == 0 and np.isclose(ax.range[1] / step, round(ax.range[1] / step))
    assert round(lay.yaxis.range[1] / lay.yaxis.dtick) == round(lay.yaxis2.range[1] / lay.yaxis2.dtick)
    assert lay.yaxis2.showgrid is False


@pytest.mark.parametrize("span", [0.3, 1.37, 2.05, 7.0, 2970.0, 12345.0])
def test_nice_step(span):
    step = figures.nice_step(span)
    assert 3 <= np.ceil(span / step - 1e-9) <= 5   # 3 to 5 round intervals


def test_voltage_profile_axes_titled_without_overlap(all_figures):
    fig = all_figures["voltage_profile"]
    rows = {}
    for name in fig.layout:
        if re.fullmatch(r"yaxis\d*", name):
            ax = fig.layout[name]
            rows.setdefault(tuple(ax.domain), []).append(ax)
    assert len(rows) == 2
    for axes in rows.values():    # the first panel of every row says what y is
        assert any(ax.title.text and "p.u." in ax.title.text for ax in axes)
    # x-axis titles only on the bottom row, so none runs into a panel title below it
    titled = [fig.layout[n] for n in fig.layout if re.fullmatch(r"xaxis\d*", n) and fig.layout[n].title.text]
    anchors = {fig.layout[ax.anchor.replace("y", "yaxis")].domain[0] for ax in titled}
    assert titled and anchors == {min(d[0] for d in rows)}
    # the legend does not sit on the panel titles: it is anchored to the figure's top edge
    assert fig.layout.legend.yref == "container"


# --- network map ---------------------------------------------------------------------------

def test_network_map_is_a_planar_tree_with_the_substation_marked(ieee33, all_figures):
    xy = netmap.tree_layout(ieee33)
    closed = ieee33.lines[ieee33.lines.in_service]
    assert netmap.crossing_lines(xy, closed) == []
    assert len({(x, y) for x, y in zip(xy.x, xy.y)}) == ieee33.n_bus      # no two buses on one spot
    path = ieee33.path_to(18)                                              # the main feeder: one row
    assert set(xy.loc[path, "y"]) == {0.0}
    par = ieee33.parent
    for i, p in enumerate(par):   # every line joins a bus to the next column
        if p >= 0:
            assert xy.iloc[i].x == xy.iloc[p].x + 1
    fig = all_figures["network_map"]
    sub = next(t for t in fig.data if (t.name or "").startswith("substation"))
    assert sub.marker.symbol == "square" and (sub.x[0], sub.y[0]) == (xy.at[1, "x"], xy.at[1, "y"])
    bus = next(t for t in fig.data if t.name == "bus")
    assert bus.marker.cmin == 0 and "kW" in bus.hovertemplate


@pytest.mark.parametrize("seed", range(8))
def test_tree_layout_never_crosses_on_random_feeders(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    parent = [0] + [int(rng.integers(0, k)) for k in range(1, n)]
    buses = pd.DataFrame({"bus": np.arange(1, n + 1), "type": ["slack"] + ["pq"] * (n - 1), "vn_kv": 12.66,
                          "p_kw": 50.0, "q_kvar": 20.0})
    lines = pd.DataFrame({"line": np.arange(1, n), "from_bus": [parent[k] + 1 for k in range(1, n)],
                          "to_bus": np.arange(2, n + 1), "r_ohm": 0.1, "x_ohm": 0.1, "in_service": True})
    net = build_network(buses, lines, name=f"random{seed}")
    xy = netmap.tree_layout(net)
    assert netmap.crossing_lines(xy, net.lines) == []
    assert len({(x, y) for x, y in zip(xy.x, xy.y)}) == n
    netmap.network_map(net)   # draws without coordinates


def test_crossing_detector_finds_a_crossing():
    xy = pd.DataFrame({"x": [0, 1, 0, 1], "y": [0, 1, 1, 0]}, index=[1, 2, 3, 4])
    lines = pd.DataFrame({"from_bus": [1, 3], "to_bus": [2, 4]})
    assert netmap.crossing_lines(xy, lines) == [((1, 2), (3, 4))]


def test_voltage_map_opens_at_the_peak_hour(results, ieee33, all_figures):
    fig = all_figures["network_voltage_map"]
    hour = figures.peak_hour(results["S3"])
    assert hour != 0 and hour == figures.peak_hour(results)     # S1's base-load peak, the same in S3
    slider = fig.layout.sliders[0]
    assert slider.steps[slider.active].label == str(hour)
    bus = next(t for t in fig.data if t.name == "bus")
    v = results["S3"].voltages.query("hour == @hour").set_index("bus").v_pu.reindex(ieee33.bus_ids)
    assert np.allclose(bus.marker.color, v.to_numpy())
    assert (bus.marker.cmin, bus.marker.cmax) == figures.V_SCALE
    rings = {t.name: t for t in fig.data if t.name in ("EV station", "PV", "WT")}
    assert set(rings) == {"EV station", "PV", "WT"}
    for t in rings.values():
        assert all("kW" in c and "kvar" in c for c in t.customdata)
        assert f"at {hour}:00" in t.customdata[0]


def test_kw_maps_start_at_zero(ieee33):
    p = pd.Series(np.linspace(5, 300, ieee33.n_bus), index=ieee33.bus_ids)
    fig = netmap.network_map(ieee33, p, value_label="P [kW]", unit="kW", colorscale="Viridis")
    assert next(t for t in fig.data if t.name == "bus").marker.cmin == 0


# --- output folders and notebook display ---------------------------------------------------

@pytest.fixture
def fake_results(tmp_path, monkeypatch):
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setattr(figures, "RESULTS", root)
    monkeypatch.setattr(figures, "LAB_DIR", root / "lab")
    monkeypatch.setattr(figures, "_lab_notice_shown", False)
    monkeypatch.delenv(figures.BATCH_ENV, raising=False)
    monkeypatch.delenv(figures.PNG_ENV, raising=False)
    return root


def test_interactive_runs_write_to_results_lab(fake_results, tmp_path, monkeypatch, capsys):
    assert figures.output_dir(fake_results) == fake_results / "lab"
    out = capsys.readouterr().out
    assert "interactive run: writing to" in out and "lab" in out
    named = fake_results / "windy"
    named.mkdir()
    assert figures.output_dir(named) == named                      # not a complete run: as given
    (named / "run_info.json").write_text("{}")
    assert figures.output_dir(named) == fake_results / "lab" / "windy"
    other = tmp_path / "elsewhere"
    assert figures.output_dir(other) == other
    paths = figures.save_figure(go.Figure(), fake_results, "x")
    assert paths["html"] == fake_results / "lab" / "figures" / "x.html" and paths["html"].exists()
    assert "png" not in paths                                      # interactive: no PNG by default
    assert not (fake_results / "figures").exists()


def test_batch_runs_write_where_they_are_told(fake_results, monkeypatch):
    monkeypatch.setenv(figures.BATCH_ENV, "1")
    assert figures.output_dir(fake_results) == fake_results
    monkeypatch.setenv(figures.PNG_ENV, "0")
    paths = figures.save_figure(go.Figure(), fake_results, "y")
    assert paths["html"] == fake_results / "figures" / "y.html"
    assert (fake_results / "figures" / "plotly.min.js").exists()


def test_show_survives_nbconvert(monkeypatch):
    import IPython.display
    import nbformat
    from nbconvert import HTMLExporter

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2], hovertemplate="%{y} kW<extra></extra>"))
    fig.update_layout(title="a </script> title", height=300)
    figures.show(fig)
    bundle = shown[0]
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html", "text/plain"}
    html = bundle["text/html"]
    assert figures.PLOTLYJS_REL in html and "Plotly.newPlot" in html and "</script> title" not in html
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show(fig)", outputs=[
        nbformat.v4.new_output("display_data", data=bundle)])])
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    assert "Plotly.newPlot" in body and "&lt;plotly figure" not in body
    spec = json.loads(re.search(r"spec = (\{.*?\});\n", html, re.S).group(1).replace("<\\/", "</"))
    assert spec["layout"]["height"] == 300


def test_tou_figure_draws_a_quarter_hour_curve_inside_the_hourly_bars(tou):
    """At 15 minutes the bars are the hourly means (the tariff's hours) and the 96 steps are a
    line, each step inside its hour's bar, hovering its clock time."""
    hourly = 2000 + 900 * np.sin(np.pi * (HOURS - 5) / 14).clip(0)
    quarter = np.repeat(hourly, 4) + np.tile([-30.0, -10.0, 10.0, 30.0], 24)   # hourly means = hourly
    fig = figures.tou_figure(tou, quarter)
    bars = [tr for tr in fig.data if tr.type == "bar"]
    got = pd.concat([pd.Series(tr.y, index=tr.x) for tr in bars]).sort_index()
    np.testing.assert_allclose(got.to_numpy(), hourly)
    line, = [tr for tr in fig.data if tr.name == "15-minute forecast"]
    x = np.asarray(line.x, float)
    assert len(x) == 96 and np.allclose(np.asarray(line.y, float), quarter)
    assert (np.floor(x + 0.5) == np.repeat(HOURS, 4)).all() and x[73] == pytest.approx(18 - 0.5 + 0.125 + 0.25)
    assert list(line.customdata[72:74]) == ["18:00", "18:15"]
    # an hourly curve draws no line (the hourly figure is unchanged)
    assert not [tr for tr in figures.tou_figure(tou, hourly).data if tr.name == "15-minute forecast"]
