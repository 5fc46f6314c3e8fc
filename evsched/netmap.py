"""Plotly views of a feeder: the network map and voltage profiles along its paths."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from evsched.network import Network


def feeder_paths(network: Network) -> list[list]:
    """Bus-id paths from the substation to every leaf (main feeder first, longest first)."""
    par = network.parent
    has_child = np.zeros(network.n_bus, dtype=bool)
    has_child[par[par >= 0]] = True
    leaves = [network.bus_ids[i] for i in range(network.n_bus) if not has_child[i] and par[i] >= 0]
    paths = [network.path_to(b) for b in leaves]
    return sorted(paths, key=len, reverse=True)


def network_map(network: Network, bus_values: pd.Series | None = None, value_label: str = "",
                title: str = "", colorscale: str = "RdYlBu", cmin=None, cmax=None,
                highlight: dict | None = None) -> go.Figure:
    """Map of the feeder from the bus coordinates (``x``, ``y`` columns).

    In-service lines are solid, open tie lines dashed grey; buses are coloured by
    ``bus_values`` (indexed by bus id) when given, else by nominal load. ``highlight`` maps a
    label (e.g. "EV station") to a list of bus ids drawn as larger markers.
    """
    if not {"x", "y"} <= set(network.buses.columns):
        raise ValueError(f"network '{network.name}' has no bus coordinates (columns x, y)")
    xy = network.buses.set_index("bus")[["x", "y"]]
    fig = go.Figure()
    for closed, style in ((True, dict(color="#444", width=2)), (False, dict(color="#bbb", width=1, dash="dash"))):
        seg = network.lines[network.lines.in_service == closed]
        xs, ys = [], []
        for f, t in zip(seg.from_bus, seg.to_bus):
            xs += [xy.at[f, "x"], xy.at[t, "x"], None]
            ys += [xy.at[f, "y"], xy.at[t, "y"], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=style, hoverinfo="skip",
                                 name="line" if closed else "open tie line"))
    values = bus_values if bus_values is not None else network.buses.set_index("bus")["p_kw"]
    label = value_label or ("load [kW]" if bus_values is None else "")
    fig.add_trace(go.Scatter(
        x=xy.x, y=xy.y, mode="markers+text", text=[str(b) for b in xy.index],
        textposition="top center", name="bus",
        marker=dict(size=13, color=values.reindex(xy.index), colorscale=colorscale, cmin=cmin,
                    cmax=cmax, showscale=True, colorbar=dict(title=label), line=dict(width=1)),
        hovertemplate="bus %{text}<br>" + (label or "value") + " %{marker.color:.4f}<extra></extra>"))
    for name, buses in (highlight or {}).items():
        fig.add_trace(go.Scatter(x=xy.loc[buses, "x"], y=xy.loc[buses, "y"], mode="markers",
                                 marker=dict(size=24, symbol="circle-open", line=dict(width=3)),
                                 name=name))
    fig.update_layout(title=title, xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      height=500, legend=dict(orientation="h"))
    return fig


def voltage_profile(network: Network, v_pu: pd.Series, title: str = "",
                    v_min_pu: float | None = None, v_max_pu: float | None = None) -> go.Figure:
    """Voltage along every substation-to-leaf path, against the distance in branches.

    ``v_pu`` is indexed by bus id. Dotted lines mark the limits when given.
    """
    fig = go.Figure()
    for path in feeder_paths(network):
        fig.add_trace(go.Scatter(x=list(range(len(path))), y=v_pu.reindex(path).to_numpy(),
                                 mode="lines+markers", name=f"1 → {path[-1]}",
                                 text=[str(b) for b in path],
                                 hovertemplate="bus %{text}: %{y:.4f} p.u.<extra></extra>"))
    for lim in (v_min_pu, v_max_pu):
        if lim is not None:
            fig.add_hline(y=lim, line=dict(dash="dot", color="red"))
    fig.update_layout(title=title, xaxis_title="branches from the substation",
                      yaxis_title="voltage [p.u.]", height=420)
    return fig
