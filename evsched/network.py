"""Radial distribution networks: loading, validation, per-unit data and incidence matrices.

A :class:`Network` is what every other module works with. It can be read from the bus/line
CSV tables in ``data/`` (:func:`load_ieee33`, :func:`load_network_csv`) or converted from any
radial pandapower net (:func:`from_pandapower`).

Conventions
-----------
* Buses carry external ids; for the IEEE 33-bus feeder these are Baran & Wu's 1..33
  (1 = substation). Internally buses are indexed 0..n-1 in the order of the table.
* Each in-service line becomes a *branch* oriented away from the slack bus (parent → child),
  which is what the branch-flow (DistFlow) model needs. Open lines (e.g. the five tie
  switches of the 33-bus feeder) are kept in :attr:`Network.lines` but are not branches.
* Per unit: ``S_base`` = ``s_base_kva`` (default 1000 kVA), ``V_base`` = nominal
  line-to-line voltage ``vn_kv``; ``Z_base = V_base² / S_base`` [Ω] (kV²/MVA).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evsched.errors import NetworkDataError, input_error
from evsched.paths import DATA

BUS_COLUMNS = ["bus", "type", "vn_kv", "p_kw", "q_kvar"]
LINE_COLUMNS = ["from_bus", "to_bus", "r_ohm", "x_ohm", "in_service"]


@dataclass
class Network:
    """A validated radial feeder with per-unit branch data and incidence matrices.

    Attributes
    ----------
    name : str
    buses : DataFrame
        One row per bus: ``bus`` (id), ``type`` ('slack' or 'pq'), ``vn_kv``, nominal
        ``p_kw``, ``q_kvar`` (load convention: positive = drawn from the grid) and, when
        known, ``x``, ``y`` coordinates for maps.
    lines : DataFrame
        All lines as given, including open ones (``in_service`` False).
    s_base_kva : float
        Per-unit power base [kVA].
    branch_from, branch_to : ndarray of int
        Internal bus index of the parent (sending) and child (receiving) end of each branch.
    r_pu, x_pu : ndarray
        Branch series resistance and reactance [p.u.].
    branch_line : ndarray of int
        Row of :attr:`lines` each branch comes from.
    """

    name: str
    buses: pd.DataFrame
    lines: pd.DataFrame
    s_base_kva: float
    branch_from: np.ndarray
    branch_to: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    branch_line: np.ndarray
    slack: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    # --- sizes and ids -------------------------------------------------------------
    @property
    def n_bus(self) -> int:
        return len(self.buses)

    @property
    def n_branch(self) -> int:
        return len(self.branch_from)

    @property
    def bus_ids(self) -> np.ndarray:
        """External bus ids in internal order."""
        return self.buses["bus"].to_numpy()

    @property
    def vn_kv(self) -> float:
        return float(self.buses["vn_kv"].iloc[0])

    @property
    def z_base_ohm(self) -> float:
        """``Z_base = V_base² / S_base`` [Ω] with V in kV and S in MVA."""
        return self.vn_kv ** 2 / (self.s_base_kva / 1e3)

    @property
    def slack_bus(self):
        """External id of the slack (substation) bus."""
        return self.bus_ids[self.slack]

    def bus_index(self, ids) -> np.ndarray:
        """Internal indices of external bus ids; unknown ids raise :class:`NetworkDataError`."""
        lookup = self._cache.get("lookup")
        if lookup is None:
            lookup = {b: i for i, b in enumerate(self.bus_ids)}
            self._cache["lookup"] = lookup
        ids = np.atleast_1d(ids)
        missing = [b.item() if hasattr(b, "item") else b for b in ids if b not in lookup]
        if missing:
            raise NetworkDataError(
                f"network '{self.name}': unknown bus id(s) {missing[:5]}; "
                f"valid ids are {self.bus_ids.min()}..{self.bus_ids.max()}")
        return np.array([lookup[b] for b in ids], dtype=int)

    # --- matrices --------------------------------------------------------------------
    @property
    def C_from(self) -> sp.csr_matrix:
        """Bus × branch incidence of sending ends: ``C_from[i, k] = 1`` if branch k leaves bus i."""
        return self._incidence("C_from", self.branch_from)

    @property
    def C_to(self) -> sp.csr_matrix:
        """Bus × branch incidence of receiving ends: ``C_to[j, k] = 1`` if branch k enters bus j."""
        return self._incidence("C_to", self.branch_to)

    def _incidence(self, key: str, ends: np.ndarray) -> sp.csr_matrix:
        if key not in self._cache:
            self._cache[key] = sp.csr_matrix(
                (np.ones(self.n_branch), (ends, np.arange(self.n_branch))),
                shape=(self.n_bus, self.n_branch))
        return self._cache[key]

    @property
    def parent(self) -> np.ndarray:
        """Internal index of every bus's parent (−1 for the slack bus)."""
        par = np.full(self.n_bus, -1, dtype=int)
        par[self.branch_to] = self.branch_from
        return par

    @property
    def branch_of_bus(self) -> np.ndarray:
        """Index of the branch feeding each bus (−1 for the slack bus)."""
        out = np.full(self.n_bus, -1, dtype=int)
        out[self.branch_to] = np.arange(self.n_branch)
        return out

    def branch_table(self) -> pd.DataFrame:
        """Branches with external ids: ``from_bus, to_bus, r_ohm, x_ohm, r_pu, x_pu``."""
        ids = self.bus_ids
        return pd.DataFrame({
            "from_bus": ids[self.branch_from], "to_bus": ids[self.branch_to],
            "r_ohm": self.r_pu * self.z_base_ohm, "x_ohm": self.x_pu * self.z_base_ohm,
            "r_pu": self.r_pu, "x_pu": self.x_pu,
        })

    def path_to(self, bus) -> list:
        """External ids of the buses from the substation down to ``bus``."""
        par = self.parent
        i = int(self.bus_index(bus)[0])
        path = [i]
        while par[i] >= 0:
            i = par[i]
            path.append(i)
        return list(self.bus_ids[path[::-1]])

    def depth_order(self) -> np.ndarray:
        """Internal bus indices sorted by distance (number of branches) from the slack."""
        par = self.parent
        depth = np.zeros(self.n_bus, dtype=int)
        for _ in range(self.n_bus):
            new = np.where(par >= 0, depth[np.maximum(par, 0)] + 1, 0)
            if np.array_equal(new, depth):
                break
            depth = new
        return np.argsort(depth, kind="stable")

    # --- load data -------------------------------------------------------------------
    def nominal_load(self) -> tuple[np.ndarray, np.ndarray]:
        """Nominal bus demand ``(p_kw, q_kvar)`` vectors in internal order."""
        return self.buses["p_kw"].to_numpy(float), self.buses["q_kvar"].to_numpy(float)

    # --- conversions -----------------------------------------------------------------
    def to_pandapower(self):
        """An equivalent pandapower net: one bus per bus, one load per bus, in-service branches.

        Line impedances are given per km with length 1 km, so ``r_ohm_per_km`` = r [Ω].
        Used by :mod:`evsched.powerflow` as the independent AC reference.
        """
        import pandapower as pp

        net = pp.create_empty_network(name=self.name, sn_mva=self.s_base_kva / 1e3)
        vn = self.vn_kv
        for b in self.bus_ids:
            pp.create_bus(net, vn_kv=vn, name=str(b))
        pp.create_ext_grid(net, bus=self.slack, vm_pu=1.0)
        z = self.z_base_ohm
        for k in range(self.n_branch):
            pp.create_line_from_parameters(
                net, from_bus=int(self.branch_from[k]), to_bus=int(self.branch_to[k]),
                length_km=1.0, r_ohm_per_km=float(self.r_pu[k] * z),
                x_ohm_per_km=float(self.x_pu[k] * z), c_nf_per_km=0.0, max_i_ka=99.0)
        p, q = self.nominal_load()
        for i in range(self.n_bus):
            pp.create_load(net, bus=i, p_mw=p[i] / 1e3, q_mvar=q[i] / 1e3)
        return net

    def replicate(self, copies: int) -> "Network":
        """``copies`` copies of this feeder hanging off one shared substation bus.

        Used to benchmark scaling: the 33-bus feeder ×10 has 321 buses, ×31 has 993.
        Bus ids are renumbered 1..n; coordinates are shifted per copy.
        """
        if copies < 1:
            raise ValueError("copies must be ≥ 1")
        others = [i for i in range(self.n_bus) if i != self.slack]
        n_other = len(others)
        new_index = {self.slack: 0}
        for pos, i in enumerate(others):
            new_index[i] = pos + 1
        rows, lines = [], []
        slack_row = self.buses.iloc[[self.slack]].copy()
        slack_row["bus"] = 1
        rows.append(slack_row)
        for c in range(copies):
            off = c * n_other
            part = self.buses.iloc[others].copy()
            part["bus"] = [1 + off + new_index[i] for i in others]
            if "x" in part:
                part["x"] = part["x"] + 10.0 * c
            rows.append(part)
            for k in range(self.n_branch):
                f, t = self.branch_from[k], self.branch_to[k]
                fid = 1 if f == self.slack else 1 + off + new_index[f]
                tid = 1 if t == self.slack else 1 + off + new_index[t]
                lines.append((fid, tid, self.r_pu[k] * self.z_base_ohm,
                              self.x_pu[k] * self.z_base_ohm, True))
        buses = pd.concat(rows, ignore_index=True)
        lines_df = pd.DataFrame(lines, columns=LINE_COLUMNS)
        return build_network(buses, lines_df, name=f"{self.name}x{copies}",
                             s_base_kva=self.s_base_kva)


