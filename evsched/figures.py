"""Plotly figures of the scenario results, where they are written, and how notebooks show them.

Every builder takes ``{name: ScenarioResult}`` (or one result) and returns a
``plotly.graph_objects.Figure``; nothing here computes model results. Conventions of every
figure: one style per scenario (:data:`SCENARIO_STYLE`: S2 dashed on top of a wide S3, so
they stay distinguishable where they coincide), one TOU colour scheme (:data:`TOU_COLORS`),
units in every hover, the white template. Time axes are in hours: a step is drawn at its
start hour (0, 1, ... or 0, 0.25, ... at ``resolution_min: 15``) and hovers name it as a clock
time (:func:`clock`: ``18:00``, ``18:15``); the TOU tariff is in whole clock hours.

Output folders — batch and interactive runs never share one:

* a batch run (``make run``: :mod:`evsched.run_study` sets ``EVSCHED_BATCH_RUN=1`` and passes
  ``results_dir``) writes exactly where ``results_dir`` says;
* an interactive run (JupyterLab, ``results_dir`` left at its default ``"../results"``)
  writes into ``results/lab/`` instead, so that it never touches a complete batch run
  (``results/`` or ``results/<name>/``, recognised by its ``run_info.json``).
  :func:`output_dir` decides; :func:`save_figure` applies it, and notebooks use it for their
  tables (``out = output_dir(results_dir)``).

PNG export (kaleido + a Chromium, ``make png-support``): on in batch runs, off in interactive
ones unless ``EVSCHED_PNG=1``. It uses at most one headless browser per process (kaleido's
persistent server, started at the first PNG and closed at exit); the notebooks of a batch run
execute one after the other, so at most one browser is alive at any time.
"""
from __future__ import annotations

import hashlib
import html
import itertools
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from evsched import metrics
from evsched.netmap import TEMPLATE, feeder_paths, network_map
from evsched.paths import RESULTS

BATCH_ENV = "EVSCHED_BATCH_RUN"
"""Environment variable set to ``1`` by the batch runner (:mod:`evsched.run_study`); inherited
by the notebooks' kernels."""
PNG_ENV = "EVSCHED_PNG"
"""``1`` turns PNG export on in interactive runs, ``0`` off in batch runs."""
LAB_DIR = RESULTS / "lab"
"""Where interactive (JupyterLab) runs write instead of a batch run's folder."""
PLOTLYJS_REL = "../figures/plotly.min.js"
"""plotly.js as seen from an executed notebook (``<run>/notebooks/x.ipynb`` → ``<run>/figures/``):
the HTML form of :func:`show` loads it from there when the page has no Plotly yet."""

SCENARIO_STYLE = {
    "S0": dict(color="#7f7f7f", dash="dot", symbol="x", width=2, marker_size=7, zorder=1),
    "S1": dict(color="#1f77b4", dash="solid", symbol="circle", width=2, marker_size=6, zorder=1),
    "S2": dict(color="#ff7f0e", dash="dash", symbol="triangle-up", width=2.5, marker_size=8, zorder=3),
    "S3": dict(color="#2ca02c", dash="solid", symbol="diamond", width=5, marker_size=10, zorder=2),
}
"""Line colour, dash, marker and drawing order of each scenario, shared by every figure.
S3 is a wide solid line drawn *below* S2's dashed line, so both show where they coincide."""
COLORS = {k: v["color"] for k, v in SCENARIO_STYLE.items()}
TOU_COLORS = {"deep_valley": "#2166ac", "valley": "#92c5de", "flat": "#bdbdbd",
              "peak": "#f4a582", "sharp_peak": "#b2182b"}
"""The one TOU colour scheme (blue = cheap, grey = flat, red = expensive) of every figure."""
TOU_ORDER = ("deep_valley", "valley", "flat", "peak", "sharp_peak")
V_SCALE = (0.93, 1.07)
"""Common colour range of every voltage plot [p.u.] (the 0.95/1.05 limits sit inside it)."""

_png_notice_shown = False
_lab_notice_shown = False
_png_server_started = False
_show_counter = itertools.count(1)


# --- where figures and tables go -------------------------------------------------------------

def is_batch_run() -> bool:
    """True inside a batch run (``EVSCHED_BATCH_RUN=1``, set by :mod:`evsched.run_study`)."""
    return os.environ.get(BATCH_ENV, "") == "1"


