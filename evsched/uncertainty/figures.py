"""Plotly figures of notebook 06 (uncertainty); nothing here computes results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from evsched.uncertainty.policies import POLICIES

POLICY_COLORS = {"day_ahead": "#7f7f7f", "mpc": "#1f77b4", "robust": "#ff7f0e", "hindsight": "#2ca02c"}
LABELS = {
    "loss_kwh": "network loss [kWh]", "total_loss_kwh": "network + converter loss [kWh]",
    "converter_loss_kwh": "converter loss [kWh]", "peak_valley_kw": "peak-valley [kW]",
    "voltage_deviation_pu": "Γ [p.u.·h]", "voltage_violations": "AC bus-hours outside 0.95–1.05",
    "reservations_broken": "broken reservations", "energy_not_delivered_kwh": "energy not delivered [kWh]",
    "curtailment_kwh": "curtailment [kWh]", "vmin_pu": "min voltage [p.u.]", "vmax_pu": "max voltage [p.u.]",
    "ev_energy_kwh": "EV energy [kWh]",
}


def kpi_figure(samples: pd.DataFrame, metrics=("loss_kwh", "total_loss_kwh", "peak_valley_kw",
                                               "voltage_deviation_pu", "voltage_violations",
                                               "reservations_broken", "energy_not_delivered_kwh",
                                               "vmin_pu"), title: str = "") -> go.Figure:
    """Box plot of each metric per policy (one panel per metric, every sample a point)."""
    df = samples.assign(total_loss_kwh=samples["loss_kwh"] + samples["converter_loss_kwh"])
    cols = 4
    rows = int(np.ceil(len(metrics) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[LABELS.get(m, m) for m in metrics],
                        vertical_spacing=0.16, horizontal_spacing=0.06)
    for i, m in enumerate(metrics):
        r, c = divmod(i, cols)
        for pol in POLICIES:
            v = df.loc[df["policy"] == pol, m]
            if v.notna().any():
                fig.add_trace(go.Box(y=v, name=pol, marker_color=POLICY_COLORS[pol], boxpoints="all",
                                     jitter=0.4, pointpos=0, showlegend=(i == 0), legendgroup=pol,
                                     hovertemplate=f"{pol}<br>{LABELS.get(m, m)}: %{{y:.4g}}<extra></extra>"),
                              row=r + 1, col=c + 1)
    fig.update_layout(title=title or "KPI distributions per policy (every sample a point)",
                      height=330 * rows, boxmode="group", template="plotly_white")
    fig.update_xaxes(showticklabels=False)
    return fig


def paired_figure(paired: pd.DataFrame, tag: str = "loss") -> go.Figure:
    """Value of re-dispatch (day_ahead − mpc) and each policy's regret to hindsight [kWh]."""
    fig = go.Figure()
    cols = [(f"value_of_redispatch_{tag}_kwh", "value of re-dispatch<br>(day_ahead − mpc)", "#9467bd")] + [
        (f"regret_{p}_{tag}_kwh", f"regret of {p}<br>({p} − hindsight)", POLICY_COLORS[p])
        for p in ("day_ahead", "mpc", "robust")]
    for col, name, color in cols:
        if col in paired:
            fig.add_trace(go.Box(y=paired[col], name=name, marker_color=color, boxpoints="all", jitter=0.4,
                                 pointpos=0, hovertemplate="sample %{text}: %{y:.2f} kWh<extra></extra>",
                                 text=paired["sample"]))
    what = "network loss" if tag == "loss" else "network + converter loss"
    fig.add_hline(y=0, line_color="black", line_width=1)
    fig.update_layout(title=f"Value of re-dispatch and regret to hindsight, {what} [kWh] per sample",
                      yaxis_title="kWh", template="plotly_white", height=450, showlegend=False)
    return fig


def sweep_figure(sweep: pd.DataFrame, metrics=("loss_kwh", "total_loss_kwh", "reservations_broken",
                                               "voltage_violations")) -> go.Figure:
    """Mean (line) and p5–p95 (band) of each metric against the no-show rate, per policy."""
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[LABELS.get(m, m) for m in metrics])
    for i, m in enumerate(metrics):
        for pol in POLICIES:
            g = sweep[(sweep["policy"] == pol) & (sweep["metric"] == m)].sort_values("no_show_prob")
            if g.empty:
                continue
            x = 100 * g["no_show_prob"]
            color = POLICY_COLORS[pol]
            fig.add_trace(go.Scatter(x=list(x) + list(x[::-1]), y=list(g["p95"]) + list(g["p5"][::-1]),
                                     fill="toself", fillcolor=color, opacity=0.15, line_width=0,
                                     showlegend=False, hoverinfo="skip", legendgroup=pol), row=1, col=i + 1)
            fig.add_trace(go.Scatter(x=x, y=g["mean"], mode="lines+markers", name=pol, line_color=color,
                                     showlegend=(i == 0), legendgroup=pol,
                                     hovertemplate=f"{pol}, %{{x:.0f}} % no-shows: mean %{{y:.4g}}<extra></extra>"),
                          row=1, col=i + 1)
        fig.update_xaxes(title_text="no-show rate [%]", row=1, col=i + 1)
    fig.update_layout(title="How the policies move with the no-show rate (mean, band p5–p95)",
                      template="plotly_white", height=420)
    return fig


