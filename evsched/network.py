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
  line-to-line voltage ``vn_kv``; ``Z_base = V_base² / S_base`` [Ω] (kV²/MVA);
  ``I_base = S_base / (√3 V_base)`` [A], so that the branch-flow variable ℓ = |I|² is in
  p.u. of ``I_base²``.
* Thermal ratings: an optional ``rating_a`` column of the line table gives each line's
  ampacity [A] (the current at 100 % loading, pandapower's ``max_i_ka · df · parallel``);
  empty (NaN) means unrated. :attr:`Network.branch_rating_a` is it per branch.
"""
from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evsched.errors import NetworkDataError, input_error
from evsched.paths import DATA

logger = logging.getLogger(__name__)

BUS_COLUMNS = ["bus", "type", "vn_kv", "p_kw", "q_kvar"]
LINE_COLUMNS = ["from_bus", "to_bus", "r_ohm", "x_ohm", "in_service"]
RATING_COLUMN = "rating_a"
"""Optional line column: ampacity [A] (finite > 0, or empty for an unrated line)."""
PP_NO_RATING_KA = 99.0
"""pandapower ``max_i_ka`` at or above which a line counts as unrated (:func:`to_pandapower`
writes 99 kA for an unrated line; converted MATPOWER cases carry 99999 kA)."""


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
    def i_base_a(self) -> float:
        """``I_base = S_base / (√3 V_base)`` [A]: ℓ = 1 p.u. is a current of ``I_base``."""
        return self.s_base_kva / (np.sqrt(3.0) * self.vn_kv)

    @property
    def branch_rating_a(self) -> np.ndarray:
        """Ampacity of every branch [A] (NaN where the line has no rating)."""
        if RATING_COLUMN not in self.lines:
            return np.full(self.n_branch, np.nan)
        return self.lines[RATING_COLUMN].to_numpy(float)[self.branch_line]

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
        """Branches with external ids: ``from_bus, to_bus, r_ohm, x_ohm, r_pu, x_pu, rating_a``."""
        ids = self.bus_ids
        return pd.DataFrame({
            "from_bus": ids[self.branch_from], "to_bus": ids[self.branch_to],
            "r_ohm": self.r_pu * self.z_base_ohm, "x_ohm": self.x_pu * self.z_base_ohm,
            "r_pu": self.r_pu, "x_pu": self.x_pu, RATING_COLUMN: self.branch_rating_a,
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

        Line impedances are given per km with length 1 km, so ``r_ohm_per_km`` = r [Ω];
        ``max_i_ka`` is the rating (``rating_a`` / 1000; 99 kA for an unrated line), so that
        pandapower's ``res_line.loading_percent`` is the loading against the same rating.
        Used by :mod:`evsched.powerflow` as the independent AC reference.
        """
        import pandapower as pp

        net = pp.create_empty_network(name=self.name, sn_mva=self.s_base_kva / 1e3)
        vn = self.vn_kv
        for b in self.bus_ids:
            pp.create_bus(net, vn_kv=vn, name=str(b))
        pp.create_ext_grid(net, bus=self.slack, vm_pu=1.0)
        z = self.z_base_ohm
        rating = self.branch_rating_a
        for k in range(self.n_branch):
            pp.create_line_from_parameters(
                net, from_bus=int(self.branch_from[k]), to_bus=int(self.branch_to[k]),
                length_km=1.0, r_ohm_per_km=float(self.r_pu[k] * z),
                x_ohm_per_km=float(self.x_pu[k] * z), c_nf_per_km=0.0,
                max_i_ka=float(rating[k] / 1e3) if np.isfinite(rating[k]) else 99.0)
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
                              self.x_pu[k] * self.z_base_ohm, True, self.branch_rating_a[k]))
        buses = pd.concat(rows, ignore_index=True)
        lines_df = pd.DataFrame(lines, columns=LINE_COLUMNS + [RATING_COLUMN])
        return build_network(buses, lines_df, name=f"{self.name}x{copies}",
                             s_base_kva=self.s_base_kva)


