"""Plotly figures of the scenario results, and :func:`save_figure` (offline HTML, PNG if possible).

Every builder takes ``{name: ScenarioResult}`` (or one result) and returns a
``plotly.graph_objects.Figure``; nothing here computes model results.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from evsched import metrics
from evsched.netmap import feeder_paths, network_map

COLORS = {"S0": "#7f7f7f", "S1": "#1f77b4", "S2": "#ff7f0e", "S3": "#2ca02c"}
TOU_COLORS = {"deep_valley": "#2c7bb6", "valley": "#abd9e9", "flat": "#ffffff",
              "peak": "#fdae61", "sharp_peak": "#d7191c"}
V_SCALE = (0.93, 1.07)
"""Common colour range of every voltage plot [p.u.] (the 0.95/1.05 limits sit inside it)."""

_png_notice_shown = False
_png_server_started = False


def _start_png_server() -> None:
    """Start kaleido's persistent browser once, so each PNG costs ~0.1 s instead of a
    browser start (~2 s); harmless if it fails (write_image then starts its own)."""
    global _png_server_started
    if _png_server_started:
        return
    _png_server_started = True
    try:
        import kaleido
        kaleido.start_sync_server(silence_warnings=True)
    except Exception:  # old kaleido, no server support: fall back to per-call export
        pass


# --- saving ---------------------------------------------------------------------------------

def png_available() -> bool:
    """True when a Chromium for kaleido's static export is on the PATH."""
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def save_figure(fig: go.Figure, results_dir, name: str, png: bool = True) -> dict:
    """Write ``<results_dir>/figures/<name>.html`` (plotly.js shipped once beside it, offline)
    and, when a Chromium is available, ``<name>.png``.

    PNG export never fails the caller: without a browser one line says it is skipped and
    how to enable it (``make png-support``); an export error is reported in one line too.
    Returns the paths written.
    """
    global _png_notice_shown
    out = Path(results_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"{name}.html"}
    fig.write_html(paths["html"], include_plotlyjs="directory", full_html=True)
    if png:
        if not png_available():
            if not _png_notice_shown:
                print("PNG export skipped (no Chromium found); HTML figures are written. "
                      "Enable PNG with `make png-support`.")
                _png_notice_shown = True
        else:
            try:
                _start_png_server()
                with warnings.catch_warnings():  # plotly: "kopts ignored if using a server" (harmless)
                    warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                    fig.write_image(out / f"{name}.png", width=1100, height=fig.layout.height or 500)
                paths["png"] = out / f"{name}.png"
            except Exception as exc:  # kaleido/browser problems must not stop a run
                print(f"PNG export of {name} failed ({type(exc).__name__}: {str(exc)[:120]}); HTML written.")
    return paths


def show(fig: go.Figure) -> None:
    """Display a figure in a notebook with the plotly MIME type (what JupyterLab renders).

    Equivalent to ``fig.show(renderer="plotly_mimetype")`` but without importing
    ``plotly.io``'s renderer machinery, whose first import pulls nbformat → jsonschema →
    rfc3987_syntax and costs 2-4 s per kernel in this environment.
    """
    import json

    from IPython.display import display
    bundle = {"application/vnd.plotly.v1+json": {**json.loads(fig.to_json()), "config": {"responsive": True}},
              "text/plain": f"<plotly figure: {fig.layout.title.text or ''}>"}
    display(bundle, raw=True)


# --- helpers ------------------------------------------------------------------------------------

def tou_blocks(tou: pd.DataFrame) -> list[tuple[int, int, str]]:
    """Contiguous ``(start_hour, end_hour_exclusive, period)`` blocks of a TOU table."""
    t = tou.sort_values("hour")
    out, start = [], None
    per = t["period"].tolist()
    hrs = t["hour"].tolist()
    for i, p in enumerate(per):
        if start is None:
            start = hrs[i]
        if i == len(per) - 1 or per[i + 1] != p:
            out.append((start, hrs[i] + 1, p))
            start = None
    return out


def _add_tou_shading(fig: go.Figure, tou: pd.DataFrame | None, row=None, col=None) -> None:
    if tou is None:
        return
    seen = set()
    for a, b, p in tou_blocks(tou):
        if p == "flat":
            continue
        kw = dict(row=row, col=col) if row is not None else {}
        fig.add_vrect(x0=a - 0.5, x1=b - 0.5, fillcolor=TOU_COLORS.get(p, "#eee"), opacity=0.25,
                      line_width=0, layer="below", **kw)
        if p not in seen:  # legend entry per period
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"TOU {p.replace('_', ' ')}",
                                     marker=dict(size=12, symbol="square", color=TOU_COLORS.get(p)),
                                     showlegend=True), **kw)
            seen.add(p)


# --- figures ---------------------------------------------------------------------------------