def output_dir(results_dir) -> Path:
    """The folder a notebook writes its tables and figures into.

    In a batch run (:func:`is_batch_run`) this is ``results_dir`` itself. In an interactive
    run, ``results_dir`` pointing at ``results/`` (the notebooks' default ``"../results"``) or
    at a complete named run ``results/<name>/`` (it holds ``run_info.json``) is replaced by
    ``results/lab/`` (``results/lab/<name>/``): a batch run's folder is never touched. Any
    other folder is returned unchanged.
    """
    global _lab_notice_shown
    path = Path(results_dir)
    if is_batch_run():
        return path
    try:
        resolved, root = path.resolve(), RESULTS.resolve()
    except OSError:
        return path
    if resolved == root:
        target = LAB_DIR
    elif resolved.parent == root and (resolved / "run_info.json").is_file():
        target = LAB_DIR / resolved.name
    else:
        return path
    if not _lab_notice_shown:
        _lab_notice_shown = True
        print(f"interactive run: writing to {_rel(target)}/ ({_rel(resolved)}/ belongs to batch "
              f"runs, `make run`); PNG export {'on' if _png_wanted() else 'off (EVSCHED_PNG=1 turns it on)'}")
    return target


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(RESULTS.resolve().parent))
    except ValueError:
        return str(p)


def _png_wanted() -> bool:
    flag = os.environ.get(PNG_ENV, "")
    return flag != "0" if is_batch_run() else flag == "1"


# --- saving ---------------------------------------------------------------------------------

def _start_png_server() -> None:
    """Start kaleido's persistent browser once per process, so each PNG costs ~0.1 s instead
    of a browser start (~2 s). kaleido closes it at exit. MathJax is off (no network)."""
    global _png_server_started
    if _png_server_started:
        return
    _png_server_started = True
    try:
        import kaleido
        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
    except Exception:  # old kaleido, no server support: fall back to per-call export
        pass


def png_available() -> bool:
    """True when a Chromium for kaleido's static export is on the PATH."""
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def save_figure(fig: go.Figure, results_dir, name: str, png: bool | None = None) -> dict:
    """Write ``<output_dir(results_dir)>/figures/<name>.html`` (plotly.js shipped once beside
    it, offline) and, when wanted and a Chromium is available, ``<name>.png``.

    ``png=None`` follows the run: on in batch runs (unless ``EVSCHED_PNG=0``), off in
    interactive runs (unless ``EVSCHED_PNG=1``). PNG export never fails the caller: without a
    browser one line says it is skipped and how to enable it (``make png-support``); an export
    error is reported in one line too. Returns the paths written.
    """
    global _png_notice_shown
    out = output_dir(results_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"{name}.html"}
    fig.write_html(paths["html"], include_plotlyjs="directory", full_html=True)
    if png is None:
        png = _png_wanted()
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


# --- showing in a notebook ------------------------------------------------------------------

def figure_html(fig, plotlyjs_src: str = PLOTLYJS_REL, div_id: str | None = None,
                spec_json: str | None = None) -> str:
    """A self-drawing HTML fragment of ``fig`` (a Figure or its JSON dict, e.g. a notebook's
    plotly MIME output) for static exports of a notebook (nbconvert).

    The fragment holds the figure's JSON and draws it with ``window.Plotly``; when the page
    has no Plotly yet, it loads ``plotlyjs_src`` (relative to the page) once per page. Where
    scripts do not run (a code host), the placeholder text names the figure.
    """
    import json

    if isinstance(fig, dict):
        spec = spec_json if spec_json is not None else json.dumps(
            {"data": fig.get("data", []), "layout": fig.get("layout", {})})
        layout = fig.get("layout", {}) or {}
        title = layout.get("title")
        title = title.get("text") if isinstance(title, dict) else title
        height = layout.get("height")
    else:
        spec = spec_json if spec_json is not None else fig.to_json()
        title, height = fig.layout.title.text, fig.layout.height
    if div_id is None:
        digest = hashlib.sha1(spec.encode()).hexdigest()[:10]
        div_id = f"evsched-fig-{digest}-{next(_show_counter)}"
    height = int(height or 450)
    title = title or "figure"
    safe = spec.replace("</", "<\\/")
    src = plotlyjs_src.replace('"', "%22")
    return (
        f'<div id="{div_id}" class="evsched-figure" style="width:100%;height:{height}px;">'
        f'<p style="font:13px sans-serif;color:#555;padding:1em;border:1px dashed #bbb">'
        f'Interactive figure: {html.escape(title)}. It is drawn where JavaScript runs and '
        f'<code>figures/plotly.min.js</code> is beside the notebooks (JupyterLab, the HTML report).'
        f'</p></div>\n'
        '<script type="text/javascript">(function () {\n'
        f'  var id = "{div_id}", spec = {safe};\n'
        '  function draw() { var el = document.getElementById(id); if (!el) return; el.innerHTML = "";\n'
        '    window.Plotly.newPlot(el, spec.data, spec.layout, {"responsive": true}); }\n'
        '  if (window.Plotly) { draw(); return; }\n'
        '  if (!window.__evschedPlotly) { window.__evschedPlotly = new Promise(function (ok, fail) {\n'
        f'    var s = document.createElement("script"); s.src = "{src}"; s.onload = ok; s.onerror = fail;\n'
        '    document.head.appendChild(s); }); }\n'
        '  window.__evschedPlotly.then(draw, function () {});\n'
        '})();</script>'
    )


