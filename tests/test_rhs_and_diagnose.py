"""The rhs re-solve is exact or falls back loudly; the infeasibility diagnosis works on any model.

Every re-solve is checked against a fresh constant build on the same data (same objective to
1e-6 relative, or the same error).
"""
from __future__ import annotations

import inspect
import warnings

import cvxpy as cp
import numpy as np
import pytest

from evsched.errors import InputError, OptimisationError
from evsched.model import DeviceGroup, OPFModel, StorageGroup, rhs
from evsched.model import constraints as fam

T = 3
RHS_WARNING = "construction='rhs'"


# --- helpers ---------------------------------------------------------------------------
def outcome(model):
    """``("ok", objective)`` or ``("error", message)`` of ``model.solve()``."""
    try:
        return "ok", model.solve().objective
    except OptimisationError as exc:
        return "error", str(exc)


def assert_same(got, ref):
    assert got[0] == ref[0], (got, ref)
    if got[0] == "ok":
        assert got[1] == pytest.approx(ref[1], rel=1e-6)
    else:
        assert got[1] == ref[1]


def rhs_warnings(record):
    return [w for w in record if RHS_WARNING in str(w.message)]


def random_case(net, rng):
    """Loads and device groups of the default families on independent random data."""
    p, q = net.nominal_load()
    scale = rng.uniform(0.4, 0.8, size=(net.n_bus, T))
    pv_avail = rng.uniform(0.0, 300.0, size=(2, T))
    pv = DeviceGroup("pv", buses=[18, 33], p_min_kw=-pv_avail, p_max_kw=np.zeros((2, T)),
                     q_min_kvar=-rng.uniform(100, 300, (2, T)), q_max_kvar=rng.uniform(100, 300, (2, T)),
                     s_max_kva=rng.uniform(300, 400, (2, T)), kind="pv")
    p_ch = rng.uniform(100.0, 300.0, size=(2, T))
    e_min = np.cumsum(rng.uniform(0.0, 80.0, size=(2, T)), axis=1)
    ev = StorageGroup("ev", buses=[10, 25], p_charge_max_kw=p_ch, p_discharge_max_kw=rng.uniform(10, 50, (2, T)),
                      p_total_max_kw=p_ch, energy_min_kwh=e_min, energy_max_kwh=e_min + rng.uniform(50, 500, (2, T)),
                      energy_initial_kwh=rng.uniform(0, 20, 2), s_max_kva=p_ch * 1.2, reactive=True)
    return dict(load_p_kw=np.outer(p, np.ones(T)) * scale, load_q_kvar=np.outer(q, np.ones(T)) * scale,
                devices=[pv, ev])


def constant_reference(net, data, **kw):
    return OPFModel(net, data["load_p_kw"], data["load_q_kvar"], devices=data["devices"],
                    construction="constant", **kw)


# --- 1. default families, every construction, independent random data ------------------------
@pytest.mark.parametrize("construction", ["constant", "rhs", "auto", "parametric"])
def test_default_families_every_construction_on_random_data(ieee33, construction):
    rng = np.random.default_rng(7)
    first = random_case(ieee33, rng)
    m = OPFModel(ieee33, first["load_p_kw"], first["load_q_kvar"], devices=first["devices"],
                 v_min_pu=0.9, construction=construction)
    assert_same(outcome(m), outcome(constant_reference(ieee33, first, v_min_pu=0.9)))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):
            data = random_case(ieee33, rng)
            m.update(**data)
            assert_same(outcome(m), outcome(constant_reference(ieee33, data, v_min_pu=0.9)))
    assert not rhs_warnings(record)
    if construction in ("rhs", "auto"):
        assert m.construction == "rhs" and m._compiled is not None


def test_rhs_map_is_exact_on_an_independent_draw(ieee33):
    """The learnt map predicts the compiled b at data it has never seen, entry by entry."""
    rng = np.random.default_rng(3)
    data = random_case(ieee33, rng)
    m = OPFModel(ieee33, data["load_p_kw"], data["load_q_kvar"], devices=data["devices"], construction="rhs")
    compiled, failed = rhs.learn(m, "CLARABEL", seed=11)
    assert failed == [] and compiled.slots == ("b",)
    assert set(np.abs(compiled.M.data).round(12)) == {1.0}  # the defaults enter with ±1
    new = {k: v + rng.standard_normal(v.shape) for k, v in m._values.items()}
    b_new = rhs._compile_at(m, new, "CLARABEL")[0]["b"]
    np.testing.assert_allclose(compiled.rhs(new), b_new, rtol=0, atol=1e-9)