def equivalent_load_figure(results: dict, tou: pd.DataFrame | None = None) -> go.Figure:
    """Equivalent load ``P_eq(t)`` of every scenario on one chart, TOU periods shaded."""
    fig = go.Figure()
    _add_tou_shading(fig, tou)
    for name, r in results.items():
        p = metrics.equivalent_load(r.dispatch)
        fig.add_trace(go.Scatter(x=p.index, y=p.values, mode="lines+markers", name=name,
                                 line=dict(color=COLORS.get(name), width=2.5 if name == "S3" else 2),
                                 hovertemplate=name + " %{x}:00 · %{y:.0f} kW<extra></extra>"))
    fig.update_layout(title="Equivalent load P_eq(t) = base load + EV charging − EV discharging − PV − WT",
                      xaxis=dict(title="hour", dtick=2), yaxis_title="kW", height=450,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def voltage_heatmaps(results: dict, v_min_pu: float = 0.95, v_max_pu: float = 1.05) -> go.Figure:
    """Bus × hour voltage heatmaps, one panel per scenario, on one colour scale
    (:data:`V_SCALE`); black contours mark the limits ``v_min_pu`` and ``v_max_pu``."""
    names = list(results)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.02)
    lo, hi = V_SCALE
    for j, name in enumerate(names, start=1):
        v = results[name].voltages.pivot(index="bus", columns="hour", values="v_pu")
        fig.add_trace(go.Heatmap(z=v.values, x=v.columns, y=v.index, zmin=lo, zmax=hi,
                                 colorscale="RdBu", coloraxis="coloraxis",
                                 hovertemplate=name + " bus %{y}, %{x}:00 · %{z:.4f} p.u.<extra></extra>"),
                      row=1, col=j)
        for lim in (v_min_pu, v_max_pu):
            if v.values.min() <= lim <= v.values.max():
                fig.add_trace(go.Contour(z=v.values, x=v.columns, y=v.index, showscale=False,
                                         contours=dict(start=lim, end=lim, size=1, coloring="none"),
                                         line=dict(color="black", width=2, dash="dot"),
                                         hoverinfo="skip", name=f"{lim} p.u."), row=1, col=j)
    fig.update_layout(coloraxis=dict(colorscale="RdBu", cmin=lo, cmax=hi,
                                     colorbar=dict(title="V [p.u.]", tickvals=[lo, v_min_pu, 1.0, v_max_pu, hi])),
                      title=f"Bus voltages (dotted: the {v_min_pu}/{v_max_pu} p.u. limits where reached)",
                      height=520)
    fig.update_yaxes(title_text="bus", row=1, col=1, autorange="reversed")
    fig.update_xaxes(title_text="hour")
    return fig


def peak_hour(results: dict, reference: str = "S1") -> int:
    """Hour of the maximum equivalent load of ``reference`` (the first scenario if absent)."""
    r = results.get(reference) or next(iter(results.values()))
    return int(metrics.equivalent_load(r.dispatch).idxmax())


def voltage_profile_figure(results: dict, network, hour: int | None = None,
                           v_min_pu: float = 0.95, v_max_pu: float = 1.05) -> go.Figure:
    """Voltage along each substation-to-leaf path at ``hour`` (default: the S1 peak hour),
    one panel per path, one line per scenario."""
    hour = peak_hour(results) if hour is None else hour
    paths = feeder_paths(network)
    titles = [f"path 1 → {p[-1]}" for p in paths]
    ncol = 2
    nrow = int(np.ceil(len(paths) / ncol))
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=titles, shared_yaxes=True,
                        vertical_spacing=0.12)
    for k, path in enumerate(paths):
        row, col = k // ncol + 1, k % ncol + 1
        for name, r in results.items():
            v = r.voltages[r.voltages.hour == hour].set_index("bus")["v_pu"].reindex(path)
            fig.add_trace(go.Scatter(x=[str(b) for b in path], y=v.values, mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=k == 0,
                                     line=dict(color=COLORS.get(name)),
                                     hovertemplate=name + " bus %{x} · %{y:.4f} p.u.<extra></extra>"),
                          row=row, col=col)
        for lim in (v_min_pu, v_max_pu):
            fig.add_hline(y=lim, line=dict(dash="dot", color="red"), row=row, col=col)
    fig.update_yaxes(range=list(V_SCALE))
    fig.update_xaxes(title_text="bus (in path order)", type="category")
    fig.update_layout(title=f"Voltage along the feeder at the peak hour ({hour}:00)", height=330 * nrow)
    return fig