def show(fig: go.Figure) -> None:
    """Display a figure in a notebook: interactive in JupyterLab, and still there after export.

    The output carries three representations: the plotly MIME type (what JupyterLab and VS
    Code render, interactive), ``text/html`` (:func:`figure_html`: what ``jupyter nbconvert
    --to html`` and the report keep; drawn with ``../figures/plotly.min.js``) and a text line.
    Built without ``plotly.io``'s renderer machinery, whose first import pulls nbformat →
    jsonschema → rfc3987_syntax and costs 2-4 s per kernel in this environment.
    """
    import json

    from IPython.display import display
    spec = fig.to_json()
    bundle = {"application/vnd.plotly.v1+json": {**json.loads(spec), "config": {"responsive": True}},
              "text/html": figure_html(fig, spec_json=spec),
              "text/plain": f"<plotly figure: {fig.layout.title.text or ''}>"}
    display(bundle, raw=True)


# --- helpers ------------------------------------------------------------------------------------

def nice_step(span: float, n: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10^k) giving about ``n`` intervals over ``span``."""
    if not np.isfinite(span) or span <= 0:
        return 1.0
    raw = span / n
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw - 1e-12:
            return float(m * mag)
    return float(10 * mag)


def _style(name: str) -> dict:
    return SCENARIO_STYLE.get(name, dict(color=None, dash="solid", symbol="circle", width=2,
                                         marker_size=6, zorder=1))


def _line(name: str, **over) -> dict:
    s = _style(name)
    return dict(color=s["color"], dash=s["dash"], width=over.get("width", s["width"]))


def _marker(name: str) -> dict:
    s = _style(name)
    return dict(symbol=s["symbol"], size=s["marker_size"], color=s["color"])


def _legendrank(name: str) -> int:
    return 100 + list(SCENARIO_STYLE).index(name) if name in SCENARIO_STYLE else 200


def clock(hour) -> str:
    """A step's start hour as clock time: ``9`` → ``'9:00'``, ``18.25`` → ``'18:15'``."""
    minutes = int(round(float(hour) * 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


def _clocks(hours) -> list[str]:
    """:func:`clock` of every value (hover ``customdata``)."""
    return [clock(h) for h in np.asarray(hours, dtype=float)]


def _step_h(results) -> float:
    """Step length [h] of one result or a dict of results (``dt_h``, else from the hours)."""
    r = next(iter(results.values())) if isinstance(results, dict) else results
    dt = getattr(r, "dt_h", None)
    return float(dt) if dt else metrics.step_length_h(r.dispatch["hour"])


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


def _tou_label(period: str) -> str:
    return "TOU " + period.replace("_", " ")


def _add_tou_shading(fig: go.Figure, tou: pd.DataFrame | None, row=None, col=None,
                     dt_h: float = 1.0) -> None:
    """Shade every TOU block (flat included) and add one legend entry per period present; a
    block of clock hours [a, b) covers the steps drawn at a, ..., b − Δt (centred on them)."""
    if tou is None:
        return
    kw = dict(row=row, col=col) if row is not None else {}
    present = set()
    for a, b, p in tou_blocks(tou):
        fig.add_vrect(x0=a - dt_h / 2, x1=b - dt_h / 2, fillcolor=TOU_COLORS.get(p, "#eee"),
                      opacity=0.12 if p == "flat" else 0.25, line_width=0, layer="below", **kw)
        present.add(p)
    for k, p in enumerate(q for q in TOU_ORDER if q in present):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=_tou_label(p),
                                 marker=dict(size=12, symbol="square", color=TOU_COLORS.get(p),
                                             line=dict(width=1, color="#888")),
                                 hoverinfo="skip", showlegend=True, legendrank=k + 1), **kw)