# --- construction and validation ----------------------------------------------------------

def build_network(buses: pd.DataFrame, lines: pd.DataFrame, name: str = "network",
                  s_base_kva: float = 1000.0, bus_source: str = "buses",
                  line_source: str = "lines") -> Network:
    """Validate bus and line tables and build a :class:`Network`.

    Rules (each failure names the source, row and field):
    required columns present; bus ids unique; exactly one bus of type 'slack'; one nominal
    voltage ``vn_kv`` > 0; finite loads; line ends are known buses, not equal; r, x > 0
    (finite); no duplicate lines; the in-service lines form a tree spanning all buses
    (connected, radial: n_bus − 1 lines, no loop).
    """
    _require_columns(buses, BUS_COLUMNS, bus_source)
    _require_columns(lines, LINE_COLUMNS, line_source)
    buses = buses.reset_index(drop=True).copy()
    lines = lines.reset_index(drop=True).copy()

    def row(i: int) -> str:  # CSV row number counting the header as row 1
        return f"row {i + 2}"

    dup = buses["bus"].duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise input_error(bus_source, row(i), "bus", buses.at[i, "bus"],
                          "duplicate bus id (each bus must appear once)", NetworkDataError)
    for col in ("p_kw", "q_kvar", "vn_kv"):
        vals = pd.to_numeric(buses[col], errors="coerce")
        bad = ~np.isfinite(vals.to_numpy(float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(bus_source, f"{row(i)} (bus {buses.at[i, 'bus']})", col,
                              buses.at[i, col], "must be a finite number", NetworkDataError)
        buses[col] = vals.astype(float)
    types = buses["type"].astype(str).str.strip().str.lower()
    bad_type = ~types.isin(["slack", "pq"])
    if bad_type.any():
        i = int(np.flatnonzero(bad_type)[0])
        raise input_error(bus_source, f"{row(i)} (bus {buses.at[i, 'bus']})", "type",
                          buses.at[i, "type"], "must be 'slack' or 'pq'", NetworkDataError)
    buses["type"] = types
    slack_rows = np.flatnonzero(types == "slack")
    if len(slack_rows) != 1:
        where = ", ".join(row(i) for i in slack_rows) or "no row"
        raise NetworkDataError(
            f"{bus_source}: exactly one bus must have type 'slack', found {len(slack_rows)} "
            f"({where}), field 'type'")
    nonpos = buses["vn_kv"] <= 0
    if nonpos.any():
        i = int(np.flatnonzero(nonpos)[0])
        raise input_error(bus_source, f"{row(i)} (bus {buses.at[i, 'bus']})", "vn_kv",
                          buses.at[i, "vn_kv"], "must be > 0 kV", NetworkDataError)
    if buses["vn_kv"].nunique() != 1:
        i = int(np.flatnonzero(buses["vn_kv"] != buses["vn_kv"].iloc[0])[0])
        raise input_error(bus_source, f"{row(i)} (bus {buses.at[i, 'bus']})", "vn_kv",
                          buses.at[i, "vn_kv"],
                          f"all buses must share one voltage level ({buses['vn_kv'].iloc[0]} kV); "
                          "transformers are not modelled", NetworkDataError)

    ids = list(buses["bus"])
    lookup = {b: i for i, b in enumerate(ids)}
    for col in ("from_bus", "to_bus"):
        for i, b in enumerate(lines[col]):
            if b not in lookup:
                raise input_error(line_source, row(i), col, b,
                                  f"unknown bus (not in {bus_source})", NetworkDataError)
    for col in ("r_ohm", "x_ohm"):
        vals = pd.to_numeric(lines[col], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(vals) & (vals > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(line_source, f"{row(i)} ({lines.at[i, 'from_bus']}-{lines.at[i, 'to_bus']})",
                              col, lines.at[i, col], "must be a finite number > 0 Ω", NetworkDataError)
        lines[col] = vals
    lines["in_service"] = _parse_bool(lines["in_service"], line_source)
    same = lines["from_bus"] == lines["to_bus"]
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise input_error(line_source, row(i), "to_bus", lines.at[i, "to_bus"],
                          "a line must connect two different buses", NetworkDataError)
    pair = lines.apply(lambda r: tuple(sorted((r["from_bus"], r["to_bus"]))), axis=1)
    dup = pair.duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(pair == pair[i])[0])
        raise input_error(line_source, row(i), "from_bus/to_bus", pair[i],
                          f"duplicate line (same buses as {row(first)})", NetworkDataError)

    slack = int(slack_rows[0])
    live = lines[lines["in_service"]]
    n = len(buses)
    root = list(range(n))  # union-find: the first in-service line that closes a loop is named

    def find(a: int) -> int:
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    for li, (f, t) in zip(live.index, zip(live["from_bus"], live["to_bus"])):
        a, b = find(lookup[f]), find(lookup[t])
        if a == b:
            raise input_error(line_source, f"{row(li)} ({f}-{t})", "in_service", True,
                              f"this in-service line closes a loop; a radial feeder of {n} buses "
                              f"needs exactly {n - 1} in-service lines (found {len(live)}): "
                              "open a tie line", NetworkDataError)
        root[a] = b
    # breadth-first orientation away from the slack bus
    adj: dict[int, list[tuple[int, int]]] = {i: [] for i in range(n)}
    for li, (f, t) in zip(live.index, zip(live["from_bus"], live["to_bus"])):
        a, b = lookup[f], lookup[t]
        adj[a].append((b, li))
        adj[b].append((a, li))
    seen = np.zeros(n, dtype=bool)
    seen[slack] = True
    order = [slack]
    b_from, b_to, b_line = [], [], []
    for u in order:
        for v, li in adj[u]:
            if not seen[v]:
                seen[v] = True
                order.append(v)
                b_from.append(u)
                b_to.append(v)
                b_line.append(li)
    if not seen.all():
        i = int(np.flatnonzero(~seen)[0])
        raise input_error(bus_source, f"{row(i)} (bus {ids[i]})", "bus", ids[i],
                          f"not connected to the slack bus by in-service lines of {line_source} "
                          f"({len(live)} in-service lines for {n} buses; a feeder needs {n - 1})",
                          NetworkDataError)
    b_line = np.array(b_line, dtype=int)
    z_base = buses["vn_kv"].iloc[0] ** 2 / (s_base_kva / 1e3)
    return Network(
        name=name, buses=buses, lines=lines, s_base_kva=float(s_base_kva),
        branch_from=np.array(b_from, dtype=int), branch_to=np.array(b_to, dtype=int),
        r_pu=lines.loc[b_line, "r_ohm"].to_numpy(float) / z_base,
        x_pu=lines.loc[b_line, "x_ohm"].to_numpy(float) / z_base,
        branch_line=b_line, slack=slack)


def _require_columns(df: pd.DataFrame, cols: list[str], source: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise NetworkDataError(f"{source}: missing column(s) {missing}; required: {cols}")


def _parse_bool(col: pd.Series, source: str) -> pd.Series:
    truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    out = []
    for i, v in enumerate(col):
        key = str(v).strip().lower()
        if key not in truth:
            raise input_error(source, f"row {i + 2}", "in_service", v,
                              "must be True/False (or 1/0, yes/no)", NetworkDataError)
        out.append(truth[key])
    return pd.Series(out, index=col.index, dtype=bool)


def load_network_csv(folder: str | Path, name: str | None = None,
                     s_base_kva: float = 1000.0) -> Network:
    """Read ``buses.csv`` and ``lines.csv`` from ``folder`` and validate them."""
    folder = Path(folder)
    files = {}
    for stem in ("buses", "lines"):
        path = folder / f"{stem}.csv"
        if not path.exists():
            raise NetworkDataError(f"{path}: file not found")
        try:
            files[stem] = pd.read_csv(path)
        except Exception as exc:  # pandas parser errors: keep the file name
            raise NetworkDataError(f"{path}: cannot be read as CSV ({exc})") from exc
    return build_network(files["buses"], files["lines"], name=name or folder.name,
                         s_base_kva=s_base_kva, bus_source=_rel(folder / "buses.csv"),
                         line_source=_rel(folder / "lines.csv"))


def load_ieee33(s_base_kva: float = 1000.0) -> Network:
    """The IEEE 33-bus feeder of Baran & Wu (1989), 12.66 kV, 3715 kW / 2300 kvar nominal load."""
    return load_network_csv(DATA / "ieee33", name="ieee33", s_base_kva=s_base_kva)


def from_pandapower(net, name: str | None = None, s_base_kva: float = 1000.0) -> Network:
    """Convert a radial, single-voltage-level pandapower net into a :class:`Network`.

    Buses are numbered 1..n in the order of ``net.bus`` (the pandapower index is kept in
    column ``pp_index``); loads are summed per bus, static generators are subtracted
    (load convention). Transformers and switches are not converted: a net with in-service
    transformers raises :class:`NetworkDataError`.
    """
    source = f"pandapower net '{name or net.name or 'net'}'"
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        raise NetworkDataError(f"{source}: needs exactly one in-service ext_grid (slack), "
                               f"found {int(net.ext_grid.in_service.sum())}")
    if "trafo" in net and len(net.trafo) and net.trafo.in_service.any():
        raise NetworkDataError(f"{source}: has {int(net.trafo.in_service.sum())} in-service "
                               "transformer(s); only single-voltage-level feeders are supported")
    idx = net.bus.index
    pos = {b: i for i, b in enumerate(idx)}
    slack_bus = net.ext_grid[net.ext_grid.in_service].bus.iloc[0]
    p = pd.Series(0.0, index=idx)
    q = pd.Series(0.0, index=idx)
    loads = net.load[net.load.in_service]
    p = p.add((loads.p_mw * loads.scaling).groupby(loads.bus).sum() * 1e3, fill_value=0.0)
    q = q.add((loads.q_mvar * loads.scaling).groupby(loads.bus).sum() * 1e3, fill_value=0.0)
    if "sgen" in net and len(net.sgen):
        sg = net.sgen[net.sgen.in_service]
        p = p.sub((sg.p_mw * sg.scaling).groupby(sg.bus).sum() * 1e3, fill_value=0.0)
        q = q.sub((sg.q_mvar * sg.scaling).groupby(sg.bus).sum() * 1e3, fill_value=0.0)
    buses = pd.DataFrame({
        "bus": np.arange(1, len(idx) + 1),
        "type": ["slack" if b == slack_bus else "pq" for b in idx],
        "vn_kv": net.bus.vn_kv.to_numpy(float),
        "p_kw": p.reindex(idx).to_numpy(float), "q_kvar": q.reindex(idx).to_numpy(float),
        "pp_index": idx.to_numpy(),
    })
    if "geo" in net.bus and net.bus["geo"].notna().all():
        import json
        xy = [json.loads(g)["coordinates"] for g in net.bus["geo"]]
        buses["x"] = [c[0] for c in xy]
        buses["y"] = [c[1] for c in xy]
    ln = net.line
    lines = pd.DataFrame({
        "from_bus": [pos[b] + 1 for b in ln.from_bus], "to_bus": [pos[b] + 1 for b in ln.to_bus],
        "r_ohm": (ln.r_ohm_per_km * ln.length_km / ln.parallel).to_numpy(float),
        "x_ohm": (ln.x_ohm_per_km * ln.length_km / ln.parallel).to_numpy(float),
        "in_service": ln.in_service.to_numpy(bool),
    })
    return build_network(buses, lines, name=name or net.name or "pandapower",
                         s_base_kva=s_base_kva, bus_source=f"{source} bus table",
                         line_source=f"{source} line table")


def _rel(path: Path) -> str:
    """Path relative to the repository root when possible (shorter, machine-independent messages)."""
    from evsched.paths import ROOT
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