# --- construction and validation ----------------------------------------------------------

def _plain(value):
    """A Python scalar for messages (``0.5``, never ``np.float64(0.5)``)."""
    return value.item() if isinstance(value, np.generic) else value


def build_network(buses: pd.DataFrame, lines: pd.DataFrame, name: str = "network",
                  s_base_kva: float = 1000.0, bus_source: str = "buses",
                  line_source: str = "lines", bus_labels=None, line_labels=None) -> Network:
    """Validate bus and line tables and build a :class:`Network`.

    Rules (each failure names the source, row and field):
    required columns present; bus ids unique; exactly one bus of type 'slack'; one nominal
    voltage ``vn_kv`` > 0; finite loads; line ends are known buses, not equal; r, x > 0
    (finite); an optional ``rating_a`` [A] finite > 0 or empty; no duplicate lines; the
    in-service lines form a tree spanning all buses (connected, radial: n_bus − 1 lines, no
    loop).

    ``bus_labels`` / ``line_labels`` (one text per row) name the rows in messages instead of
    the CSV row numbers (``from_pandapower``: the pandapower indices).
    """
    _require_columns(buses, BUS_COLUMNS, bus_source)
    _require_columns(lines, LINE_COLUMNS, line_source)
    buses = buses.reset_index(drop=True).copy()
    lines = lines.reset_index(drop=True).copy()

    def row(i: int) -> str:  # CSV row number counting the header as row 1 (lines, bus lists)
        return f"row {i + 2}" if line_labels is None else line_labels[i]

    def brow(i: int) -> str:  # a bus row: CSV row and bus id, or the caller's label
        return f"row {i + 2} (bus {buses.at[i, 'bus']})" if bus_labels is None else bus_labels[i]

    def lrow(i: int) -> str:  # a line row with its ends, or the caller's label
        if line_labels is not None:
            return line_labels[i]
        return f"row {i + 2} ({lines.at[i, 'from_bus']}-{lines.at[i, 'to_bus']})"

    def bshort(i: int) -> str:
        return f"row {i + 2}" if bus_labels is None else bus_labels[i]

    dup = buses["bus"].duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise input_error(bus_source, bshort(i), "bus", _plain(buses.at[i, "bus"]),
                          "duplicate bus id (each bus must appear once)", NetworkDataError)
    for col in ("p_kw", "q_kvar", "vn_kv"):
        vals = pd.to_numeric(buses[col], errors="coerce")
        bad = ~np.isfinite(vals.to_numpy(float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(bus_source, brow(i), col, _plain(buses.at[i, col]),
                              "must be a finite number", NetworkDataError)
        buses[col] = vals.astype(float)
    types = buses["type"].astype(str).str.strip().str.lower()
    bad_type = ~types.isin(["slack", "pq"])
    if bad_type.any():
        i = int(np.flatnonzero(bad_type)[0])
        raise input_error(bus_source, brow(i), "type", _plain(buses.at[i, "type"]),
                          "must be 'slack' or 'pq'", NetworkDataError)
    buses["type"] = types
    slack_rows = np.flatnonzero(types == "slack")
    if len(slack_rows) != 1:
        where = ", ".join(bshort(i) for i in slack_rows) or "no row"
        raise NetworkDataError(
            f"{bus_source}: exactly one bus must have type 'slack', found {len(slack_rows)} "
            f"({where}), field 'type'")
    nonpos = buses["vn_kv"] <= 0
    if nonpos.any():
        i = int(np.flatnonzero(nonpos)[0])
        raise input_error(bus_source, brow(i), "vn_kv", _plain(buses.at[i, "vn_kv"]),
                          "must be > 0 kV", NetworkDataError)
    if buses["vn_kv"].nunique() != 1:
        i = int(np.flatnonzero(buses["vn_kv"] != buses["vn_kv"].iloc[0])[0])
        raise input_error(bus_source, brow(i), "vn_kv", _plain(buses.at[i, "vn_kv"]),
                          f"all buses must share one voltage level ({buses['vn_kv'].iloc[0]} kV); "
                          "transformers are not modelled", NetworkDataError)

    ids = list(buses["bus"])
    lookup = {b: i for i, b in enumerate(ids)}
    for col in ("from_bus", "to_bus"):
        for i, b in enumerate(lines[col]):
            if b not in lookup:
                raise input_error(line_source, row(i), col, _plain(b),
                                  f"unknown bus (not in {bus_source})", NetworkDataError)
    for col in ("r_ohm", "x_ohm"):
        vals = pd.to_numeric(lines[col], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(vals) & (vals > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(line_source, lrow(i),
                              col, _plain(lines.at[i, col]), "must be a finite number > 0 Ω",
                              NetworkDataError)
        lines[col] = vals
    if RATING_COLUMN in lines:  # optional ampacity: finite > 0 A, or empty (unrated)
        vals = pd.to_numeric(lines[RATING_COLUMN], errors="coerce").to_numpy(float)
        given = lines[RATING_COLUMN].notna().to_numpy() & (lines[RATING_COLUMN].astype(str).str.strip() != "")
        bad = given & ~(np.isfinite(vals) & (vals > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise input_error(line_source, lrow(i), RATING_COLUMN, _plain(lines.at[i, RATING_COLUMN]),
                              "must be a finite number > 0 A (the line's ampacity), or empty for an "
                              "unrated line", NetworkDataError)
        lines[RATING_COLUMN] = np.where(given, vals, np.nan)
    lines["in_service"] = _parse_bool(lines["in_service"], line_source, line_labels)
    same = lines["from_bus"] == lines["to_bus"]
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise input_error(line_source, row(i), "to_bus", _plain(lines.at[i, "to_bus"]),
                          "a line must connect two different buses", NetworkDataError)
    pair = lines.apply(lambda r: tuple(sorted((r["from_bus"], r["to_bus"]))), axis=1)
    dup = pair.duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(pair == pair[i])[0])
        raise input_error(line_source, row(i), "from_bus/to_bus", tuple(_plain(b) for b in pair[i]),
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
            raise input_error(line_source, lrow(li), "in_service", True,
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
        raise input_error(bus_source, brow(i), "bus", _plain(ids[i]),
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


def _parse_bool(col: pd.Series, source: str, labels=None) -> pd.Series:
    truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    out = []
    for i, v in enumerate(col):
        key = str(v).strip().lower()
        if key not in truth:
            raise input_error(source, f"row {i + 2}" if labels is None else labels[i], "in_service",
                              _plain(v), "must be True/False (or 1/0, yes/no)", NetworkDataError)
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


PP_UNSUPPORTED = ("trafo", "trafo3w", "impedance", "dcline", "gen", "shunt", "ward", "xward",
                  "storage", "motor", "asymmetric_load", "asymmetric_sgen", "svc", "tcsc", "ssc",
                  "vsc", "line_dc", "bus_dc")
"""pandapower element tables :func:`from_pandapower` cannot convert: an in-service element of
any of them is refused (ignoring it would change the feeder silently)."""


def from_pandapower(net, name: str | None = None, s_base_kva: float = 1000.0) -> Network:
    """Convert a radial, single-voltage-level pandapower net into a :class:`Network`.

    Buses are numbered 1..n in the order of ``net.bus`` (the pandapower index is kept in
    column ``pp_index``); loads are summed per bus, static generators are subtracted
    (load convention). Every message names the pandapower table, the element index, the
    field and the value. What is honoured and what is refused:

    * **switches**: an open line switch (``et='l'``) takes its line out of service; a closed
      bus-bus switch (``et='b'``, ideal: ``z_ohm = 0``) fuses its two buses into one (the
      first in ``net.bus`` order keeps its index; loads are summed); an open bus-bus switch
      connects nothing. A switch with impedance, an unknown ``et``, a switch on a missing
      bus/line or on a bus that is not an end of its line is refused.
    * **out of service**: out-of-service lines, loads and static generators are ignored; an
      out-of-service bus is dropped if nothing in service touches it, and refused (naming
      the line, switch, load, sgen or ext_grid) otherwise.
    * **topology**: a bus cut off from the ext_grid is refused, naming the open switch or
      out-of-service line that cuts it off; loops are refused by :func:`build_network`.
    * **values**: a NaN/inf ``p_mw``, ``q_mvar`` or ``scaling`` of an in-service load/sgen,
      a load/sgen/line on a bus not in ``net.bus`` and a non-positive or non-finite line
      length, impedance or ``parallel`` are refused (never read as 0, never dropped).
    * **unsupported elements**: an in-service transformer (``trafo``) or any other element
      of :data:`PP_UNSUPPORTED` (``gen``, ``shunt``, ``storage``, ...) is refused
      (:func:`evsched.feeders.load_simbench` cuts a SimBench grid at its HV/MV transformer
      first); line shunt capacitance (``c_nf_per_km``) is neglected, as in DistFlow.
    * **ratings**: each line's ampacity ``rating_a`` = ``max_i_ka · df · parallel`` [A], the
      current pandapower's ``loading_percent`` counts as 100 % (unrated: see
      :func:`_pp_rating_a`).

    Dropped out-of-service buses (and the out-of-service lines at them) and fused buses are
    logged at INFO and listed in ``network.buses.attrs`` (``pp_dropped_buses``,
    ``pp_dropped_lines``, ``pp_fused_buses``).
    """
    label = name or getattr(net, "name", None) or "net"
    source = f"pandapower net '{label}'"

    def fail(table, idx, fld, value, rule):
        raise input_error(f"{source} {table} table", f"{table} {_plain(idx)}", fld, _plain(value),
                          rule, NetworkDataError)

    def table(key) -> pd.DataFrame:
        df = net[key] if key in net else None
        return df if isinstance(df, pd.DataFrame) else pd.DataFrame()

    def flags(df, key, col="in_service"):
        v = df[col]
        good = v.map(lambda x: isinstance(x, (bool, np.bool_))
                     or (isinstance(x, (int, np.integer)) and x in (0, 1))).to_numpy(dtype=bool)
        if not good.all():
            i = int(np.flatnonzero(~good)[0])
            fail(key, df.index[i], col, v.iloc[i], "must be True or False")
        return v.astype(bool).to_numpy()

    def finite(df, key, cols, positive=False):
        for col in cols:
            v = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
            bad = ~np.isfinite(v) | ((v <= 0) if positive else False)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                fail(key, df.index[i], col, df[col].iloc[i],
                     "must be a finite number > 0" if positive else
                     "must be a finite number (a missing value is not 0)")

    for key in PP_UNSUPPORTED:
        df = table(key)
        if not len(df):
            continue
        on = flags(df, key) if "in_service" in df else np.ones(len(df), dtype=bool)
        if on.any():
            i = df.index[np.flatnonzero(on)[0]]
            what = ("in-service transformers are not supported: only single-voltage-level feeders"
                    if key == "trafo" else f"in-service '{key}' elements are not supported")
            fail(key, i, "in_service", True,
                 f"{what} ({int(on.sum())} in service); the conversion keeps lines, loads, static "
                 "generators (sgen), line and bus-bus switches and one ext_grid: take it out of "
                 "service or model it as one of those")

    bus = table("bus")
    idx = bus.index
    if not idx.is_unique:
        fail("bus", idx[idx.duplicated()][0], "index", idx[idx.duplicated()][0], "duplicate bus index")
    nb = len(idx)
    pos = {b: i for i, b in enumerate(idx)}
    bus_on = flags(bus, "bus") if "in_service" in bus else np.ones(nb, dtype=bool)

    def where(key, df, col):
        """Positions in net.bus of the buses ``df[col]`` refers to (refusing unknown ones)."""
        bad = ~df[col].isin(idx).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(key, df.index[i], col, df[col].iloc[i],
                 "not in net.bus (must be the index of an existing bus); the element would be lost")
        return df[col].map(pos).to_numpy(int)

    eg = table("ext_grid")
    eg_on = flags(eg, "ext_grid") if len(eg) else np.zeros(0, dtype=bool)
    if eg_on.sum() != 1:
        raise NetworkDataError(f"{source}: needs exactly one in-service ext_grid (slack), "
                               f"found {int(eg_on.sum())}")
    eg_pos = where("ext_grid", eg, "bus")
    slack = int(eg_pos[eg_on][0])
    if not bus_on[slack]:
        fail("bus", idx[slack], "in_service", False,
             f"the in-service ext_grid {_plain(eg.index[eg_on][0])} (the slack) is at this "
             "out-of-service bus")

    # lines: ends, impedances, in service
    ln = table("line")
    f_pos, t_pos = where("line", ln, "from_bus"), where("line", ln, "to_bus")
    finite(ln, "line", ["length_km", "r_ohm_per_km", "x_ohm_per_km", "parallel"], positive=True)
    line_on = flags(ln, "line") if len(ln) else np.zeros(0, dtype=bool)
    live = line_on.copy()  # in service and not opened by a switch
    line_row = {l: k for k, l in enumerate(ln.index)}
    opened_by: dict[int, object] = {}
    fuse, open_bb = [], []
    sw = table("switch")
    if len(sw):
        closed = flags(sw, "switch", "closed")
        sw_pos = where("switch", sw, "bus")
        for k, si in enumerate(sw.index):
            et, el = sw.at[si, "et"], sw.at[si, "element"]
            if et == "l":
                if el not in line_row:
                    fail("switch", si, "element", el, "not in net.line (the element of a line "
                         "switch is a line index)")
                lr = line_row[el]
                if sw_pos[k] not in (f_pos[lr], t_pos[lr]):
                    fail("switch", si, "bus", sw.at[si, "bus"],
                         f"not an end of its line {_plain(el)} ({_plain(idx[f_pos[lr]])}-"
                         f"{_plain(idx[t_pos[lr]])})")
                if not closed[k]:
                    if live[lr]:
                        opened_by.setdefault(lr, si)
                    live[lr] = False
            elif et == "b":
                if el not in pos:
                    fail("switch", si, "element", el, "not in net.bus (the element of a bus-bus "
                         "switch is a bus index)")
                if closed[k]:
                    z = pd.to_numeric(pd.Series([sw.at[si, "z_ohm"] if "z_ohm" in sw else 0.0]),
                                      errors="coerce").iloc[0]
                    if not z == 0:
                        fail("switch", si, "z_ohm", z, "a closed bus-bus switch must be ideal "
                             "(z_ohm = 0): switch impedances are not modelled")
                    fuse.append((sw_pos[k], pos[el], si))
                else:
                    open_bb.append((sw_pos[k], pos[el], si))
            elif et not in ("t", "t3"):  # transformer switches: transformers are refused above
                fail("switch", si, "et", et, "must be 'l' (line), 'b' (bus-bus), 't' or 't3'")

    # closed bus-bus switches fuse buses (the first in net.bus order represents the group)
    root = list(range(nb))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    vn = pd.to_numeric(bus["vn_kv"], errors="coerce").to_numpy(float)
    for a, b, si in fuse:
        for x, y in ((a, b), (b, a)):
            if not bus_on[x]:
                fail("bus", idx[x], "in_service", False, f"out of service, but the closed bus-bus "
                     f"switch {_plain(si)} connects it to bus {_plain(idx[y])}: open the switch or "
                     "put the bus in service")
        if vn[a] != vn[b]:
            fail("switch", si, "element", idx[b], f"a closed bus-bus switch must join buses of one "
                 f"voltage level (bus {_plain(idx[a])}: {vn[a]:g} kV, bus {_plain(idx[b])}: {vn[b]:g} kV)")
        ra, rb = find(a), find(b)
        root[max(ra, rb)] = min(ra, rb)
    rep = np.array([find(i) for i in range(nb)], dtype=int)

    # out-of-service buses: nothing in service may touch them
    bad = live & (~bus_on[f_pos] | ~bus_on[t_pos])
    if bad.any():
        lr = int(np.flatnonzero(bad)[0])
        b = f_pos[lr] if not bus_on[f_pos[lr]] else t_pos[lr]
        fail("bus", idx[b], "in_service", False,
             f"the bus is out of service, but in-service line {_plain(ln.index[lr])} "
             f"({_plain(idx[f_pos[lr]])}-{_plain(idx[t_pos[lr]])}) connects it: take the line out "
             "of service (or open its switch), or put the bus in service")

    # loads (+) and static generators (-) per bus, in kW / kvar
    p, q = np.zeros(nb), np.zeros(nb)
    for key, sign in (("load", 1.0), ("sgen", -1.0)):
        df = table(key)
        if not len(df):
            continue
        at = where(key, df, "bus")
        on = flags(df, key)
        finite(df[on], key, ["p_mw", "q_mvar", "scaling"])
        off_bus = on & ~bus_on[at]
        if off_bus.any():
            i = int(np.flatnonzero(off_bus)[0])
            fail(key, df.index[i], "bus", df["bus"].iloc[i],
                 f"this in-service {key} is at an out-of-service bus: take it out of service too, "
                 "or put the bus in service")
        scale = df["scaling"].to_numpy(float)[on]
        np.add.at(p, rep[at[on]], sign * df["p_mw"].to_numpy(float)[on] * scale * 1e3)
        np.add.at(q, rep[at[on]], sign * df["q_mvar"].to_numpy(float)[on] * scale * 1e3)

    # every in-service bus must reach the ext_grid; name what cuts it off
    adj: dict[int, list[int]] = {}
    for lr in np.flatnonzero(live):
        a, b = rep[f_pos[lr]], rep[t_pos[lr]]
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)

    def component(start):
        seen, todo = {start}, deque([start])
        while todo:
            for v in adj.get(todo.popleft(), ()):
                if v not in seen:
                    seen.add(v)
                    todo.append(v)
        return seen

    reached = component(rep[slack])
    nodes = [i for i in range(nb) if bus_on[i] and rep[i] == i]
    if any(i not in reached for i in nodes):
        def cut_off(node):
            island = component(node)
            return sorted(_plain(idx[i]) for i in range(nb) if bus_on[i] and rep[i] in island)

        cuts = [("line", lr) for lr in range(len(ln)) if not live[lr]] + \
               [("bb", k) for k in range(len(open_bb))]
        for kind, k in cuts:
            a, b = ((rep[f_pos[k]], rep[t_pos[k]]) if kind == "line"
                    else (rep[open_bb[k][0]], rep[open_bb[k][1]]))
            if (a in reached) == (b in reached) or not (bus_on[a] and bus_on[b]):
                continue
            lost = cut_off(b if a in reached else a)
            tail = (f"leaves bus(es) {lost} not connected to the ext_grid (bus "
                    f"{_plain(idx[slack])})")
            if kind == "bb":
                fail("switch", open_bb[k][2], "closed", False, f"this open bus-bus switch {tail}: "
                     "close it, or take the cut-off buses out of service")
            if k in opened_by:
                fail("switch", opened_by[k], "closed", False, f"this open switch (on line "
                     f"{_plain(ln.index[k])}) {tail}: close it, or take the cut-off buses out of "
                     "service")
            fail("line", ln.index[k], "in_service", False, f"this out-of-service line {tail}: put "
                 "it in service (or close a tie line), or take the cut-off buses out of service")
        first = next(i for i in nodes if i not in reached)
        fail("bus", idx[first], "in_service", True, f"bus(es) {cut_off(first)} not connected to "
             f"the ext_grid (bus {_plain(idx[slack])}) by any in-service line or closed switch")

    # the tables: in-service representative buses, lines between in-service buses
    keep = np.array(nodes, dtype=int)
    new_id = np.zeros(nb, dtype=int)
    new_id[keep] = np.arange(1, len(keep) + 1)
    dropped = [_plain(b) for b in idx[~bus_on]]
    fused = {_plain(idx[r]): [_plain(idx[i]) for i in range(nb) if rep[i] == r and i != r]
             for r in keep if (rep == r).sum() > 1}
    buses = pd.DataFrame({
        "bus": np.arange(1, len(keep) + 1),
        "type": ["slack" if i == rep[slack] else "pq" for i in keep],
        "vn_kv": vn[keep], "p_kw": p[keep], "q_kvar": q[keep], "pp_index": idx[keep].to_numpy(),
    })
    if "geo" in bus and bus["geo"].iloc[keep].notna().all():
        xy = []
        for i in keep:
            g = bus["geo"].iloc[i]
            try:
                c = (json.loads(g) if isinstance(g, str) else g)["coordinates"]
                xy.append((float(c[0]), float(c[1])))
            except (TypeError, ValueError, KeyError, IndexError):
                fail("bus", idx[i], "geo", g, "must be a GeoJSON point "
                     "'{\"type\": \"Point\", \"coordinates\": [x, y]}' (or no geo for any bus)")
        buses["x"], buses["y"] = [c[0] for c in xy], [c[1] for c in xy]
    kept_line = bus_on[f_pos] & bus_on[t_pos]
    dropped_lines = [_plain(l) for l in ln.index[~kept_line]]
    lk = ln[kept_line]
    lines = pd.DataFrame({
        "from_bus": new_id[rep[f_pos[kept_line]]], "to_bus": new_id[rep[t_pos[kept_line]]],
        "r_ohm": (lk.r_ohm_per_km * lk.length_km / lk.parallel).to_numpy(float),
        "x_ohm": (lk.x_ohm_per_km * lk.length_km / lk.parallel).to_numpy(float),
        "in_service": live[kept_line],
        RATING_COLUMN: _pp_rating_a(lk),
    })
    if dropped or fused:
        logger.info("%s: dropped out-of-service buses %s (and their out-of-service lines %s); "
                    "fused by closed bus-bus switches: %s", source, dropped, dropped_lines, fused)
    buses.attrs.update(pp_dropped_buses=dropped, pp_dropped_lines=dropped_lines,
                       pp_fused_buses=fused)
    return build_network(buses, lines, name=name or getattr(net, "name", None) or "pandapower",
                         s_base_kva=s_base_kva, bus_source=f"{source} bus table",
                         line_source=f"{source} line table",
                         bus_labels=[f"bus {_plain(idx[i])}" for i in keep],
                         line_labels=[f"line {_plain(l)} ({_plain(a)}-{_plain(b)})" for l, a, b
                                      in zip(lk.index, lk.from_bus, lk.to_bus)])


def _pp_rating_a(lines: pd.DataFrame) -> np.ndarray:
    """Ampacity [A] of pandapower lines as pandapower's ``loading_percent`` counts it:
    ``max_i_ka · df · parallel · 1000``. NaN (an unrated line) where ``max_i_ka`` is missing,
    not positive, not finite or ≥ :data:`PP_NO_RATING_KA` (the placeholder of converted
    MATPOWER cases such as ``case33bw``, 99999 kA)."""
    def col(name, default):
        return (pd.to_numeric(lines[name], errors="coerce").to_numpy(float) if name in lines
                else np.full(len(lines), default))
    ka = col("max_i_ka", np.nan)
    i_max = ka * col("df", 1.0) * col("parallel", 1.0) * 1e3
    return np.where(np.isfinite(i_max) & (i_max > 0) & (ka < PP_NO_RATING_KA), i_max, np.nan)


def _rel(path: Path) -> str:
    """Path relative to the repository root when possible (shorter, machine-independent messages)."""
    from evsched.paths import rel
    return rel(path)