def peak_hour(results, reference: str = "S1") -> int | float:
    """Hour (the start of the step, e.g. 18 or 18.25) of the maximum equivalent load without
    the EVs (base load − PV − WT, i.e. S1's P_eq) of ``reference`` (the first scenario if
    absent); ``results`` may be one result."""
    if isinstance(results, dict):
        r = results.get(reference) or next(iter(results.values()))
    else:
        r = results
    d = r.dispatch
    no_ev = d[d["device"] != "ev_station"] if "device" in d else d
    h = float(metrics.equivalent_load(no_ev).idxmax())
    return int(h) if h.is_integer() else h


# --- figures ---------------------------------------------------------------------------------

def tou_figure(table: pd.DataFrame, curve, title: str = "TOU periods on the forecast curve") -> go.Figure:
    """The TOU table on the curve it was derived from: one bar per hour coloured by period
    (:data:`TOU_COLORS`), the price as a step line on a right axis with round ticks whose
    grid lines coincide with the load axis's. A sub-hourly curve (24·n steps, e.g. 96
    quarter-hours) is drawn by its hourly means (the tariff's hours: the bars) and, over them,
    as a line of its own steps, each inside its hour's bar."""
    from evsched.tou import hourly_curve

    t = table.sort_values("hour").reset_index(drop=True)
    steps = np.asarray(curve, dtype=float)
    load = hourly_curve(steps)  # a 15-minute curve: the bars are its hourly means (the tariff's hours)
    fig = go.Figure()
    for k, period in enumerate(TOU_ORDER):
        sel = (t.period == period).to_numpy()
        if sel.any():
            price = float(t.price_per_kwh[sel].iloc[0])
            fig.add_bar(x=t.hour[sel], y=load[sel], name=period.replace("_", " "), legendrank=k + 1,
                        marker_color=TOU_COLORS[period], marker_line=dict(width=0.5, color="#666"),
                        hovertemplate=f"%{{x}}:00 · %{{y:.0f}} kW · {period.replace('_', ' ')} "
                                      f"({price:.3g} /kWh)<extra></extra>")
    if steps.size > load.size:  # the sub-hourly steps, at their position inside the hour's bar
        n = steps.size // load.size
        start = np.arange(steps.size) / n            # step start [h]: 0, 0.25, ...
        fig.add_scatter(x=start - 0.5 + 0.5 / n, y=steps, name=f"{60 // n}-minute forecast", mode="lines",
                        legendrank=9, line=dict(color="#333", width=1.5), customdata=_clocks(start),
                        hovertemplate="%{customdata} · %{y:.0f} kW<extra></extra>")
    fig.add_scatter(x=t.hour, y=t.price_per_kwh, name="price", yaxis="y2", mode="lines", legendrank=10,
                    line=dict(shape="hvh", color="black", width=2),
                    hovertemplate="%{x}:00 · price %{y:.3f} currency/kWh<extra></extra>")
    top = max(load.max(), steps.max())
    step_l, step_p = nice_step(top), nice_step(float(t.price_per_kwh.max()))
    n = int(max(np.ceil(top / step_l), np.ceil(t.price_per_kwh.max() / step_p)))
    fig.update_layout(
        title=title, template=TEMPLATE, barmode="overlay", height=440, bargap=0.1,
        xaxis=dict(title="hour", dtick=1),
        yaxis=dict(title="forecast load [kW]", range=[0, n * step_l], tick0=0, dtick=step_l),
        yaxis2=dict(title="price [currency/kWh]", overlaying="y", side="right", range=[0, n * step_p],
                    tickmode="linear", tick0=0, dtick=step_p, showgrid=False),
        legend=dict(orientation="h", y=-0.2))
    return fig