def forecast_figure(errors, cd) -> go.Figure:
    """Feeder load and PV/WT availability: forecast, the target day's actual values and the
    p5–p95 band of forecast + backtest residual days (what the samples draw from)."""
    h = np.arange(24)
    x_f = errors.class_forecast
    feeder = errors.p_coef.sum(axis=0)
    fc = x_f @ feeder
    act = errors.class_actual @ feeder
    band = np.maximum(x_f[None] + errors.class_residual, 0.0) @ feeder
    fig = make_subplots(rows=1, cols=3, subplot_titles=["feeder load [kW]", "PV availability [p.u.]",
                                                       "wind availability [p.u.]"])
    series = [(fc, act, band, 1)]
    for j, col in ((0, 2), (1, 3)):
        ren_band = np.clip(errors.ren_forecast[None, :, j] + errors.ren_residual[:, :, j], 0, 1)
        series.append((errors.ren_forecast[:, j], errors.ren_actual[:, j], ren_band, col))
    for k, (f, a, b, col) in enumerate(series):
        lo, hi = np.percentile(b, 5, axis=0), np.percentile(b, 95, axis=0)
        fig.add_trace(go.Scatter(x=list(h) + list(h[::-1]), y=list(hi) + list(lo[::-1]), fill="toself",
                                 fillcolor="#1f77b4", opacity=0.2, line_width=0, name="forecast + backtest residuals, p5–p95",
                                 showlegend=(k == 0), legendgroup="band", hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Scatter(x=h, y=f, name="forecast (the plan's input)", line_color="#1f77b4",
                                 showlegend=(k == 0), legendgroup="f"), row=1, col=col)
        fig.add_trace(go.Scatter(x=h, y=a, name=f"actual {errors.target_day:%Y-%m-%d}", line_color="black",
                                 line_dash="dash", showlegend=(k == 0), legendgroup="a"), row=1, col=col)
        fig.update_xaxes(title_text="hour", row=1, col=col)
    fig.update_layout(title=f"Forecast error from the real data ({errors.n_days} backtest days before "
                            f"{errors.target_day:%Y-%m-%d}, model {errors.model})", template="plotly_white",
                      height=400)
    return fig


def margins_figure(plan, title: str = "") -> go.Figure:
    """Heat maps of the robust plan's voltage back-off margins (bus × hour) [p.u.]."""
    info = plan.info
    buses = [str(b) for b in info["buses"]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["lower margin m⁻ [p.u.]", "upper margin m⁺ [p.u.]"])
    for col, key in ((1, "margin_low_pu"), (2, "margin_high_pu")):
        fig.add_trace(go.Heatmap(z=info[key], x=list(range(24)), y=buses, colorscale="Reds", zmin=0,
                                 coloraxis=None, showscale=(col == 2),
                                 hovertemplate="bus %{y}, hour %{x}: %{z:.4f} p.u.<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text="hour", row=1, col=col)
    fig.update_yaxes(title_text="bus", row=1, col=1)
    fig.update_layout(title=title or "Robust plan: voltage back-off margins", template="plotly_white", height=520)
    return fig


def deviation_figure(model, draws: pd.DataFrame) -> go.Figure:
    """Realised frequencies of the drawn deviations against their distributions."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=["arrival delay [h]", "departure shift [h]",
                                                       "energy request factor 1 + ε"])
    for col, key, support, pmf in ((1, "arrival_delay_h", model.arrival_delays_h, model.arrival_delay_pmf),
                                   (2, "departure_shift_h", model.departure_shifts_h, model.departure_shift_pmf)):
        freq = draws[key].value_counts(normalize=True).reindex(support, fill_value=0.0)
        fig.add_trace(go.Bar(x=support, y=freq.to_numpy(), name="drawn", marker_color="#1f77b4",
                             showlegend=(col == 1), legendgroup="d"), row=1, col=col)
        fig.add_trace(go.Scatter(x=support, y=pmf, mode="markers", marker_symbol="line-ew-open",
                                 marker_size=26, marker_line_width=3, marker_color="black",
                                 name="distribution", showlegend=(col == 1), legendgroup="p"), row=1, col=col)
    fig.add_trace(go.Histogram(x=draws["energy_factor"], nbinsx=40, histnorm="probability",
                               marker_color="#1f77b4", showlegend=False), row=1, col=3)
    fig.update_layout(title="The deviations drawn for the EVs that show up (all samples)", template="plotly_white",
                      height=380, bargap=0.2)
    return fig