def test_ecos_and_mosek_formats(ieee33):
    """ECOS splits the rows into (b, h); MOSEK receives the dual, where the data enter c.
    The map covers every slot (a map on ``b`` alone would silently keep stale ``h`` / ``c``)."""
    rng = np.random.default_rng(5)
    data = random_case(ieee33, rng)
    m = OPFModel(ieee33, data["load_p_kw"], data["load_q_kvar"], devices=data["devices"],
                 v_min_pu=0.9, construction="rhs")
    m.solve(solver="ECOS")
    assert m._compiled.slots == ("b", "h")
    new = random_case(ieee33, rng)
    m.update(**new)
    got = m.solve(solver="ECOS").objective
    ref = constant_reference(ieee33, new, v_min_pu=0.9).solve(solver="ECOS").objective
    assert got == pytest.approx(ref, rel=1e-6)
    if "MOSEK" in cp.installed_solvers():  # compiling needs no licence
        compiled, failed = rhs.learn(m, "MOSEK")
        assert failed == [] and compiled.slots == ("c",)
        vals = {k: v + rng.standard_normal(v.shape) for k, v in m._values.items()}
        np.testing.assert_allclose(compiled.rhs(vals), rhs._compile_at(m, vals, "MOSEK")[0]["c"], atol=1e-9)


# --- custom families: coefficient 2 and a nonlinear transform -----------------------------------
def storage_case(net):
    """Heavy load in hour 0, an EV station that must take 1.2 MWh by the end of hour 2: a cap
    on the head branch current in hour 1 moves the charging and changes the optimum."""
    p, q = net.nominal_load()
    shape = np.array([1.0, 0.5, 0.5])
    st = StorageGroup("ev", buses=[18], p_charge_max_kw=900.0, p_discharge_max_kw=0.0,
                      energy_min_kwh=[[0.0, 0.0, 1200.0]], energy_max_kwh=[[1e4, 1e4, 1e4]])
    return np.outer(p, shape), np.outer(q, shape), [st]


def head_current(net):
    P, Q, devs = storage_case(net)
    free = OPFModel(net, P, Q, devices=devs, v_min_pu=0.85, construction="constant").solve()
    ell = (free.branches.p_kw ** 2 + free.branches.q_kvar ** 2).to_numpy().reshape(T, -1).T / 1000.0 ** 2
    return ell[0] / free.voltages.query("bus == 1").v_pu.to_numpy() ** 2  # ℓ₀,t at v₀ [p.u.]


def cap_coefficient_two(m):
    r"""ℓ_{0,t} ≤ 2·cap_t on the head branch (the data enter b with coefficient 2)."""
    return [m.l[0] <= 2 * m.data("cap")]


def cap_squared(m):
    r"""ℓ_{0,t} ≤ cap_t² (a current limit written on the rating: b is not affine in the data)."""
    return [m.l[0] <= m.data("cap") ** 2]


def custom_model(net, family, cap, construction):
    P, Q, devs = storage_case(net)
    families = {**fam.FAMILIES, "head_current": family}
    return OPFModel(net, P, Q, devices=devs, v_min_pu=0.85, construction=construction,
                    families=families, extra_data={"cap": cap})


def caps(net, to_cap):
    """Loose, binding (different optimum) and infeasible caps, mapped by ``to_cap`` from a bound on ℓ₀."""
    ell = head_current(net)
    loose = np.full(T, 1e3)
    binding = loose.copy()
    binding[1] = 0.8 * ell[1]
    infeasible = loose.copy()
    infeasible[1] = 0.3 * ell[1]
    return [to_cap(x) for x in (loose, binding, infeasible)]


@pytest.mark.parametrize("construction", ["rhs", "auto"])
def test_custom_family_with_coefficient_two_resolves_exactly(ieee33, construction):
    loose, binding, infeasible = caps(ieee33, lambda ell: ell / 2)
    m = custom_model(ieee33, cap_coefficient_two, loose, construction)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first = outcome(m)
        objectives = [first[1]]
        for cap in (binding, infeasible, binding):
            m.update(extra_data={"cap": cap})
            got = outcome(m)
            assert_same(got, outcome(custom_model(ieee33, cap_coefficient_two, cap, "constant")))
            objectives.append(got[1])
    assert not rhs_warnings(record)  # coefficient 2 is verified exact: no fallback
    assert m.construction == "rhs"
    assert np.isclose(np.abs(m._compiled.M.data), 2.0).sum() == T
    assert objectives[1] > objectives[0] * (1 + 1e-4)  # the binding cap changed the optimum
    assert "infeasible" in objectives[2]


@pytest.mark.parametrize("construction", ["rhs", "auto"])
def test_nonlinear_transform_falls_back_with_one_warning(ieee33, construction):
    loose, binding, infeasible = caps(ieee33, np.sqrt)
    m = custom_model(ieee33, cap_squared, loose, construction)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert_same(outcome(m), outcome(custom_model(ieee33, cap_squared, loose, "constant")))
        for cap in (binding, infeasible, binding):
            m.update(extra_data={"cap": cap})
            assert_same(outcome(m), outcome(custom_model(ieee33, cap_squared, cap, "constant")))
    found = rhs_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]
    assert "['cap']" in str(found[0].message)  # only the failing array is named
    assert m.construction == "constant"