def equivalent_load_figure(results: dict, tou: pd.DataFrame | None = None) -> go.Figure:
    """Equivalent load ``P_eq(t)`` of every scenario on one chart, TOU periods shaded."""
    fig = go.Figure()
    dt = _step_h(results)
    _add_tou_shading(fig, tou, dt_h=dt)
    for name, r in results.items():
        p = metrics.equivalent_load(r.dispatch)
        fig.add_trace(go.Scatter(x=p.index, y=p.values, mode="lines+markers", name=name,
                                 line=_line(name), marker=_marker(name), zorder=_style(name)["zorder"],
                                 legendrank=_legendrank(name), customdata=_clocks(p.index),
                                 hovertemplate=name + " %{customdata} · %{y:.0f} kW<extra></extra>"))
    fig.update_layout(title="Equivalent load P_eq(t) = base load + EV charging − EV discharging − PV − WT",
                      xaxis=dict(title="hour", dtick=2, range=[-dt / 2, 24 - dt / 2]), yaxis_title="P_eq [kW]",
                      height=460, template=TEMPLATE, legend=dict(orientation="h", y=-0.2))
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
                                 customdata=np.tile(np.array(_clocks(v.columns), dtype=object), (len(v.index), 1)),
                                 hovertemplate=name + " bus %{y}, %{customdata} · %{z:.4f} p.u.<extra></extra>"),
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
                      height=520, template=TEMPLATE)
    fig.update_yaxes(title_text="bus", row=1, col=1, autorange="reversed")
    fig.update_xaxes(title_text="hour")
    return fig


def voltage_profile_figure(results: dict, network, hour: int | None = None,
                           v_min_pu: float = 0.95, v_max_pu: float = 1.05) -> go.Figure:
    """Voltage along each substation-to-leaf path at ``hour`` (default: :func:`peak_hour`),
    one panel per path, one line per scenario; y-axis titled on every row, x-axis title on the
    bottom row only (so no axis title runs into the panel titles below it)."""
    hour = peak_hour(results) if hour is None else hour
    paths = feeder_paths(network)
    titles = [f"path 1 → {p[-1]} ({len(p)} buses)" for p in paths]
    ncol = 2 if len(paths) > 1 else 1
    nrow = int(np.ceil(len(paths) / ncol))
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=titles, shared_yaxes=True,
                        vertical_spacing=0.14 / max(nrow - 1, 1) if nrow > 1 else 0.1,
                        horizontal_spacing=0.06)
    for k, path in enumerate(paths):
        row, col = k // ncol + 1, k % ncol + 1
        for name, r in results.items():
            v = r.voltages[r.voltages.hour == hour].set_index("bus")["v_pu"].reindex(path)
            fig.add_trace(go.Scatter(x=[str(b) for b in path], y=v.values, mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=k == 0,
                                     line=_line(name, width=min(_style(name)["width"], 4)),
                                     marker=_marker(name), zorder=_style(name)["zorder"],
                                     legendrank=_legendrank(name),
                                     hovertemplate=name + " bus %{x} · %{y:.4f} p.u.<extra></extra>"),
                          row=row, col=col)
        for lim in (v_min_pu, v_max_pu):
            fig.add_hline(y=lim, line=dict(dash="dot", color="red"), row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text="V [p.u.]", row=row, col=col)
        if row == nrow or k + ncol >= len(paths):
            fig.update_xaxes(title_text="bus (in path order)", row=row, col=col)
    fig.update_yaxes(range=list(V_SCALE), dtick=0.02)
    fig.update_xaxes(type="category")
    fig.update_layout(title=f"Voltage along the feeder at the peak hour ({clock(hour)}); red dotted: limits",
                      height=300 * nrow + 120, template=TEMPLATE, margin=dict(t=110),
                      legend=dict(orientation="h", y=0.99, yanchor="top", x=1, xanchor="right",
                                  yref="container"))
    return fig


