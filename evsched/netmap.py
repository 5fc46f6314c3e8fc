"""Plotly views of a feeder: the network map and voltage profiles along its paths.

The map is drawn on a *tree layout* computed from the network's parent array
(:func:`tree_layout`): the substation on the left, every bus one step to the right of its
parent (x = number of branches from the substation), the deepest branch of every bus kept
on its parent's row, so that the main feeder is one straight line and each lateral a row of
its own below it. Lines of such a layered drawing never cross (tested), whatever the feeder.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from evsched.network import Network

SUBSTATION_STYLE = dict(symbol="square", size=20, color="#222", line=dict(width=2, color="#222"))
HIGHLIGHT_STYLE = {  # marker ring and colour of each device kind on the maps
    "EV station": dict(symbol="circle-open", color="#6a3d9a"),
    "PV": dict(symbol="circle-open", color="#e6a100"),
    "WT": dict(symbol="circle-open", color="#17becf"),
}
TEMPLATE = "plotly_white"


def feeder_paths(network: Network) -> list[list]:
    """Bus-id paths from the substation to every leaf (main feeder first, longest first)."""
    par = network.parent
    has_child = np.zeros(network.n_bus, dtype=bool)
    has_child[par[par >= 0]] = True
    leaves = [network.bus_ids[i] for i in range(network.n_bus) if not has_child[i] and par[i] >= 0]
    paths = [network.path_to(b) for b in leaves]
    return sorted(paths, key=len, reverse=True)


def _children(par: np.ndarray) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in par]
    for i, p in enumerate(par):
        if p >= 0:
            kids[p].append(i)
    return kids


def tree_layout(network: Network) -> pd.DataFrame:
    """Planar layered layout of a radial feeder from its parent array.

    Returns a frame indexed by bus id with ``x`` (branches from the substation), ``y``
    (row: 0 for the main feeder, negative below it) and ``depth``. Children are visited
    deepest subtree first; a bus takes the row of its first child, a leaf a new row. Rows of
    the buses of one depth are then in depth-first order and the children of a bus are
    contiguous, so no two lines cross.
    """
    par = np.asarray(network.parent)
    n = len(par)
    kids = _children(par)
    roots = [i for i in range(n) if par[i] < 0]
    depth = np.zeros(n, dtype=int)
    order = []  # breadth-first: parents before children
    queue = list(roots)
    while queue:
        i = queue.pop(0)
        order.append(i)
        for c in kids[i]:
            depth[c] = depth[i] + 1
            queue.append(c)
    height = np.zeros(n, dtype=int)  # longest path below each bus
    for i in reversed(order):
        if kids[i]:
            height[i] = 1 + max(height[c] for c in kids[i])
    ids = network.bus_ids
    for i in range(n):  # deepest subtree first, then by bus id (deterministic)
        kids[i].sort(key=lambda c: (-height[c], str(ids[c])))
    row = np.zeros(n, dtype=int)
    next_row = 0
    # iterative post-order: a bus's row is its first child's; a leaf opens a new row
    for root in roots:
        stack = [(root, False)]
        while stack:
            i, done = stack.pop()
            if done:
                row[i] = row[kids[i][0]]
                continue
            if not kids[i]:
                row[i] = next_row
                next_row += 1
                continue
            stack.append((i, True))
            for c in reversed(kids[i]):
                stack.append((c, False))
    return pd.DataFrame({"x": depth.astype(float), "y": -row.astype(float), "depth": depth},
                        index=pd.Index(ids, name="bus"))


def _segments_cross(p1, p2, q1, q2) -> bool:
    """True if segments p1-p2 and q1-q2 intersect anywhere except at a shared end point."""
    if {tuple(p1), tuple(p2)} & {tuple(q1), tuple(q2)}:
        return False

    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return 0 if abs(v) < 1e-12 else (1 if v > 0 else -1)

    def on_segment(a, b, c):
        return min(a[0], b[0]) - 1e-12 <= c[0] <= max(a[0], b[0]) + 1e-12 and \
            min(a[1], b[1]) - 1e-12 <= c[1] <= max(a[1], b[1]) + 1e-12

    o1, o2, o3, o4 = orient(p1, p2, q1), orient(p1, p2, q2), orient(q1, q2, p1), orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    return any(o == 0 and on_segment(a, b, c) for o, a, b, c in
               ((o1, p1, p2, q1), (o2, p1, p2, q2), (o3, q1, q2, p1), (o4, q1, q2, p2)))


def crossing_lines(xy: pd.DataFrame, lines: pd.DataFrame) -> list[tuple]:
    """Pairs of lines (``from_bus``, ``to_bus``) whose drawings cross in layout ``xy``
    (indexed by bus id, columns ``x``, ``y``); empty for a planar drawing."""
    segs = [((f, t), xy.loc[f, ["x", "y"]].to_numpy(float), xy.loc[t, ["x", "y"]].to_numpy(float))
            for f, t in zip(lines.from_bus, lines.to_bus)]
    out = []
    for a in range(len(segs)):
        for b in range(a + 1, len(segs)):
            if _segments_cross(segs[a][1], segs[a][2], segs[b][1], segs[b][2]):
                out.append((segs[a][0], segs[b][0]))
    return out


def bus_positions(network: Network, layout: str = "tree") -> pd.DataFrame:
    """Drawing positions (``x``, ``y``, indexed by bus id): ``"tree"`` (default,
    :func:`tree_layout`) or ``"coords"`` (the ``x``, ``y`` columns of the bus table)."""
    if layout == "tree":
        return tree_layout(network)[["x", "y"]]
    if layout == "coords":
        if not {"x", "y"} <= set(network.buses.columns):
            raise ValueError(f"network '{network.name}' has no bus coordinates (columns x, y); "
                             "use layout='tree'")
        return network.buses.set_index("bus")[["x", "y"]].astype(float)
    raise ValueError(f"layout must be 'tree' or 'coords', got {layout!r}")


def network_map(network: Network, bus_values: pd.Series | None = None, value_label: str = "",
                title: str = "", colorscale: str | None = None, cmin=None, cmax=None,
                highlight: dict | None = None, highlight_info: dict | None = None,
                unit: str | None = None, value_format: str | None = None,
                layout: str = "tree", show_ties: bool = True) -> go.Figure:
    """Map of a radial feeder (:func:`tree_layout` by default; ``layout="coords"`` uses the
    bus table's ``x``, ``y``).

    Buses are coloured by ``bus_values`` (indexed by bus id, in ``unit``) when given, else by
    nominal load [kW] on a colour scale starting at 0 kW. The substation is a black square.
    In-service lines are solid, with their impedance in the hover; open tie lines are listed
    in the legend (dashed, hidden until clicked: in a tree layout they would cross the
    feeder). ``highlight`` maps a label ("EV station", "PV", "WT", ...) to bus ids drawn as
    rings; ``highlight_info`` maps the same label to ``{bus: hover text}`` (with units).
    """
    xy = bus_positions(network, layout)
    buses = network.buses.set_index("bus")
    fig = go.Figure()
    closed = network.lines[network.lines.in_service.astype(bool)]
    xs, ys = [], []
    for f, t in zip(closed.from_bus, closed.to_bus):
        xs += [xy.at[f, "x"], xy.at[t, "x"], None]
        ys += [xy.at[f, "y"], xy.at[t, "y"], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#555", width=2),
                             hoverinfo="skip", name="line", legendrank=1))
    # hover on the lines: an invisible marker at each line's midpoint
    mid = pd.DataFrame({"x": [(xy.at[f, "x"] + xy.at[t, "x"]) / 2 for f, t in zip(closed.from_bus, closed.to_bus)],
                        "y": [(xy.at[f, "y"] + xy.at[t, "y"]) / 2 for f, t in zip(closed.from_bus, closed.to_bus)]})
    fig.add_trace(go.Scatter(
        x=mid.x, y=mid.y, mode="markers", marker=dict(size=10, opacity=0), showlegend=False, name="line data",
        customdata=np.column_stack([closed.from_bus, closed.to_bus, closed.r_ohm, closed.x_ohm]),
        hovertemplate="line %{customdata[0]}–%{customdata[1]}<br>r = %{customdata[2]:.4f} Ω, "
                      "x = %{customdata[3]:.4f} Ω<extra></extra>"))
    ties = network.lines[~network.lines.in_service.astype(bool)]
    if show_ties and len(ties):
        txs, tys = [], []
        for f, t in zip(ties.from_bus, ties.to_bus):
            txs += [xy.at[f, "x"], xy.at[t, "x"], None]
            tys += [xy.at[f, "y"], xy.at[t, "y"], None]
        fig.add_trace(go.Scatter(x=txs, y=tys, mode="lines", line=dict(color="#bbb", width=1, dash="dash"),
                                 hoverinfo="skip", name=f"open tie lines ({len(ties)})", visible="legendonly",
                                 legendrank=2))

    if bus_values is None:
        values = buses["p_kw"].astype(float)
        value_label = value_label or "nominal load [kW]"
        unit = unit or "kW"
        value_format = value_format or ".0f"
        colorscale = colorscale or "YlOrRd"
        cmin = 0.0 if cmin is None else cmin
        custom = np.column_stack([buses["q_kvar"].reindex(xy.index).to_numpy(float)])
        extra = "<br>Q %{customdata[0]:.0f} kvar"
    else:
        values = pd.Series(bus_values, dtype=float)
        unit = unit or ""
        value_format = value_format or ".4f"
        colorscale = colorscale or "RdBu"
        if cmin is None and unit in ("kW", "kvar", "kWh") and np.nanmin(values.to_numpy()) >= 0:
            cmin = 0.0
        custom, extra = None, ""
    name = value_label.split(" [")[0] if value_label else "value"
    tree = layout == "tree"
    fig.add_trace(go.Scatter(
        x=xy.x, y=xy.y, mode="markers" if tree else "markers+text", text=[str(b) for b in xy.index],
        textposition="top center", name="bus", legendrank=3, customdata=custom,
        marker=dict(size=14, color=values.reindex(xy.index).to_numpy(), colorscale=colorscale, cmin=cmin,
                    cmax=cmax, showscale=True, colorbar=dict(title=value_label, thickness=15),
                    line=dict(width=1, color="#333")),
        hovertemplate="bus %{text}<br>" + name + " %{marker.color:" + value_format + "} " + unit
                      + extra + "<extra></extra>"))
    if tree:  # labels above the rings of the highlighted buses (which are wider than a bus)
        par = np.asarray(network.parent)
        ids = network.bus_ids
        head = pd.Series([par[i] >= 0 and xy.at[ids[par[i]], "y"] != xy.at[ids[i], "y"] for i in range(len(ids))],
                         index=ids).reindex(xy.index)  # first bus of a lateral: its line comes from above
        fig.add_trace(go.Scatter(x=xy.x + 0.22 * head, y=xy.y + 0.3, mode="text", text=[str(b) for b in xy.index],
                                 textfont=dict(size=12, color="#333"), hoverinfo="skip",
                                 showlegend=False, name="bus labels"))
    slack = network.slack_bus
    fig.add_trace(go.Scatter(
        x=[xy.at[slack, "x"]], y=[xy.at[slack, "y"]], mode="markers", name=f"substation (bus {slack})",
        marker=SUBSTATION_STYLE, legendrank=4, text=[str(slack)],
        hovertemplate=f"substation, bus {slack}<br>slack bus ({network.vn_kv:g} kV)<extra></extra>"))
    for k, (label, ids) in enumerate((highlight or {}).items()):
        ids = [b for b in ids if b in xy.index]
        if not ids:
            continue
        style = HIGHLIGHT_STYLE.get(label, dict(symbol="circle-open", color=None))
        info = (highlight_info or {}).get(label, {})
        fig.add_trace(go.Scatter(
            x=xy.loc[ids, "x"], y=xy.loc[ids, "y"], mode="markers", name=label, legendrank=5 + k,
            text=[str(b) for b in ids], customdata=[info.get(b, "") for b in ids],
            marker=dict(size=28, symbol=style["symbol"], color=style["color"], line=dict(width=3)),
            hovertemplate=label + ", bus %{text}<br>%{customdata}<extra></extra>"))
    fig.update_layout(title=title, template=TEMPLATE, height=480,
                      xaxis=dict(visible=False), yaxis=dict(visible=False),
                      legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, xanchor="left"),
                      margin=dict(t=110, l=20, r=20, b=20))
    if layout == "tree":
        fig.update_yaxes(range=[xy.y.min() - 0.5, xy.y.max() + 0.6])
        fig.update_xaxes(range=[xy.x.min() - 0.6, xy.x.max() + 0.6])
    else:
        fig.update_yaxes(scaleanchor="x")
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
                      yaxis_title="voltage [p.u.]", height=420, template=TEMPLATE)
    return fig