def test_extra_data_checks(ieee33):
    P, Q, _ = storage_case(ieee33)
    with pytest.raises(InputError, match=r"extra_data: name\(s\) \['load_p'\]"):
        OPFModel(ieee33, P, Q, extra_data={"load_p": np.zeros(T)})
    with pytest.raises(InputError, match=r"extra_data\['cap'\]: entry \[1\] is not finite"):
        OPFModel(ieee33, P, Q, extra_data={"cap": [1.0, np.nan, 1.0]})


def test_reshaped_extra_data_rebuilds(ieee33):
    """Data outside the verified structure (another shape) rebuild and learn the map again."""
    def cap_all(m):
        return [m.l[: m.data("cap").shape[0]] <= m.data("cap")]

    P, Q, devs = storage_case(ieee33)
    kw = dict(devices=devs, v_min_pu=0.85, families={**fam.FAMILIES, "cap": cap_all})
    m = OPFModel(ieee33, P, Q, construction="rhs", extra_data={"cap": np.full((1, T), 1e3)}, **kw)
    m.solve()
    first = m._compiled
    cap = np.full((2, T), 1e3)
    cap[1, 0] = 0.01
    m.update(extra_data={"cap": cap})
    assert m._compiled is None
    got = outcome(m)
    assert m._compiled is not None and m._compiled is not first
    assert_same(got, outcome(OPFModel(ieee33, P, Q, construction="constant", extra_data={"cap": cap}, **kw)))


# --- structure beyond the data: efficiencies, plugged-in pairs, steps ------------------------------
def ev_group(eta=0.95, p_ch=((300.0, 300.0, 0.0),)):
    return StorageGroup("ev", buses=[18], p_charge_max_kw=np.array(p_ch), p_discharge_max_kw=0.0,
                        energy_min_kwh=[[0.0, 250.0, 250.0]], energy_max_kwh=[[1e3, 1e3, 1e3]],
                        eta_charge=eta)


@pytest.mark.parametrize("new", [ev_group(eta=0.7), ev_group(p_ch=((0.0, 300.0, 300.0),))],
                         ids=["efficiency", "plugged-in-pairs"])
def test_update_outside_the_matrices_rebuilds(ieee33, new):
    """η enters A and the plugged-in pairs decide the variables: same data shapes, other A."""
    p, q = ieee33.nominal_load()
    P, Q = np.outer(p, [1.0, 0.6, 0.6]), np.outer(q, [1.0, 0.6, 0.6])
    for construction in ("rhs", "parametric"):
        m = OPFModel(ieee33, P, Q, devices=[ev_group()], v_min_pu=0.85, construction=construction)
        m.solve()
        m.update(devices=[new])
        ref = OPFModel(ieee33, P, Q, devices=[new], v_min_pu=0.85, construction="constant")
        assert_same(outcome(m), outcome(ref))


def test_update_rejects_other_steps_before_changing_anything(ieee33):
    p, q = ieee33.nominal_load()
    P, Q = np.outer(p, np.ones(T)), np.outer(q, np.ones(T))
    m = OPFModel(ieee33, P, Q, devices=[ev_group()], v_min_pu=0.85, construction="rhs")
    short = StorageGroup("ev", buses=[18], p_charge_max_kw=300.0, p_discharge_max_kw=0.0,
                         energy_min_kwh=[[0.0, 1.0]], energy_max_kwh=[[1e3, 1e3]])
    with pytest.raises(InputError, match="'ev' has 2 steps, the loads have 3"):
        m.update(load_p_kw=0.5 * P, devices=[short])
    assert np.array_equal(m.load_p_kw, P)


# --- clone -----------------------------------------------------------------------------------------
def test_clone_copies_every_constructor_argument(ieee33):
    P, Q, devs = storage_case(ieee33)
    families = {**fam.FAMILIES, "head_current": cap_coefficient_two}
    m = OPFModel(ieee33, P, Q, devices=devs, v_min_pu=0.85, v_max_pu=1.08, v_slack_pu=1.02, dt_h=0.5,
                 hours=[10, 11, 12], construction="rhs", families=families,
                 count_converter_losses=False, extra_data={"cap": np.full(T, 70.0)})
    m.update(load_p_kw=0.9 * P)
    c = m.clone()
    assert c is not m and c.construction == "rhs" and c.families == m.families
    for attr in ("v_min_pu", "v_max_pu", "v_slack_pu", "dt_h", "count_converter_losses"):
        assert getattr(c, attr) == getattr(m, attr), attr
    assert list(c.hours) == [10, 11, 12] and list(c.groups) == ["ev"]
    np.testing.assert_array_equal(c.load_p_kw, 0.9 * P)
    np.testing.assert_array_equal(c.extra_data["cap"], 70.0)
    assert c.solve().objective == pytest.approx(m.solve().objective, rel=1e-6)
    assert m.clone(v_min_pu=0.8).v_min_pu == 0.8
    with pytest.raises(TypeError, match="unknown constructor argument"):
        m.clone(v_mni_pu=0.8)
    assert set(inspect.signature(OPFModel.__init__).parameters) - {"self"} >= {"extra_data", "families"}


