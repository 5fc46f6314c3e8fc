"""Assemble the multi-period DistFlow SOCP from variable and constraint families, solve it.

Three ways to build the same problem (``construction=``), chosen per use
(see ``make bench`` and ``results/bench/``):

``"parametric"``
    every data array (loads, device bounds, energy envelopes) is a ``cp.Parameter``
    (cvxpy DPP): a re-solve skips canonicalisation. Compile cost grows steeply with the
    number of parameter entries, so only for small feeders.
``"constant"``
    data are numpy constants: the cheapest one-off build; :meth:`OPFModel.update`
    rebuilds the problem.
``"rhs"``
    constants, compiled once; the data only ever enter the right-hand side ``b`` of the
    conic problem ``A x + s = b``, so :meth:`OPFModel.update` rewrites ``b`` through a
    sparse map learnt at build time (one extra compile with perturbed data, verified
    exactly) and calls the solver on the stored matrices: re-solves cost solver time only,
    at any size.
``"auto"`` (default)
    ``"constant"`` for the first solve (cheapest one-off); at the first :meth:`OPFModel.update`
    the model switches to ``"rhs"``, so a sweep pays one extra compile and then solver time
    only. ``make bench`` measured ``"rhs"`` re-solves as fast as DPP re-solves at 33 buses ×
    24 steps (0.054 s vs 0.056 s) without DPP's compile cost, which explodes with size
    (0.3 s → 4.3 s / 2.7 GiB at 33 × 96 → 30 s / 15 GiB at 321 × 24).
"""
from __future__ import annotations

import time
import warnings

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from evsched.errors import InexactRelaxationError, InputError, OptimisationError
from evsched.model import constraints as fam
from evsched.model import rhs
from evsched.model.devices import DeviceGroup, StorageGroup
from evsched.model.result import OPFResult, build_result
from evsched.network import Network
from evsched.sessions import hour_label
from evsched.solvers import select_solver