def network_voltage_map(result, network, title: str | None = None) -> go.Figure:
    """Network map coloured by bus voltage with an hour slider (one scenario)."""
    v = result.voltages.pivot(index="bus", columns="hour", values="v_pu")
    hours = list(v.columns)
    lo, hi = V_SCALE
    highlight = {}
    for dev, label in (("ev_station", "EV station"), ("pv", "PV"), ("wt", "WT")):
        buses = sorted(result.dispatch.loc[result.dispatch.device == dev, "bus"].unique())
        if buses:
            highlight[label] = buses
    fig = network_map(network, v[hours[0]], value_label="V [p.u.]", colorscale="RdBu", cmin=lo, cmax=hi,
                      highlight=highlight, title=title or f"{result.name}: bus voltages")
    bus_trace = next(i for i, t in enumerate(fig.data) if t.name == "bus")
    order = network.buses["bus"].to_numpy()
    steps = [dict(method="restyle", label=str(h),
                  args=[{"marker.color": [v[h].reindex(order).to_numpy()]}, [bus_trace]]) for h in hours]
    fig.update_layout(sliders=[dict(active=0, currentvalue=dict(prefix="hour "), steps=steps, pad=dict(t=40))],
                      height=600)
    return fig


def station_power_figure(results: dict) -> go.Figure:
    """EV station active power (every scenario with stations) and reactive power, per station."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("active power p [kW] (+ charging, − discharging)",
                                        "reactive power q [kvar] (+ absorbed, − injected)"))
    dashes = ["solid", "dash", "dot", "dashdot"]
    for name, r in results.items():
        d = r.dispatch[r.dispatch.device == "ev_station"]
        if d.empty:
            continue
        for k, (bus, g) in enumerate(d.groupby("bus")):
            g = g.sort_values("hour")
            style = dict(color=COLORS.get(name), dash=dashes[k % len(dashes)])
            fig.add_trace(go.Scatter(x=g.hour, y=g.p_kw, mode="lines", name=f"{name} station {bus}",
                                     legendgroup=f"{name}{bus}", line=style), row=1, col=1)
            if np.abs(g.q_kvar).max() > 1e-6:
                fig.add_trace(go.Scatter(x=g.hour, y=g.q_kvar, mode="lines", name=f"{name} station {bus} q",
                                         legendgroup=f"{name}{bus}", showlegend=False, line=style), row=2, col=1)
    fig.update_xaxes(title_text="hour", dtick=2, row=2, col=1)
    fig.update_layout(title="EV charging stations: active and reactive power", height=600)
    return fig


def renewable_power_figure(result) -> go.Figure:
    """PV and WT active power and reactive power of one scenario (per site)."""
    d = result.dispatch[result.dispatch.device.isin(["pv", "wt"])]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("active power p [kW] (negative = injected)",
                                        "reactive power q [kvar] (+ absorbed, − injected)"))
    palette = {"pv": ["#f1a340", "#b35806"], "wt": ["#998ec3", "#542788"]}
    for dev in ("pv", "wt"):
        for k, (bus, g) in enumerate(d[d.device == dev].groupby("bus")):
            g = g.sort_values("hour")
            c = palette[dev][k % 2]
            fig.add_trace(go.Scatter(x=g.hour, y=g.p_kw, name=f"{dev.upper()} bus {bus}", legendgroup=f"{dev}{bus}",
                                     line=dict(color=c)), row=1, col=1)
            fig.add_trace(go.Scatter(x=g.hour, y=g.q_kvar, name=f"{dev.upper()} bus {bus} q", showlegend=False,
                                     legendgroup=f"{dev}{bus}", line=dict(color=c)), row=2, col=1)
    fig.update_xaxes(title_text="hour", dtick=2, row=2, col=1)
    fig.update_layout(title=f"{result.name}: PV and wind-turbine power", height=600)
    return fig


def losses_figure(results: dict) -> go.Figure:
    """Active loss per hour [kW] of every scenario (its area is ζ in kWh)."""
    fig = go.Figure()
    for name, r in results.items():
        lp = metrics.loss_per_hour(r.branches)
        fig.add_trace(go.Scatter(x=lp.index, y=lp.values, mode="lines+markers", name=f"{name} (ζ = {lp.sum() * r.dt_h:.0f} kWh)",
                                 line=dict(color=COLORS.get(name))))
    fig.update_layout(title="Network losses per hour", xaxis=dict(title="hour", dtick=2),
                      yaxis_title="loss [kW]", height=420)
    return fig


def paper_comparison_figure(comparison: pd.DataFrame) -> go.Figure:
    """Grouped bars of the percent changes: the paper's figures next to ours."""
    c = comparison.copy()
    c["label"] = c["metric"].str.replace("_", " ") + "<br>" + c["comparison"]
    fig = go.Figure()
    paper = c.dropna(subset=["paper_pct"])
    fig.add_trace(go.Bar(x=paper["label"], y=paper["paper_pct"], name="paper (Cao et al. 2024)",
                         marker_color="#7570b3", text=paper["paper_pct"].map("{:.1f}".format), textposition="outside"))
    fig.add_trace(go.Bar(x=c["label"], y=c["ours_pct"], name="this study", marker_color="#1b9e77",
                         text=c["ours_pct"].map("{:.1f}".format), textposition="outside"))
    fig.update_layout(barmode="group", title="Percent change of each metric: paper vs ours",
                      yaxis_title="change [%]", height=480, xaxis=dict(categoryorder="array", categoryarray=list(c["label"])))
    return fig