# --- 2. diagnosis with custom families -------------------------------------------------------------
def elastic_line_current(m, slacks):
    r"""Elastic form: ℓ_{k,t} ≤ cap_{k,t} + σ_{k,t}, σ ≥ 0."""
    return [fam.relax_upper(slacks, "line_current (ℓ ≤ cap)", fam.branch_labels(m), "branch",
                            m.l, m.data("cap"))]


@fam.elastic_form(elastic_line_current)
def line_current(m):
    r"""ℓ_{k,t} ≤ cap_{k,t} on every branch [p.u.²]."""
    return [m.l <= m.data("cap")]


def hard_line_current(m):
    return [m.l <= m.data("cap")]


def two_hour_loads(net):
    p, q = net.nominal_load()
    return np.c_[0.5 * p, 0.5 * p], np.c_[0.5 * q, 0.5 * q]


def tight_head_cap(net, hour=1):
    cap = np.full((net.n_branch, 2), 1e3)
    cap[0, hour] = 0.5  # ℓ on branch 1-2 is ≈ 4.9 p.u. at half load
    return cap


@pytest.mark.parametrize("construction", ["constant", "rhs", "parametric"])
def test_custom_elastic_family_is_named_with_hours_and_branches(ieee33, construction):
    P, Q = two_hour_loads(ieee33)
    m = OPFModel(ieee33, P, Q, v_min_pu=0.9, construction=construction,
                 families={**fam.FAMILIES, "line_current": line_current},
                 extra_data={"cap": tight_head_cap(ieee33)})
    with pytest.raises(OptimisationError) as err:
        m.solve()
    msg = str(err.value)
    assert "line_current (ℓ ≤ cap) binds at hour(s) [1] for 1 branch(s), worst first ['1-2']" in msg
    assert "at branch 1-2, hour 1" in msg and "voltage_limits" not in msg


def test_custom_family_without_elastic_form_stays_hard(ieee33):
    P, Q = two_hour_loads(ieee33)
    families = {**fam.FAMILIES, "hard_line_current": hard_line_current}
    # infeasible because of the hard custom family: named among the inconsistent hard families
    m = OPFModel(ieee33, P, Q, v_min_pu=0.9, families=families, extra_data={"cap": tight_head_cap(ieee33)})
    with pytest.raises(OptimisationError, match=r"Infeasible even with \['storage_energy', 'voltage_limits'\] "
                                                r"relaxed: the hard families \[.*'hard_line_current'\]"):
        m.solve()
    # infeasible because of the voltage band: the hard custom family does not get in the way
    p, q = ieee33.nominal_load()
    m = OPFModel(ieee33, np.c_[0.5 * p, 1.6 * p], np.c_[0.5 * q, 1.6 * q], v_min_pu=0.95,
                 families=families, extra_data={"cap": np.full((ieee33.n_branch, 2), 1e3)})
    with pytest.raises(OptimisationError, match=r"voltage_limits \(lower.*hour\(s\) \[1\].*worst first \['18'"):
        m.solve()


def test_replaced_default_family_is_not_relaxed_by_name(ieee33):
    """A custom family registered under a default name keeps no elastic form it did not declare."""
    def voltage_limits(m):  # a tighter band, same name
        return [m.v[m.nonslack] >= 0.99 ** 2]

    m = OPFModel(ieee33, *two_hour_loads(ieee33), families={**fam.FAMILIES, "voltage_limits": voltage_limits})
    assert fam.elastic_of("voltage_limits", voltage_limits) is None
    with pytest.raises(OptimisationError, match=r"hard families \[.*'voltage_limits'"):
        m.solve()


def test_diagnosis_with_label_hours(ieee33):
    p, q = ieee33.nominal_load()
    m = OPFModel(ieee33, np.c_[0.5 * p, 1.6 * p], np.c_[0.5 * q, 1.6 * q], v_min_pu=0.95,
                 hours=["08:00", "09:00"])
    with pytest.raises(OptimisationError, match=r"hour\(s\) \['09:00'\].*at bus 18, hour 09:00"):
        m.solve()