ACCEPTED_STATUSES = (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
GAP_TOL_REL = 1e-5
"""Largest relative cone gap ``max |ℓ v − P² − Q²| / max (P² + Q²)`` accepted as exact. Exact
solves of this project's cases sit at 1e-9 to 1e-8 (interior-point tolerance); an inexact
relaxation shows gaps of 1e-2 and more."""


def _entries(a: np.ndarray, flat_index: np.ndarray) -> np.ndarray:
    """Entries of the (n × T) array ``a`` at F-order flat indices (a vector)."""
    return a.ravel(order="F")[flat_index]


def _fold_energy_bounds(g: StorageGroup, lo: np.ndarray, hi: np.ndarray, sb: float, hours=None):
    """Energy bounds of a storage group on its active (device, step) pairs only.

    ``E − E0`` only changes at active steps, so a bound at an inactive step t applies to the
    energy at the last active step τ ≤ t: the folded bounds are
    ``lo'(τ) = max_{t ∈ [τ, next active)} lo(t)`` and ``hi'(τ) = min(…) hi(t)``, an exact
    reformulation with one row per active pair instead of one per (device, step) — for the
    per-EV model, most of whose pairs are inactive, a 2–3× smaller problem. Before the first
    active step ``E − E0 = 0`` is fixed: a bound there that excludes 0 is an input error.
    Returns ``(lo', hi')`` as F-order vectors over the active pairs [p.u.·h]."""
    n, T = lo.shape
    mask = g.active_mask()
    step = np.where(mask, np.arange(T)[None, :], -1)
    last = np.maximum.accumulate(step, axis=1)          # last active step ≤ t, −1 if none
    before = last < 0
    bad = before & ((lo > 1e-9) | (hi < -1e-9))
    if bad.any():
        i, t = (int(x) for x in np.argwhere(bad)[0])
        hour = hour_label(t if hours is None else hours[t])
        raise InputError(f"device group '{g.name}', device {i} at bus {g.buses[i]}, hour {hour}: energy "
                         f"bounds [{lo[i, t] * sb:.6g}, {hi[i, t] * sb:.6g}] kWh (relative to the initial "
                         "energy) exclude 0, but the device cannot exchange power before this hour")
    rows = np.broadcast_to(np.arange(n)[:, None], (n, T))
    lo_f = np.full((n, T), -np.inf)
    hi_f = np.full((n, T), np.inf)
    np.maximum.at(lo_f, (rows[~before], last[~before]), lo[~before])
    np.minimum.at(hi_f, (rows[~before], last[~before]), hi[~before])
    active = np.flatnonzero(mask.ravel(order="F"))
    return lo_f.ravel(order="F")[active], hi_f.ravel(order="F")[active]


class OPFModel:
    """Multi-period optimal power flow on a radial feeder, SOC-relaxed DistFlow.

    Parameters
    ----------
    network : Network
    load_p_kw, load_q_kvar : (n_bus, T) array-like
        Uncontrolled net demand per bus and step (load convention) [kW], [kvar].
    devices : list of DeviceGroup / StorageGroup
        Controllable devices; names must be unique.
    v_min_pu, v_max_pu : voltage band at non-slack buses [p.u.]
    v_slack_pu : substation voltage [p.u.]
    dt_h : step length [h]; the loss objective is in kWh.
    hours : labels of the T steps for the result frames (default 0..T−1)
    construction : "auto" | "parametric" | "constant" | "rhs" (see module docstring)
    families : mapping name → constraint function (default
        :data:`evsched.model.constraints.FAMILIES`); pass a modified copy to add or drop one.

    count_converter_losses : bool
        Add the storage converters' losses Σ ((1 − η_c) p_ch + (1/η_d − 1) p_dis) · Δt [kWh]
        to the objective (default True). Without it, charging and discharging at once is a
        free way to dump surplus energy and lower the *network* loss; with it, the optimum
        does not burn energy. The reported network loss (``loss_kwh``) never includes it.
    extra_data : mapping name → array (p.u.), optional
        Data arrays of custom families, read with ``m.data(name)`` like the built-in ones (a
        Parameter in the parametric build, part of the verified data → b map in the rhs
        build); new values through ``update(extra_data=...)``. Names must not clash with the
        model's own arrays (``load_p``, ``<group>.p_max``, ...).
    branch_rating_a : (n_branch,) or (n_branch, T) array [A], optional
        Ampacities for :func:`~evsched.model.constraints.branch_current_limits` (default: the
        network's ``branch_rating_a``; NaN = unrated, no limit). Which branches are rated is
        fixed for the model's lifetime; the values may change with ``update``.
    transformer_kva : float or (T,) array [kVA], optional
        Substation transformer rating for :func:`~evsched.model.constraints.transformer_rating`.

    Minimises Σ_k Σ_t r_k ℓ_{k,t} · S_base · Δt, the total active network loss [kWh], plus the
    converter losses and the device energy costs (:attr:`DeviceGroup.energy_cost`).
    """

    def __init__(self, network: Network, load_p_kw, load_q_kvar, devices=(),
                 v_min_pu: float = 0.95, v_max_pu: float = 1.05, v_slack_pu: float = 1.0,
                 dt_h: float = 1.0, hours=None, construction: str = "auto", families=None,
                 count_converter_losses: bool = True, extra_data=None, branch_rating_a=None,
                 transformer_kva=None):
        self.network = network
        self.s_base = network.s_base_kva
        self.v_min_pu, self.v_max_pu, self.v_slack_pu = float(v_min_pu), float(v_max_pu), float(v_slack_pu)
        self.dt_h = float(dt_h)
        self._check_limits()
        self.load_p_kw, self.load_q_kvar = self._load_matrices(load_p_kw, load_q_kvar, hours)
        self.T = self.load_p_kw.shape[1]
        self.hours = np.arange(self.T) if hours is None else np.asarray(hours)
        self.groups = self._check_groups(devices)
        self.nonslack = np.setdiff1d(np.arange(network.n_bus), [network.slack])
        self.families = dict(fam.FAMILIES if families is None else families)
        self.count_converter_losses = bool(count_converter_losses)
        self.branch_rating_a = self._ratings(branch_rating_a)
        self.transformer_kva = self._transformer(transformer_kva)
        self._values = self._data_values()
        self.extra_data = rhs.extra_data_arrays(extra_data)
        self._values = rhs.with_extra_data(self._values, self.extra_data)
        self.auto = construction == "auto"
        if self.auto:
            construction = "constant"
        if construction not in ("parametric", "constant", "rhs"):
            raise InputError(f"construction must be 'auto', 'parametric', 'constant' or 'rhs'; got {construction!r}")
        self.construction = construction
        self.timings: dict[str, float] = {}
        self._compiled = None
        t0 = time.perf_counter()
        self._build()
        self.timings["build_s"] = time.perf_counter() - t0

    # --- inputs ------------------------------------------------------------------
    def _check_limits(self) -> None:
        if not (0.5 <= self.v_min_pu < self.v_max_pu <= 1.5):
            raise InputError(f"voltage limits: need 0.5 ≤ v_min_pu < v_max_pu ≤ 1.5 p.u., "
                             f"got v_min_pu={self.v_min_pu}, v_max_pu={self.v_max_pu}")
        if not (0.8 <= self.v_slack_pu <= 1.2):
            raise InputError(f"v_slack_pu = {self.v_slack_pu}: must be in 0.8..1.2 p.u.")
        if not (self.dt_h > 0):
            raise InputError(f"dt_h = {self.dt_h}: the step length must be > 0 h")

    def _load_matrices(self, p, q, hours=None):
        p = np.asarray(p, dtype=float)
        q = np.asarray(q, dtype=float)
        if p.ndim == 1:
            p, q = p[:, None], q[:, None]
        n = self.network.n_bus
        for name, a in (("load_p_kw", p), ("load_q_kvar", q)):
            if a.ndim != 2 or a.shape[0] != n:
                raise InputError(f"{name}: expected shape (n_bus={n}, T), got {a.shape}")
            bad = ~np.isfinite(a)
            if bad.any():
                i, t = np.argwhere(bad)[0]
                hour = hour_label(t if hours is None or len(hours) != a.shape[1] else hours[t])
                raise InputError(f"{name}: bus {self.network.bus_ids[i]}, hour {hour} is {a[i, t]} (must be finite)")
        if p.shape != q.shape:
            raise InputError(f"load_p_kw {p.shape} and load_q_kvar {q.shape} must have the same shape")
        return p, q

    def _ratings(self, rating, rated=None) -> np.ndarray:
        """Branch ampacities as a (K × T) array [A]: finite > 0 or NaN (unrated); ``rated`` (a
        boolean (K,) pattern) must be kept when given (update: the rows are fixed)."""
        K = self.network.n_branch
        a = self.network.branch_rating_a if rating is None else np.asarray(rating, dtype=float)
        if a.ndim == 1:
            a = a[:, None]
        if a.shape[0] != K or a.ndim != 2 or a.shape[1] not in (1, self.T):
            raise InputError(f"branch_rating_a: expected shape (n_branch={K},) or ({K}, {self.T}), got {a.shape}")
        a = np.broadcast_to(a, (K, self.T)).copy()
        finite = np.isfinite(a)
        mixed = finite.any(axis=1) & ~finite.all(axis=1)
        bad = np.argwhere((finite & (a <= 0)) | mixed[:, None])
        if bad.size:
            k, t = bad[0]
            raise InputError(f"branch_rating_a: branch {k} ({self.network.bus_ids[self.network.branch_from[k]]}-"
                             f"{self.network.bus_ids[self.network.branch_to[k]]}), hour {hour_label(self.hours[t])} is {a[k, t]} A: "
                             "a rating must be > 0 A in every hour, or NaN in every hour (unrated)")
        if rated is not None and not np.array_equal(finite[:, 0], rated):
            raise InputError("update: branch_rating_a must rate the same branches as the model was "
                             "built with (the rated branches are rows of the problem); build a new model")
        return a

    def _transformer(self, kva):
        """The transformer rating as a (T,) array [kVA] (> 0), or None."""
        if kva is None:
            return None
        a = np.broadcast_to(np.asarray(kva, dtype=float), (self.T,)).copy()
        if not (np.isfinite(a) & (a > 0)).all():
            raise InputError(f"transformer_kva = {kva!r}: must be a finite rating > 0 kVA (per hour)")
        return a

    def _check_groups(self, devices) -> dict:
        groups = {}
        for g in devices:
            if not isinstance(g, (DeviceGroup, StorageGroup)):
                raise InputError(f"devices: expected DeviceGroup or StorageGroup, got {type(g).__name__}")
            if g.name in groups:
                raise InputError(f"devices: two groups are named '{g.name}' (names must be unique)")
            if g.T != self.T:
                raise InputError(f"device group '{g.name}' has {g.T} steps, the loads have {self.T}")
            self.network.bus_index(g.buses)  # unknown bus → NetworkDataError naming the id
            groups[g.name] = g
        return groups

    def _data_values(self) -> dict[str, np.ndarray]:
        """Every data array of the problem, in p.u., by name (the only things a re-solve may change)."""
        sb = self.s_base
        vals = {"load_p": self.load_p_kw / sb, "load_q": self.load_q_kvar / sb}
        if "branch_current_limits" in self.families:  # ℓ ≤ (I_max / I_base)², rated branches × T
            rated = fam.rated_branches(self)
            vals["branch.l_max"] = (self.branch_rating_a[rated] / self.network.i_base_a) ** 2
        if "transformer_rating" in self.families:
            if self.transformer_kva is None:
                raise InputError("family 'transformer_rating' needs transformer_kva (the rating [kVA])")
            vals["transformer.s_max"] = self.transformer_kva / sb
        for name, g in self.groups.items():
            if isinstance(g, DeviceGroup):
                vals[f"{name}.p_min"] = g.p_min_kw / sb
                vals[f"{name}.p_max"] = g.p_max_kw / sb
                if g.has_reactive or g.s_max_kva is not None:
                    vals[f"{name}.q_min"] = g.q_min_kvar / sb
                    vals[f"{name}.q_max"] = g.q_max_kvar / sb
                if g.s_max_kva is not None:
                    vals[f"{name}.s_max"] = g.s_max_kva / sb
            else:  # power limits only on the active (device, step) pairs, F-order vectors
                active = self._active_index(g)
                vals[f"{name}.p_ch_max"] = _entries(g.p_charge_max_kw, active) / sb
                vals[f"{name}.p_dis_max"] = _entries(g.p_discharge_max_kw, active) / sb
                if g.p_total_max_kw is not None:
                    vals[f"{name}.p_total_max"] = _entries(g.p_total_max_kw, active) / sb
                if g.reactive:
                    vals[f"{name}.s_max"] = _entries(g.s_max_kva, active) / sb
                e0 = g.energy_initial_kwh[:, None] / sb
                vals[f"{name}.e_min"], vals[f"{name}.e_max"] = _fold_energy_bounds(
                    g, g.energy_min_kwh / sb - e0, g.energy_max_kwh / sb - e0, sb, self.hours)
        return vals

    # --- build -------------------------------------------------------------------
    def data(self, name: str):
        """The data array ``name`` as a cp.Parameter (parametric) or a constant."""
        if self.construction == "parametric":
            if name not in self.params:
                self.params[name] = cp.Parameter(self._values[name].shape, name=name,
                                                 value=self._values[name])
            return self.params[name]
        return self._values[name]

    def _build(self) -> None:
        net, T = self.network, self.T
        K, N = net.n_branch, net.n_bus
        self.params: dict[str, cp.Parameter] = {}
        self.P = cp.Variable((K, T), name="P")
        self.Q = cp.Variable((K, T), name="Q")
        # ℓ ≥ 0 and v ≥ 0 are implied by the cone (ℓ + v ≥ |ℓ − v|) and the voltage band;
        # not declaring them keeps 2·(K+N)·T rows out of the conic problem.
        self.l = cp.Variable((K, T), name="l")
        self.v = cp.Variable((N, T), name="v")
        self.device_vars, self.storage_vars = {}, {}
        for name, g in self.groups.items():
            inc = self._incidence(g)
            if isinstance(g, DeviceGroup):
                p = cp.Variable((g.n, T), name=f"{name}.p")
                q = cp.Variable((g.n, T), name=f"{name}.q") if f"{name}.q_min" in self._values else None
                self.device_vars[name] = {"name": name, "group": g, "inc": inc, "p": p, "q": q, "p_net": p}
            else:
                self.storage_vars[name] = self._storage_variables(g, inc)
        self.constraints = {name: f(self) for name, f in self.families.items()}
        self.loss_pu = cp.sum(sp.diags(net.r_pu) @ self.l)
        terms = [self.loss_pu * self.s_base * self.dt_h]  # kWh
        if self.count_converter_losses and self.storage_vars:
            terms.append(self.converter_loss_kwh())
        costed = [g for g in self.device_vars.values() if g["group"].energy_cost > 0]
        if costed:
            terms.append(self.device_energy_cost_kwh(costed))
        self.objective = cp.Minimize(cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0])
        self.problem = cp.Problem(self.objective, [c for cs in self.constraints.values() for c in cs])
        self._compiled = None

    def _active_index(self, g: StorageGroup) -> np.ndarray:
        """F-order flat indices of the active (device, step) pairs of a storage group."""
        return np.flatnonzero(g.active_mask().ravel(order="F"))

    def _storage_variables(self, g: StorageGroup, inc) -> dict:
        """Charge/discharge (and reactive) variables of a storage group on its active pairs.

        With ``a`` the active (device, step) pairs (:meth:`StorageGroup.active_mask`) and
        ``S`` the 0/1 selection matrix ((n·T) × |a|), the (n × T) powers are
        ``p_ch = reshape(S x_ch)``, ``p_dis = reshape(S x_dis)`` (zero where not active),
        ``x_ch, x_dis ≥ 0``; the limits of :func:`~evsched.model.constraints.storage_power_limits`
        and :func:`~evsched.model.constraints.apparent_power_limits` apply to ``x`` directly.
        """
        name, T = g.name, self.T
        active = self._active_index(g)
        m = max(active.size, 1)  # a group with nothing active keeps one unused variable
        sel = sp.csr_matrix((np.ones(active.size), (active, np.arange(active.size))),
                            shape=(g.n * T, m))

        def full(x):
            return cp.reshape(sel @ x, (g.n, T), order="F")

        x_ch = cp.Variable(m, name=f"{name}.p_ch", nonneg=True)
        x_dis = cp.Variable(m, name=f"{name}.p_dis", nonneg=True)
        x_q = cp.Variable(m, name=f"{name}.q") if g.reactive else None
        p_ch, p_dis = full(x_ch), full(x_dis)
        return {"name": name, "group": g, "inc": inc, "active": active,
                "x_ch": x_ch, "x_dis": x_dis, "x_q": x_q,
                "p_ch": p_ch, "p_dis": p_dis, "p_net": p_ch - p_dis,
                "q": None if x_q is None else full(x_q)}

    def _incidence(self, g) -> sp.csr_matrix:
        rows = self.network.bus_index(g.buses)
        return sp.csr_matrix((np.ones(g.n), (rows, np.arange(g.n))), shape=(self.network.n_bus, g.n))

    def net_demand_pu(self):
        """Net demand per bus and hour [p.u.]: base load + Σ device net powers (load convention)."""
        d_p = self.data("load_p")
        d_q = self.data("load_q")
        for g in list(self.device_vars.values()) + list(self.storage_vars.values()):
            d_p = d_p + g["inc"] @ g["p_net"]
            if g["q"] is not None:
                d_q = d_q + g["inc"] @ g["q"]
        return d_p, d_q

    def converter_loss_kwh(self):
        """Σ over storage groups of ((1 − η_c)·p_ch + (1/η_d − 1)·p_dis)·Δt [kWh] (cvxpy expression)."""
        total = 0
        for g in self.storage_vars.values():
            grp = g["group"]
            w_ch = (1.0 - grp.eta_charge)[:, None]
            w_dis = (1.0 / grp.eta_discharge - 1.0)[:, None]
            total = total + cp.sum(cp.multiply(w_ch, g["p_ch"]) + cp.multiply(w_dis, g["p_dis"]))
        return total * self.s_base * self.dt_h

    def device_energy_cost_kwh(self, groups):
        """Σ over costed device groups of ``energy_cost · Σ p · Δt`` [objective kWh]
        (:attr:`DeviceGroup.energy_cost`; for a curtailable generator the curtailment price up
        to a constant)."""
        return sum(g["group"].energy_cost * cp.sum(g["p"]) for g in groups) * self.s_base * self.dt_h

    def is_dpp(self) -> bool:
        return self.problem.is_dpp()

    # --- re-solve with new data -----------------------------------------------------
    def update(self, load_p_kw=None, load_q_kvar=None, devices=(), extra_data=None,
               branch_rating_a=None, transformer_kva=None) -> None:
        """New loads, device data and/or custom data arrays for the next :meth:`solve`.

        ``devices`` are groups replacing those of the same name (same type, same buses, same
        number of steps). ``extra_data`` replaces or adds arrays of ``extra_data`` (see the
        class docstring). ``branch_rating_a`` / ``transformer_kva`` give new ratings (the same
        branches rated). If anything but data *values* changes (:func:`evsched.model.rhs.fingerprint`:
        array names or shapes, e.g. reactive power switched on, a reshaped custom array; or
        what enters the matrices, e.g. another set of plugged-in pairs or other efficiencies)
        the problem is rebuilt, and under ``"rhs"`` the data → b map is learnt and verified
        again at the next solve; otherwise ``"rhs"`` rewrites b through the verified map only.
        """
        t0 = time.perf_counter()
        before = rhs.fingerprint(self)
        p, q = self.load_p_kw, self.load_q_kvar  # everything is checked before anything changes
        if load_p_kw is not None or load_q_kvar is not None:
            p, q = self._load_matrices(p if load_p_kw is None else load_p_kw,
                                       q if load_q_kvar is None else load_q_kvar, self.hours)
            if p.shape != self.load_p_kw.shape:
                raise InputError(f"update: loads must keep shape {self.load_p_kw.shape}, got {p.shape}")
        for g in devices:
            old = self.groups.get(g.name)
            if old is None or type(old) is not type(g) or not np.array_equal(old.buses, g.buses):
                raise InputError(f"update: device group '{g.name}' must replace an existing group "
                                 "of the same type on the same buses")
            if g.T != self.T:
                raise InputError(f"update: device group '{g.name}' has {g.T} steps, the loads have {self.T}")
        extra = {**self.extra_data, **rhs.extra_data_arrays(extra_data)}
        rating = (self.branch_rating_a if branch_rating_a is None else
                  self._ratings(branch_rating_a, rated=np.isfinite(self.branch_rating_a[:, 0])))
        kva = self.transformer_kva if transformer_kva is None else self._transformer(transformer_kva)
        self.load_p_kw, self.load_q_kvar, self.extra_data = p, q, extra
        self.branch_rating_a, self.transformer_kva = rating, kva
        self.groups.update({g.name: g for g in devices})
        new = rhs.with_extra_data(self._data_values(), self.extra_data)
        self._values = new
        restructured = rhs.fingerprint(self) != before
        if self.auto and self.construction == "constant":
            self.construction = "rhs"  # compiled at the next solve; later updates rewrite b only
        elif self.construction == "rhs" and self._compiled is None:
            pass  # compiled (and rebuilt on these data) at the next solve
        elif self.construction == "rhs" and self._compiled.accepts(self):
            self._compiled.write(new)
        elif self.construction == "parametric" and not restructured:
            for name, par in self.params.items():
                par.value = new[name]
        else:  # constant, a restructured parametric model, rhs not compiled or outside its map
            self._build()  # (drops the rhs map: learnt again at the next solve)
        self.timings["update_s"] = time.perf_counter() - t0

    def clone(self, **changes) -> "OPFModel":
        """A new model with every constructor argument of this one, ``changes`` overriding some.

        Copied: the network, the *current* loads and device groups (after any :meth:`update`),
        the voltage band, ``dt_h``, ``hours``, ``construction`` (``"auto"`` stays ``"auto"``),
        ``families`` (custom ones included), ``count_converter_losses``, ``extra_data`` and the
        ratings (``branch_rating_a``, ``transformer_kva``).
        The one way to derive a model, e.g. the elastic probe of
        :func:`evsched.model.diagnose.locate_infeasibility`; a constructor argument this
        method does not know raises ``TypeError`` rather than being silently dropped.
        """
        import inspect

        args = dict(network=self.network, load_p_kw=self.load_p_kw.copy(),
                    load_q_kvar=self.load_q_kvar.copy(), devices=list(self.groups.values()),
                    v_min_pu=self.v_min_pu, v_max_pu=self.v_max_pu, v_slack_pu=self.v_slack_pu,
                    dt_h=self.dt_h, hours=self.hours.copy(),
                    construction="auto" if self.auto else self.construction,
                    families=dict(self.families), count_converter_losses=self.count_converter_losses,
                    extra_data={k: v.copy() for k, v in self.extra_data.items()},
                    branch_rating_a=self.branch_rating_a.copy(),
                    transformer_kva=None if self.transformer_kva is None else self.transformer_kva.copy())
        params = [k for k in inspect.signature(type(self).__init__).parameters if k != "self"]
        missing = [k for k in params if k not in args]
        if missing:
            raise TypeError(f"OPFModel.clone does not copy the constructor argument(s) {missing}; "
                            "add them to clone")
        unknown = sorted(set(changes) - set(params))
        if unknown:
            raise TypeError(f"OPFModel.clone: unknown constructor argument(s) {unknown}")
        args.update(changes)
        return type(self)(**args)

    # --- rhs construction (evsched.model.rhs) ----------------------------------------------
    def _data_vector(self, values: dict) -> np.ndarray:
        """All data entries in one vector (:func:`evsched.model.rhs.data_vector`)."""
        return rhs.data_vector(values)

    def _compile_rhs(self, solver: str) -> None:
        """Compile, learn the data → b map and verify it on an independent random draw
        (:func:`evsched.model.rhs.learn`). If the data do not enter b exactly affinely (or
        change A, c, P or the cones), warn once naming the arrays and rebuild with constants
        from now on (``"auto"`` too): a stale b is never reused."""
        t0 = time.perf_counter()
        compiled, failed = rhs.learn(self, solver)
        self.timings["rhs_setup_s"] = time.perf_counter() - t0  # all compiles and checks
        if compiled is None:
            warnings.warn(f"construction='rhs': the data array(s) {failed} do not enter the right-hand "
                          "side b of the conic problem exactly affinely (checked on an independent "
                          "random perturbation); falling back to rebuilding with constants at every "
                          "update", stacklevel=3)
            self.construction, self.auto = "constant", False
            return
        self.timings.update({f"rhs_{k}": v for k, v in compiled.timings.items()})
        self._compiled = compiled

    def _rhs_vector(self, values: dict) -> np.ndarray:
        """The rhs vector(s) of the compiled problem for the data ``values`` (verified map)."""
        return self._compiled.rhs(values)

    # --- solve ---------------------------------------------------------------------
    def solve(self, solver: str | None = None, on_inexact: str = "raise",
              gap_tol_rel: float = GAP_TOL_REL, **solver_opts) -> OPFResult:
        """Solve and return an :class:`OPFResult` whose relaxation is certified exact.

        The SOC relaxation is exact when every cone is tight, ``ℓ_{k,t} v_{i,t} = P² + Q²``.
        After the solve the relative gap ``max |ℓ v − P² − Q²| / max (P² + Q²)`` is compared
        with ``gap_tol_rel``: an inexact optimum is not an optimum of the power-flow problem
        (its ℓ are fictitious currents that burn power), so by default (``on_inexact="raise"``)
        it raises :class:`~evsched.errors.InexactRelaxationError` naming the hours and
        branches where the cone is loose and what to try. ``on_inexact="mark"`` returns the
        result with ``exact = False`` instead (sweeps, which report such rows without
        presenting them as results). ``optimal_inaccurate`` is accepted with a warning and the
        same check. Infeasible or failed solves raise :class:`OptimisationError` naming the
        constraint family, hours and buses found by
        :func:`evsched.model.diagnose.locate_infeasibility`.
        """
        if on_inexact not in ("raise", "mark"):
            raise InputError(f"on_inexact = {on_inexact!r}: must be 'raise' or 'mark'")
        name = select_solver(solver)
        t0 = time.perf_counter()
        try:
            if self.construction == "rhs":
                c = self._compiled
                if c is None or c.solver != name or not c.accepts(self):
                    self._compile_rhs(name)
                if self.construction == "rhs":
                    c = self._compiled
                    data = c.write(self._values)
                    raw = c.chain.solve_via_data(self.problem, data, False, False, solver_opts)
                    self.problem.unpack_results(raw, c.chain, c.inv)
                else:
                    self.problem.solve(solver=name, **solver_opts)
            else:
                self.problem.solve(solver=name, **solver_opts)
        except cp.SolverError as exc:
            raise OptimisationError(f"{self.describe()}: solver {name} failed ({exc})") from exc
        wall = time.perf_counter() - t0
        status = self.problem.status
        if status not in ACCEPTED_STATUSES:
            from evsched.model.diagnose import locate_infeasibility
            detail = locate_infeasibility(self, name) if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE) else ""
            raise OptimisationError(f"{self.describe()}: solver {name} returned '{status}'. {detail}".strip())
        stats = self.problem.solver_stats
        res = build_result(self, solver=name, status=status, wall_s=wall,
                           solver_s=getattr(stats, "solve_time", None) or wall, gap_tol_rel=gap_tol_rel)
        if status == cp.OPTIMAL_INACCURATE:
            warnings.warn(f"{self.describe()}: {name} returned 'optimal_inaccurate'; "
                          f"relaxation gap {res.max_relaxation_gap_rel:.1e} (relative) checked", stacklevel=2)
        if not res.exact and on_inexact == "raise":
            raise InexactRelaxationError(f"{self.describe()}: {res.inexactness_report()}")
        return res

    def describe(self) -> str:
        groups = ", ".join(f"{g.name}[{g.n}]" for g in self.groups.values()) or "no devices"
        return (f"OPF on '{self.network.name}' ({self.network.n_bus} buses × {self.T} steps, "
                f"{groups}, V ∈ [{self.v_min_pu}, {self.v_max_pu}] p.u.)")
