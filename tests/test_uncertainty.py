"""The uncertainty study (evsched.uncertainty): deviation sampler, AC power flow, execution,
the four policies on a small case, their ordering and the targets at 10 % no-shows.

Tolerances: sampled frequencies within 4 binomial standard deviations; AC power flow vs
pandapower 1e-8 p.u. and 1e-6 relative loss; an optimum's AC check 1e-4 p.u. (the study's
certification tolerance); losses compared to 1e-6 kWh.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import truncnorm

from evsched import forecast, scenarios
from evsched.case import build_case, load_case
from evsched.errors import InputError
from evsched.sessions import stay_hours
from evsched.uncertainty import montecarlo as mc
from evsched.uncertainty import policies as pol
from evsched.uncertainty.acflow import RadialPowerFlow
from evsched.uncertainty.deviations import (
    DeviationModel,
    draw_sample,
    draw_samples,
    forecast_errors,
    nominal_sample,
)
from evsched.uncertainty.execution import day_metrics, execute
from evsched.uncertainty.params import check_params

N_EVS = 40


@pytest.fixture(scope="module")
def small():
    cd = build_case(load_case(n_evs=N_EVS))
    return cd, forecast_errors(cd)


@pytest.fixture(scope="module")
def study(small):
    """The whole study on the small case: 6 samples at 10 % no-shows, the sweep at 0 and 10 %."""
    cd, errors = small
    mc._ENGINES.clear()
    return mc.run_study(cd, errors, DeviationModel(no_show_prob=0.1), n_samples=6, n_samples_sweep=3,
                        rates=(0.0, 0.1), robust_scenarios=30, n_workers=1)


# --------------------------------------------------------------------------- the deviation model
@pytest.mark.parametrize("kw, message", [
    ({"no_show_prob": 1.2}, r"'no_show_prob' = 1.2: must be in \[0.0, 0.9\]"),
    ({"no_show_prob": True}, r"'no_show_prob' = True: must be a number"),
    ({"arrival_delay_pmf": [0.5, 0.4]}, r"'arrival_delay_pmf' = \[0.5, 0.4\]: the probabilities sum to 0.9"),
    ({"arrival_delay_pmf": [1.2, -0.2]}, r"every entry must be a probability in \[0, 1\]"),
    ({"departure_shift_pmf": [0.5, 0.5]}, r"'departure_shift_pmf' = \[0.5, 0.5\]: must be an odd number"),
    ({"energy_request_sd": 0.8}, r"'energy_request_sd' = 0.8: must be in \[0.0, 0.5\]"),
    ({"forecast_error": "perfect"}, r"'forecast_error' = 'perfect': must be one of"),
    ({"forecast_error_scale": 4}, r"'forecast_error_scale' = 4: must be in \[0.0, 3.0\]"),
    ({"seed": -1}, r"'seed' = -1: must be an integer in 0..4294967295"),
])
def test_knobs_are_validated(kw, message):
    with pytest.raises(InputError, match=message):
        DeviationModel(**kw)


def test_notebook_parameters_are_validated():
    assert check_params()["model"] == DeviationModel()
    with pytest.raises(InputError, match=r"'n_workers' = 0: must be an integer in 1..64"):
        check_params(n_workers=0)
    with pytest.raises(InputError, match=r"'no_show_sweep' = 1.5: must be in \[0.0, 0.9\]"):
        check_params(no_show_sweep=[0.0, 1.5])
    with pytest.raises(InputError, match=r"'uncertainty_seed' = -3"):
        check_params(uncertainty_seed=-3)
    with pytest.raises(InputError, match=r"unknown"):
        check_params(n_sample=3)


def test_samples_are_reproducible(small):
    cd, errors = small
    m = DeviationModel()
    a = draw_samples(m, cd.reservations, errors, range(5))
    b = draw_samples(m, cd.reservations, errors, [4, 2])  # sample i does not depend on the others
    for x, y in ((a[4], b[0]), (a[2], b[1])):
        pd.testing.assert_frame_equal(x.actual, y.actual)
        assert np.array_equal(x.load_p_kw, y.load_p_kw) and x.day_label == y.day_label
    other = draw_sample(m.with_(seed=m.seed + 1), cd.reservations, errors, 4)
    assert not np.array_equal(other.show, a[4].show) or not np.array_equal(other.arrival_delay_h, a[4].arrival_delay_h)


def test_distributions_as_specified(small):
    cd, errors = small
    m = DeviationModel(no_show_prob=0.2, energy_request_sd=0.2)
    ss = draw_samples(m, cd.reservations, errors, range(300))
    n = N_EVS * len(ss)
    show = np.concatenate([s.show for s in ss])
    assert abs((~show).mean() - 0.2) <= 4 * np.sqrt(0.2 * 0.8 / n)
    for key, support, pmf in (("arrival_delay_h", m.arrival_delays_h, m.arrival_delay_pmf),
                              ("departure_shift_h", m.departure_shifts_h, m.departure_shift_pmf)):
        v = np.concatenate([getattr(s, key) for s in ss])
        for x, p in zip(support, pmf):
            assert abs((v == x).mean() - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12, (key, x)
    eps = np.concatenate([s.energy_factor for s in ss]) - 1
    assert np.abs(eps).max() <= 2 * 0.2 + 1e-12 and abs(eps.mean()) < 4 * 0.2 / np.sqrt(n)
    assert eps.std() == pytest.approx(0.2 * truncnorm.std(-2, 2), rel=0.05)
    days = pd.Series([s.day_label for s in ss]).nunique()
    assert days > errors.n_days / 2  # every backtest day can be drawn


def test_no_show_rates_share_their_samples(small):
    cd, errors = small
    lo = draw_sample(DeviationModel(no_show_prob=0.1), cd.reservations, errors, 7)
    hi = draw_sample(DeviationModel(no_show_prob=0.3), cd.reservations, errors, 7)
    assert np.all(hi.show <= lo.show)  # the EVs that still come at 30 % came at 10 %
    assert np.array_equal(lo.arrival_delay_h, hi.arrival_delay_h) and lo.day_label == hi.day_label


def test_realised_reservations_follow_the_rules(small):
    from evsched.reservations import validate_reservations
    cd, errors = small
    r = cd.reservations.reset_index(drop=True)
    a, e = r.arrival_hour.to_numpy(float), r.arrival_hour.to_numpy(float) + stay_hours(r)
    for s in draw_samples(DeviationModel(no_show_prob=0.0, arrival_delay_pmf=[0.2] * 5,
                                         departure_shift_pmf=[0.2] * 5), r, errors, range(20)):
        act = s.actual.drop(columns="show")
        validate_reservations(act, cd.network, cd.case.station_buses)  # raises on any broken rule
        a2, e2 = act.arrival_hour.to_numpy(float), act.arrival_hour.to_numpy(float) + stay_hours(act)
        assert np.all(a2 >= a) and np.all(a2 <= 23) and np.all(e2 - a2 >= np.minimum(1, e - a) - 1e-9)
        assert np.all(e2[e <= 24] <= 24) and np.all(e2 - a2 < 24)
        assert np.all(s.obligation_kwh <= s.request_kwh + 1e-9)
        assert np.allclose(s.unreachable_kwh, s.request_kwh - s.obligation_kwh)


def test_forecast_errors_come_from_the_real_data(small):
    cd, errors = small
    p, q, pv, _, _ = errors.day("none")
    assert np.allclose(p, cd.load_p_kw) and np.allclose(q, cd.load_q_kvar) and np.allclose(pv, cd.pv_avail_kw)
    p, *_ = errors.day("actual")
    actual = forecast.actual_day(errors.target_day)["feeder"]["p_kw"].to_numpy()
    assert np.allclose(p.sum(axis=0), actual, rtol=1e-9)
    bt = forecast.backtest(errors.target_day, days=errors.n_days, models=(errors.model,))
    fc_days = (errors.class_actual_days - errors.class_residual) @ errors.p_coef.sum(axis=0)
    assert np.allclose(fc_days.ravel(), bt["forecast_kw"].to_numpy(), rtol=1e-9)


# --------------------------------------------------------------------------- AC power flow, execution
def test_ac_flow_matches_pandapower(small):
    from evsched.powerflow import run_ac_powerflow
    cd, _ = small
    rng = np.random.default_rng(1)
    p = cd.load_p_kw[:, :6] * rng.uniform(0.5, 1.6, (cd.network.n_bus, 6)) - 300 * (rng.random((cd.network.n_bus, 6)) < 0.1)
    q = cd.load_q_kvar[:, :6] * rng.uniform(0.5, 1.6, (cd.network.n_bus, 6))
    mine = RadialPowerFlow(cd.network, 1.02).run(p, q)
    ref = run_ac_powerflow(cd.network, p, q, v_slack_pu=1.02)
    v = ref.voltages.pivot(index="bus", columns="hour", values="v_pu").loc[cd.network.bus_ids].to_numpy()
    assert np.abs(v - mine.v_pu).max() < 1e-8
    assert mine.loss_kwh == pytest.approx(ref.loss_kwh, rel=1e-6)


def test_day_ahead_plan_executes_exactly_on_the_reserved_day(small):
    cd, errors = small
    plan = pol.day_ahead_plan(cd)
    s3 = scenarios.build_s3(cd)
    nom = nominal_sample(cd, errors, "none")
    ev, ren = plan.execute(cd, nom)
    assert np.abs(ev.p_charge_kw - plan.ev_charge_kw).max() < 1e-9
    met, _ = day_metrics(cd, nom, ev, ren, RadialPowerFlow(cd.network, cd.case.v_slack_pu))
    assert met["loss_kwh"] == pytest.approx(s3.ac.loss_kwh, rel=1e-6)
    assert met["reservations_broken"] == 0 and met["voltage_violations"] == 0


def test_late_arrival_loses_the_planned_hours_and_the_guard_restores_them(small):
    cd, errors = small
    plan = pol.day_ahead_plan(cd)
    s = draw_sample(DeviationModel(no_show_prob=0.0, arrival_delay_pmf=[0, 0, 1.0], departure_shift_pmf=[1.0],
                                   energy_request_sd=0.0, forecast_error="none"), cd.reservations, errors, 0)
    F_plan = plan.ev_charge_kw
    ev = execute(s.actual, s.show, s.obligation_kwh, F_plan, plan.ev_discharge_kw)
    a = cd.reservations.arrival_hour.to_numpy(int)
    a2 = s.actual.arrival_hour.to_numpy(float).astype(int)
    for i in np.flatnonzero(a2 > a):
        assert np.all(ev.p_charge_kw[i, a[i]:a2[i]] == 0)  # nothing before the realised arrival
    guarded = execute(s.actual, s.show, s.obligation_kwh, np.zeros_like(F_plan), np.zeros_like(F_plan), guard=True)
    from evsched.uncertainty.execution import reservation_report
    assert reservation_report(s, guarded)["honoured"].all()  # the guard alone meets every obligation


# --------------------------------------------------------------------------- the policies
def test_targets_at_ten_percent_no_shows(study):
    s = study.main.samples
    assert set(s.policy) == set(pol.POLICIES) and s["sample"].nunique() == 6
    shown = s.groupby("sample")["n_shown"].first()
    assert (shown < N_EVS).any()  # some no-shows happened
    feas = s[s.hindsight_feasible.eq(True)]  # a bool column; NaN rows (no hindsight run) excluded
    assert len(feas)
    for p in ("mpc", "robust"):
        g = s[s.policy == p]
        assert (g.reservations_broken == 0).all(), p
        assert (g.energy_not_delivered_kwh == 0).all(), p
        assert (feas[feas.policy == p].voltage_violations == 0).all(), p


def test_hindsight_is_certified_and_a_lower_bound(study):
    s = study.main.samples
    h = s[(s.policy == "hindsight") & (s.status == "ok")]
    assert len(h) and (h.ac_max_voltage_mismatch_pu < 1e-4).all() and (h.max_relaxation_gap_rel < 1e-5).all()
    assert (h.reservations_broken == 0).all()
    tot = s.assign(total=s.loss_kwh + s.converter_loss_kwh).pivot(index="sample", columns="policy", values="total")
    ok = h["sample"]
    assert (tot.loc[ok, "hindsight"] <= tot.loc[ok, "mpc"] + 1e-6).all()  # same obligations: hindsight is optimal


def test_hindsight_patterns_agree(small):
    cd, errors = small
    m = DeviationModel()
    s = draw_sample(m, cd.reservations, errors, 3)
    args = (cd, errors, m.arrival_delays_h.max(), m.max_late_departure_h)
    exact, superset = pol.Hindsight(*args).run(s), pol.Hindsight(*args, pattern="superset").run(s)
    assert superset.stats["pattern"] == "superset" and exact.stats["pattern"] == "exact"
    assert exact.stats["opf_loss_kwh"] == pytest.approx(superset.stats["opf_loss_kwh"], rel=1e-6)


def test_ordering_of_mean_loss(study):
    s = study.main.samples
    ok = s.groupby("sample").filter(lambda d: (d.status == "ok").all())
    m = ok.groupby("policy")["loss_kwh"].mean()
    assert ok["sample"].nunique() >= 3
    assert m["hindsight"] <= m["mpc"] + 1e-6 <= m["day_ahead"] + 2e-6, m.to_dict()


def test_nominal_days(study, small):
    cd, _ = small
    nom = study.nominal.set_index(["sample", "policy"])
    s3 = scenarios.build_s3(cd)
    assert nom.loc[(-1, "day_ahead"), "loss_kwh"] == pytest.approx(s3.ac.loss_kwh, rel=1e-6)
    assert nom.loc[(-1, "hindsight"), "loss_kwh"] == pytest.approx(s3.ac.loss_kwh, rel=1e-4)
    assert (nom.reservations_broken == 0).all()


def test_no_show_sweep_uses_the_same_samples(study):
    sw = study.sweep_samples()
    assert sorted(sw.no_show_prob.unique()) == [0.0, 0.1]
    n0 = sw[sw.no_show_prob == 0.0].groupby("sample").n_shown.first()
    n1 = sw[sw.no_show_prob == 0.1].groupby("sample").n_shown.first()
    assert (n0 == N_EVS).all() and (n1 <= n0).all()
    summ = study.sweep_summary()
    assert set(summ.columns) == {"no_show_prob", "policy", "metric", "n", "mean", "p5", "p50", "p95"}


def test_infeasible_hindsight_is_counted_and_explained(study, small):
    cd, errors = small
    setup = study.setups[0.1]
    s = draw_sample(setup.model, cd.reservations, errors, 0)
    heavy = dataclasses.replace(s, load_p_kw=3.0 * s.load_p_kw, load_q_kvar=3.0 * s.load_q_kvar)
    rows, fails, _ = mc.evaluate(setup, heavy)
    by = {r["policy"]: r for r in rows}
    assert set(by) == set(pol.POLICIES)  # never dropped
    assert by["hindsight"]["status"] == "infeasible" and by["day_ahead"]["hindsight_feasible"] is False
    assert any(f["policy"] == "hindsight" and "voltage" in f["message"] for f in fails)
    assert by["day_ahead"]["voltage_violations"] > 0  # the other policies are still evaluated


def test_tables_are_byte_identical_and_hold_no_timings(study, small, tmp_path):
    _, errors = small
    a = study.write(tmp_path / "a", errors)
    mc._ENGINES.clear()  # a fresh process would compile again: the numbers must not change
    again = mc.run(study.setups[0.1], range(6))
    b = mc.write_results(again, tmp_path / "b")
    for name in ("samples", "summary", "paired", "infeasible"):
        assert a[name].read_bytes() == b[name].read_bytes(), name
    for path in a.values():
        if path.suffix == ".csv":
            head = path.read_text().splitlines()[0]
            assert "second" not in head and "_s," not in head + "," and "time" not in head, (path.name, head)


@pytest.mark.slow
def test_workers_do_not_change_the_numbers(study, tmp_path):
    two = mc.run(study.setups[0.1], range(4), n_workers=2)
    one = study.main.samples[study.main.samples["sample"] < 4].reset_index(drop=True)
    mc.write_table(two.samples, tmp_path / "two.csv")
    mc.write_table(one, tmp_path / "one.csv")
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def _length(x):
    return len(x)


@pytest.mark.slow
def test_a_released_scatter_does_not_take_a_later_equal_one_with_it():
    """The notebook's pattern: run_many scatters the setups and releases them, run_study scatters
    the same setup again. With dask's content-hashed keys the second scatter got the first's key
    and was freed with it ("lost dependencies" in notebook 06 with n_workers = 2)."""
    payload = list(range(10_000))
    with mc.Pool(2) as pool:
        if pool.client is None:
            pytest.skip("no dask worker processes can be started here")
        first = pool.scatter(payload)
        assert pool.map(_length, [(first,)]) == [10_000]
        del first
        second = pool.scatter(payload)
        assert pool.map(_length, [(second,), (second,)]) == [10_000, 10_000]