def _device_info(dispatch: pd.DataFrame, device: str, hour: int) -> dict:
    d = dispatch[dispatch.device == device]
    out = {}
    for bus, g in d.groupby("bus"):
        at = g[g.hour == hour]
        p, q = float(at.p_kw.sum()), float(at.q_kvar.sum())
        out[bus] = (f"at {clock(hour)}: P {p:.0f} kW, Q {q:.0f} kvar<br>"
                    f"day: P {g.p_kw.min():.0f} … {g.p_kw.max():.0f} kW (load convention)")
    return out


def network_voltage_map(result, network, title: str | None = None, hour: int | None = None) -> go.Figure:
    """Network map (tree layout) coloured by bus voltage with an hour slider (one scenario).

    Opens (and exports statically) at ``hour``, by default the peak hour (:func:`peak_hour`);
    stations, PV and wind turbines are ringed, with their P and Q at that hour in the hover.
    """
    v = result.voltages.pivot(index="bus", columns="hour", values="v_pu")
    hours = list(v.columns)
    hour = peak_hour(result) if hour is None else hour
    lo, hi = V_SCALE
    highlight, info = {}, {}
    for dev, label in (("ev_station", "EV station"), ("pv", "PV"), ("wt", "WT")):
        buses = sorted(result.dispatch.loc[result.dispatch.device == dev, "bus"].unique())
        if buses:
            highlight[label] = buses
            info[label] = _device_info(result.dispatch, dev, hour)
    fig = network_map(network, v[hour], value_label="V [p.u.]", colorscale="RdBu", cmin=lo, cmax=hi,
                      unit="p.u.", value_format=".4f", highlight=highlight, highlight_info=info,
                      title=title or f"{result.name}: bus voltages at {clock(hour)} (slider: hour)")
    bus_trace = next(i for i, t in enumerate(fig.data) if t.name == "bus")
    ids = list(network.bus_ids)  # the bus trace's point order (network_map draws buses in this order)
    steps = [dict(method="restyle", label=str(h) if float(h).is_integer() else clock(h),
                  args=[{"marker.color": [v[h].reindex(ids).to_numpy()]}, [bus_trace]]) for h in hours]
    fig.update_layout(sliders=[dict(active=hours.index(hour), currentvalue=dict(prefix="hour "),
                                    steps=steps, pad=dict(t=10), y=0, yanchor="top")],
                      height=560, margin=dict(b=90))
    return fig


def station_power_figure(results: dict) -> go.Figure:
    """EV station active (top) and reactive (bottom) power, one column per station, one line
    style per scenario (:data:`SCENARIO_STYLE`)."""
    stations = sorted({b for r in results.values()
                       for b in r.dispatch.loc[r.dispatch.device == "ev_station", "bus"].unique()})
    ncol = max(len(stations), 1)
    fig = make_subplots(rows=2, cols=ncol, shared_xaxes=True, shared_yaxes="rows", vertical_spacing=0.1,
                        horizontal_spacing=0.03,
                        subplot_titles=[f"station {b}: P [kW]" for b in stations]
                        + [f"station {b}: Q [kvar]" for b in stations])
    for name, r in results.items():
        d = r.dispatch[r.dispatch.device == "ev_station"]
        for k, bus in enumerate(stations):
            g = d[d.bus == bus].sort_values("hour")
            if g.empty:
                continue
            common = dict(mode="lines+markers", legendgroup=name, line=_line(name, width=min(_style(name)["width"], 4)),
                          marker=dict(_marker(name), size=_style(name)["marker_size"] - 2),
                          zorder=_style(name)["zorder"], legendrank=_legendrank(name))
            common["customdata"] = _clocks(g.hour)
            fig.add_trace(go.Scatter(x=g.hour, y=g.p_kw, name=name, showlegend=k == 0,
                                     hovertemplate=f"{name} station {bus}, %{{customdata}} · P %{{y:.0f}} kW<extra></extra>",
                                     **common), row=1, col=k + 1)
            fig.add_trace(go.Scatter(x=g.hour, y=g.q_kvar, name=name, showlegend=False,
                                     hovertemplate=f"{name} station {bus}, %{{customdata}} · Q %{{y:.0f}} kvar<extra></extra>",
                                     **common), row=2, col=k + 1)
    fig.update_xaxes(title_text="hour", dtick=4, row=2)
    fig.update_yaxes(title_text="P [kW] (+ charging)", row=1, col=1)
    fig.update_yaxes(title_text="Q [kvar] (+ absorbed)", row=2, col=1)
    fig.update_layout(title="EV charging stations: active and reactive power", height=620, template=TEMPLATE,
                      legend=dict(orientation="h", y=-0.12))
    return fig


