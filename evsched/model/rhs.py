"""``construction="rhs"``: re-solve by rewriting the data-dependent vector of the compiled problem.

cvxpy compiles the model into a conic problem (``problem.get_problem_data``)

.. math::
    \\min_x\\; c^\\top x + d \\quad \\text{s.t.}\\quad A x + s = b,\\; s \\in \\mathcal K

(ECOS splits the cone rows into ``A x = b``, ``G x + s = h``; MOSEK receives the *dual*, in
which the primal ``b`` becomes the cost vector ``c``). Let ``δ ∈ ℝⁿ`` be every entry of every
data array of the model (:meth:`OPFModel._values`, concatenated by :func:`data_vector`) and
``y(δ)`` the solver-format vectors the primal ``b`` lands in (:func:`rhs_slots`: ``b``; ``b, h``
for ECOS; ``c`` for a dualised MOSEK problem). A re-solve may rewrite ``y`` alone iff

.. math::
    A(δ) = A,\\quad c(δ) = c,\\quad d(δ) = d,\\quad P(δ) = P,\\quad \\mathcal K(δ) = \\mathcal K,
    \\qquad y(δ) = y(δ_0) + M\\,(δ - δ_0)

for a fixed sparse ``M`` (``c, d`` the primal cost and offset, read from cvxpy's
``param_prob``; every other entry of the solver data must not change either).

**Learning** (two compiles). Every row ``r`` of ``y`` is assumed to depend on at most one
entry ``j_r`` with a coefficient ``a_r`` (any real, not only ±1: a family written on
``2·cap`` gives ``a_r = 2``):

* ``δ = δ_0 + 𝟙``: :math:`y_r(δ) - y_r(δ_0) = a_r`;
* ``δ = δ_0 + ι``, ``ι_j = j + 1``: :math:`y_r(δ) - y_r(δ_0) = a_r (j_r + 1)`,

so :math:`j_r + 1` is the ratio of the two differences, which must be an integer in
``1..n``; ``M[r, j_r] = a_r``. A row that mixes several entries or is not affine gives a
non-integer ratio (row left out of ``M``) or a wrong ``j_r``; either is caught below.

**Verification** (one more compile, on an independent perturbation). A seeded draw
:math:`ξ_j \\sim \\mathcal N(0, (1 + |δ_{0,j}|)^2)`, every entry at once, must give
:math:`y(δ_0 + ξ) - y(δ_0) = M ξ` in *every* row (relative tolerance 1e-9), and ``A``, ``c``,
``d``, ``P``, the cones and every other solver datum unchanged at all three perturbed points.
If the true map is affine with a matrix ``L ≠ M`` then :math:`(L - M) ξ = 0` only on a
proper subspace, which a continuous draw hits with probability zero; if it is not affine
(e.g. the data squared, :math:`(δ+ξ)^2 - δ^2 = 2δξ + ξ^2`), the residual is a non-zero
analytic function of ξ, zero only on a null set. A pass therefore shows that each entry ``j``
enters exactly the rows ``M[:, j] ≠ 0`` with exactly those coefficients. (Learning from one
structured perturbation and checking on that same perturbation, as before, proves nothing:
coefficient 2 on entry ``j`` reads as coefficient 1 on entry ``2j + 1`` and passes.)

**Failure.** Each data array is then perturbed alone (a fresh random draw, one compile each,
only on this path) and checked the same way; the arrays that fail are named in the
caller's single warning, and the model falls back to rebuilding with constants.

The verified map holds for the *structure* it was learnt on: the data names and shapes and
everything else ``A``, ``c`` and the cones are built from (:func:`fingerprint`: e.g. the
storage efficiencies, the plugged-in pairs). New data of another structure must rebuild
and learn again (:meth:`RhsMap.accepts`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from evsched.errors import InputError

SEED = 20240611
"""Seed of the verification draw (fixed: a model compiles the same way every run)."""
RTOL = 1e-9
"""Relative tolerance of the verification: |y(δ₀+ξ) − y(δ₀) − Mξ| ≤ RTOL·(1 + |y|) per row."""


# --- data arrays ------------------------------------------------------------------------
def data_vector(values: dict) -> np.ndarray:
    """All data entries as one vector δ: arrays in sorted-name order, each flattened in F order."""
    return np.concatenate([np.asarray(values[k], dtype=float).ravel(order="F") for k in sorted(values)])


def structure(values: dict) -> dict:
    """The structure a map is valid for: ``{name: shape}`` of every data array."""
    return {k: np.shape(values[k]) for k in sorted(values)}


DATA_FIELDS = frozenset({"p_min_kw", "p_max_kw", "q_min_kvar", "q_max_kvar", "s_max_kva",
                         "p_charge_max_kw", "p_discharge_max_kw", "p_total_max_kw",
                         "energy_min_kwh", "energy_max_kwh", "energy_initial_kwh"})
"""Device-group fields whose values reach the problem only through the model's data arrays.
Every other field (efficiencies, energy cost, buses, flags, any field added later) may enter
``A`` or ``c`` and is part of the :func:`fingerprint`."""


def _digest(v):
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype == object:
        return repr(v)
    return (a.shape, a.dtype.str, a.tobytes())


def fingerprint(model) -> tuple:
    """Everything a compiled problem's ``A``, ``c`` and cones may depend on besides the data.

    The :func:`structure` of the data arrays, and per device group its type, every field not
    in :data:`DATA_FIELDS` by value (e.g. the efficiencies η, which enter ``A``), the data
    fields by presence and shape only, and, where the group defines them, the (device, step)
    pairs that carry variables (``active_mask()``, which depends on the data values). A new
    group with the same fingerprint compiles to the same ``A``, ``c``, cones; any other needs a
    rebuild.
    """
    groups = []
    for name, g in model.groups.items():
        items = [("type", type(g).__name__)]
        for f in dataclasses.fields(g):
            v = getattr(g, f.name)
            items.append((f.name, ("data", v is None, np.shape(v)) if f.name in DATA_FIELDS else _digest(v)))
        for derived in ("active_mask", "has_reactive"):
            v = getattr(g, derived, None)
            if v is not None:
                items.append((derived, _digest(v() if callable(v) else v)))
        groups.append((name, tuple(items)))
    return tuple(structure(model._values).items()), tuple(groups)


def perturbed(values: dict, delta: np.ndarray) -> dict:
    """``values`` + ``delta`` (a vector in :func:`data_vector` order), as arrays of the same shapes."""
    out, off = {}, 0
    for k in sorted(values):
        a = np.asarray(values[k], dtype=float)
        out[k] = a + delta[off:off + a.size].reshape(a.shape, order="F")
        off += a.size
    return out


def columns(values: dict) -> dict:
    """``{name: slice}``: the columns of δ (and of ``M``) holding each array."""
    out, off = {}, 0
    for k in sorted(values):
        n = int(np.size(values[k]))
        out[k] = slice(off, off + n)
        off += n
    return out


def extra_data_arrays(extra) -> dict[str, np.ndarray]:
    """Validate the ``extra_data`` of :class:`OPFModel`: ``{name: finite float array}`` (copies)."""
    out = {}
    for k, v in dict(extra or {}).items():
        a = np.array(v, dtype=float)
        if not np.isfinite(a).all():
            raise InputError(f"extra_data['{k}']: entry {np.argwhere(~np.isfinite(a))[0].tolist()} "
                             "is not finite")
        out[str(k)] = a
    return out


def with_extra_data(values: dict, extra: dict) -> dict:
    """``values`` (the model's own data arrays) merged with the custom ``extra`` arrays.

    A custom family reads its array with ``m.data(name)`` like any other, so it is a
    Parameter in the parametric build and part of δ in the rhs build. Names must not clash.
    """
    clash = sorted(set(values) & set(extra))
    if clash:
        raise InputError(f"extra_data: name(s) {clash} are already data arrays of the model; rename them")
    return {**values, **extra}


# --- solver data --------------------------------------------------------------------------
def rhs_slots(data: dict) -> tuple[str, ...]:
    """Keys of the solver data that hold the primal right-hand side (see module docstring)."""
    if data.get("dualized"):
        return ("c",)
    return tuple(k for k in ("b", "h") if k in data)


def _stack(data: dict, slots) -> np.ndarray:
    return np.concatenate([np.asarray(data[k], dtype=float).ravel() for k in slots])


def _same(a, b) -> bool:
    """Exact equality of two solver-data items (sparse, dense, cone dims, lists, scalars)."""
    if a is None or b is None:
        return a is None and b is None
    if sp.issparse(a) or sp.issparse(b):
        return (sp.issparse(a) and sp.issparse(b) and a.shape == b.shape
                and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dict__") and type(a) is type(b):
        return _same(vars(a), vars(b))
    return bool(a == b)


def _primal_cost(data: dict):
    """Primal cost vector ``c`` and offset ``d`` of the canonical problem (``param_prob``)."""
    pp = data.get("param_prob")
    if pp is None:
        return None
    c, d, _, _ = pp.apply_parameters()
    return np.asarray(c, dtype=float), float(d)


def same_structure(d0: dict, d1: dict) -> bool:
    """Everything but the rhs slots identical, including the primal cost vector and offset."""
    slots = set(rhs_slots(d0))
    if set(d0) != set(d1) or rhs_slots(d1) != rhs_slots(d0):
        return False
    for k, v in d0.items():
        if k not in slots and k != "param_prob" and not _same(v, d1[k]):
            return False
    c0, c1 = _primal_cost(d0), _primal_cost(d1)
    return c0 is None or (c1 is not None and np.array_equal(c0[0], c1[0]) and c0[1] == c1[1])


# --- the map --------------------------------------------------------------------------
@dataclass
class RhsMap:
    """A compiled problem and its verified data → rhs map ``y(δ) = y₀ + M (δ − δ₀)``."""

    solver: str
    key: tuple
    slots: tuple
    x0: np.ndarray
    y0: np.ndarray
    M: sp.csr_matrix
    data: dict
    chain: object
    inv: object
    timings: dict = field(default_factory=dict)

    def accepts(self, model) -> bool:
        """True if ``model`` (its data and device groups) has the :func:`fingerprint` the map
        was verified on."""
        return fingerprint(model) == self.key

    def rhs(self, values: dict) -> np.ndarray:
        """``y`` for the data ``values`` (same names and shapes as when learnt)."""
        if tuple(structure(values).items()) != self.key[0]:
            raise ValueError("rhs map: the data changed structure; rebuild and learn the map again")
        return self.y0 + self.M @ (data_vector(values) - self.x0)

    def write(self, values: dict) -> dict:
        """Write ``y(values)`` into the stored solver data and return the data."""
        y, off = self.rhs(values), 0
        for k in self.slots:
            n = np.size(self.data[k])
            self.data[k] = y[off:off + n].reshape(np.shape(self.data[k])).copy()
            off += n
        return self.data


def _compile_at(model, values: dict, solver: str):
    """Build ``model`` on ``values`` and compile it; the model's own data are restored."""
    saved = model._values
    model._values = values
    try:
        model._build()
        return model.problem.get_problem_data(solver, solver_opts={})
    finally:
        model._values = saved


def _data_at(model, values: dict, solver: str):
    """Solver data of ``model`` built on ``values``, or None if the build or compile raises."""
    try:
        return _compile_at(model, values, solver)[0]
    except Exception:  # a custom family may reject perturbed data (e.g. a DCP sign rule)
        return None


def _rhs_of(ref: dict, data: dict | None):
    """``y`` of ``data``, or None if ``data`` is missing or differs from ``ref`` beyond the rhs."""
    if data is None or not same_structure(ref, data):
        return None
    return _stack(data, rhs_slots(data))


def _decode(y0: np.ndarray, y1: np.ndarray, yi: np.ndarray, n: int) -> sp.csr_matrix:
    """``M`` from the differences at δ₀ + 𝟙 (``y1``) and δ₀ + ι (``yi``) (module docstring)."""
    d1, di = y1 - y0, yi - y0
    tol = RTOL * (1.0 + np.abs(y0) + np.abs(y1))  # rounding of d1
    live = np.flatnonzero(np.abs(d1) > tol)
    ratio = di[live] / d1[live]
    j1 = np.rint(ratio)
    ok = (np.abs(ratio - j1) <= 1e-6) & (j1 >= 1) & (j1 <= n)
    rows, j1 = live[ok], j1[ok]
    # least-squares coefficient from both differences: a = (d1·1 + di·(j+1)) / (1 + (j+1)²)
    a = (d1[rows] + di[rows] * j1) / (1.0 + j1 ** 2)
    return sp.csr_matrix((a, (rows, j1.astype(int) - 1)), shape=(y0.size, n))


def _agrees(y0: np.ndarray, y: np.ndarray | None, M, xi: np.ndarray) -> bool:
    if y is None or y.shape != y0.shape:
        return False
    return bool(np.all(np.abs((y - y0) - M @ xi) <= RTOL * (1.0 + np.abs(y0) + np.abs(y))))


def learn(model, solver: str, seed: int = SEED) -> tuple[RhsMap | None, list[str]]:
    """Learn and verify the rhs map of ``model`` at its current data (module docstring).

    Four compiles: δ₀ + 𝟙 and δ₀ + ι (learning), δ₀ + ξ (verification), then δ₀ itself, the
    problem that is kept. Returns ``(map, [])`` or ``(None, names of the data arrays that
    failed)``; either way the model is left built on its own data.
    """
    base = model._values
    x0 = data_vector(base)
    n = x0.size
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal(n) * (1.0 + np.abs(x0))
    times = {}
    t0 = time.perf_counter()
    d_one = _data_at(model, perturbed(base, np.ones(n)), solver)
    d_idx = _data_at(model, perturbed(base, np.arange(1.0, n + 1.0)), solver)
    times["learn_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    d_ver = _data_at(model, perturbed(base, xi), solver)
    times["verify_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    data, chain, inv = _compile_at(model, base, solver)  # kept: model.problem is this build
    times["compile_s"] = time.perf_counter() - t0
    slots = rhs_slots(data)
    y0 = _stack(data, slots)
    y1, yi = _rhs_of(data, d_one), _rhs_of(data, d_idx)
    M = _decode(y0, y1, yi, n) if y1 is not None and yi is not None else None
    if M is not None and _agrees(y0, _rhs_of(data, d_ver), M, xi):
        return RhsMap(solver=solver, key=fingerprint(model), slots=slots, x0=x0, y0=y0, M=M,
                      data=data, chain=chain, inv=inv, timings=times), []
    # attribution: each array alone, on a fresh draw (only on this path)
    M0 = M if M is not None else sp.csr_matrix((y0.size, n))
    failed = []
    for k, cols in columns(base).items():
        xi_k = np.zeros(n)
        xi_k[cols] = rng.standard_normal(cols.stop - cols.start) * (1.0 + np.abs(x0[cols]))
        if not _agrees(y0, _rhs_of(data, _data_at(model, perturbed(base, xi_k), solver)), M0, xi_k):
            failed.append(k)
    model._build()  # back on the model's own data
    return None, failed or sorted(base)  # only jointly wrong: name them all