def renewable_power_figure(result) -> go.Figure:
    """PV and WT active power and reactive power of one scenario (per site)."""
    d = result.dispatch[result.dispatch.device.isin(["pv", "wt"])]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("active power P [kW] (negative = injected)",
                                        "reactive power Q [kvar] (+ absorbed, − injected)"))
    palette = {"pv": ["#e6a100", "#b35806"], "wt": ["#17becf", "#542788"]}
    for dev in ("pv", "wt"):
        for k, (bus, g) in enumerate(d[d.device == dev].groupby("bus")):
            g = g.sort_values("hour")
            c = palette[dev][k % 2]
            label = f"{dev.upper()} bus {bus}"
            fig.add_trace(go.Scatter(x=g.hour, y=g.p_kw, name=label, legendgroup=f"{dev}{bus}",
                                     line=dict(color=c), customdata=_clocks(g.hour),
                                     hovertemplate=label + ", %{customdata} · P %{y:.0f} kW<extra></extra>"),
                          row=1, col=1)
            fig.add_trace(go.Scatter(x=g.hour, y=g.q_kvar, name=label, showlegend=False, legendgroup=f"{dev}{bus}",
                                     line=dict(color=c, dash="dot"), customdata=_clocks(g.hour),
                                     hovertemplate=label + ", %{customdata} · Q %{y:.0f} kvar<extra></extra>"),
                          row=2, col=1)
    fig.update_xaxes(title_text="hour", dtick=2, row=2, col=1)
    fig.update_yaxes(title_text="P [kW]", row=1, col=1)
    fig.update_yaxes(title_text="Q [kvar]", row=2, col=1)
    fig.update_layout(title=f"{result.name}: PV and wind-turbine power", height=600, template=TEMPLATE)
    return fig


def losses_figure(results: dict) -> go.Figure:
    """Active loss per step [kW] of every scenario (its area is ζ in kWh: Σ loss · Δt)."""
    fig = go.Figure()
    for name, r in results.items():
        lp = metrics.loss_per_hour(r.branches)
        fig.add_trace(go.Scatter(x=lp.index, y=lp.values, mode="lines+markers",
                                 name=f"{name} (ζ = {metrics.energy_kwh(lp, r.dt_h):.0f} kWh)",
                                 line=_line(name, width=min(_style(name)["width"], 4)), marker=_marker(name),
                                 zorder=_style(name)["zorder"], legendrank=_legendrank(name),
                                 customdata=_clocks(lp.index),
                                 hovertemplate=name + " %{customdata} · loss %{y:.1f} kW<extra></extra>"))
    dt = _step_h(results)
    step = "hour" if dt == 1 else f"{round(dt * 60)}-minute step"
    fig.update_layout(title=f"Network losses per {step}", xaxis=dict(title="hour", dtick=2),
                      yaxis_title="loss [kW]", height=420, template=TEMPLATE)
    return fig


def paper_comparison_figure(comparison: pd.DataFrame) -> go.Figure:
    """Grouped bars of the percent changes: the paper's figures next to ours."""
    c = comparison.copy()
    c["label"] = c["metric"].str.replace("_", " ") + "<br>" + c["comparison"]
    fig = go.Figure()
    paper = c.dropna(subset=["paper_pct"])
    fig.add_trace(go.Bar(x=paper["label"], y=paper["paper_pct"], name="paper (Cao et al. 2024)",
                         marker_color="#7570b3", text=paper["paper_pct"].map("{:.1f}".format), textposition="outside",
                         hovertemplate="paper: %{y:.1f} %<extra></extra>"))
    fig.add_trace(go.Bar(x=c["label"], y=c["ours_pct"], name="this study", marker_color="#1b9e77",
                         text=c["ours_pct"].map("{:.1f}".format), textposition="outside",
                         hovertemplate="this study: %{y:.1f} %<extra></extra>"))
    fig.update_layout(barmode="group", title="Percent change of each metric: paper vs ours",
                      yaxis_title="change [%]", height=480, template=TEMPLATE,
                      xaxis=dict(categoryorder="array", categoryarray=list(c["label"])))
    return fig
