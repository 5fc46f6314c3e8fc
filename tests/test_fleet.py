"""Seeded fleet generator: determinism (byte for byte), validity, distributions, TOU-driven
modes, station assignment by proximity, parameter errors."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsched.errors import InputError
from evsched.fleet import (
    DEFAULT_STATION_BUSES,
    FleetConfig,
    feeder_distance_ohm,
    fleet_summary,
    generate_fleet,
    nearest_station,
    peak_hours_from_tou,
    write_fleet,
)
from evsched.paths import DATA
from evsched.reservations import COLUMNS, validate_reservations
from evsched.sessions import stay_hours

from ev_strategies import PLACEHOLDER_TOU


def csv_bytes(fleet) -> bytes:
    buf = io.StringIO()
    write_fleet(fleet, buf)
    return buf.getvalue().encode()


def test_default_fleet_is_deterministic_and_equals_the_shipped_file(ieee33):
    a, b = csv_bytes(generate_fleet(ieee33)), csv_bytes(generate_fleet(ieee33))
    assert a == b
    assert (DATA / "reservations" / "default_fleet.csv").read_bytes() == a


def test_other_seed_other_fleet(ieee33):
    assert csv_bytes(generate_fleet(ieee33, fleet_seed=1)) != csv_bytes(generate_fleet(ieee33))


def test_default_fleet_matches_the_paper_and_validates(ieee33):
    f = generate_fleet(ieee33)
    assert len(f) == 500 and (f["battery_kwh"] == 50).all() and list(f.columns) == COLUMNS
    rep = validate_reservations(f, ieee33, DEFAULT_STATION_BUSES)
    assert rep.ok and rep.n_accepted == 500
    # EVs per station and mode (regression of the documented numbers)
    tab = fleet_summary(f)
    assert tab.loc["total", "total"] == 500
    assert tab["total"].drop("total").to_dict() == {14: 88, 22: 217, 30: 195}
    assert tab.loc["total", ["charge", "both", "discharge"]].tolist() == [355, 132, 13]


def test_distributions_follow_the_parameters(ieee33):
    f = generate_fleet(ieee33, n_evs=5000, resolution_h=0.25, min_stay_h=0.25)  # the maximum fleet
    a = f["arrival_hour"].to_numpy()
    overnight = f["departure_day"].to_numpy() == 1
    home_share = overnight.mean()  # almost every home EV stays overnight, commuters do not
    assert 0.55 < home_share < 0.65
    # circular mean of home arrivals ≈ 18 h, of commuter arrivals ≈ 9 h
    ang = lambda h: np.angle(np.exp(2j * np.pi * h / 24).mean()) * 24 / (2 * np.pi) % 24
    assert abs(ang(a[overnight]) - 18) < 0.3 and abs(ang(a[~overnight]) - 9) < 0.3
    soc = f["soc_arrival"]
    assert soc.between(0.4, 0.6).all() and abs(soc.mean() - 0.5) < 0.01


def test_modes_respond_to_tou_peak_hours(ieee33):
    f = generate_fleet(ieee33, n_evs=2000, tou=PLACEHOLDER_TOU)
    peak = peak_hours_from_tou(PLACEHOLDER_TOU)
    assert peak == (9, 10, 11, 17, 18, 19, 20, 21)
    a = f["arrival_hour"].to_numpy()
    e = a + stay_hours(f)
    hours = np.array(peak + tuple(h + 24 for h in peak))
    covers = ((a[:, None] < hours + 1) & (e[:, None] > hours)).any(axis=1)
    v2g = f["mode"].isin(["both", "discharge"]).to_numpy()
    assert not (v2g & ~covers).any()                      # offers only cover peak hours
    assert 0.25 < v2g[covers].mean() < 0.35              # willingness share 0.3
    disc = f["mode"] == "discharge"
    assert (f.loc[disc, "soc_departure_min"] <= f.loc[disc, "soc_arrival"]).all()
    assert (generate_fleet(ieee33, v2g_share=0.0)["mode"] == "charge").all()
    everyone = generate_fleet(ieee33, n_evs=300, v2g_share=1.0)
    a1 = everyone["arrival_hour"].to_numpy()
    e1 = a1 + stay_hours(everyone)
    hrs = np.array(FleetConfig().peak_hours + tuple(h + 24 for h in FleetConfig().peak_hours))
    cov1 = ((a1[:, None] < hrs + 1) & (e1[:, None] > hrs)).any(axis=1)
    assert (everyone["mode"].isin(["both", "discharge"]).to_numpy() == cov1).all()


def test_feeder_distance_is_a_tree_metric(ieee33):
    D = feeder_distance_ohm(ieee33)
    assert np.allclose(D, D.T) and np.allclose(np.diag(D), 0)
    i = ieee33.bus_index([1, 2, 19])
    z = np.hypot(0.0922, 0.047) + np.hypot(0.164, 0.1565)  # lines 1-2 and 2-19
    assert D[i[0], i[2]] == pytest.approx(z, rel=1e-6)
    assert D[i[0], i[2]] == pytest.approx(D[i[0], i[1]] + D[i[1], i[2]])
    assert (D[:, :, None] <= D[:, None, :] + D.T[None, :, :] + 1e-9).all()  # triangle inequality


def test_nearest_station(ieee33):
    assert nearest_station(ieee33, [14, 22, 30], DEFAULT_STATION_BUSES).tolist() == [14, 22, 30]
    st_f = nearest_station(ieee33, [18, 20, 33, 24], DEFAULT_STATION_BUSES)
    assert st_f.tolist() == [14, 22, 30, 22]
    st_e = nearest_station(ieee33, [18, 33], DEFAULT_STATION_BUSES, "euclidean")
    assert st_e.tolist() == [14, 30]
    f = generate_fleet(ieee33, n_evs=50)
    D = feeder_distance_ohm(ieee33)
    bi = ieee33.bus_index(f["bus"].to_numpy())
    si = ieee33.bus_index(list(DEFAULT_STATION_BUSES))
    own = D[bi, ieee33.bus_index(f["station"].to_numpy())]
    assert np.all(own <= D[np.ix_(bi, si)].min(axis=1) + 1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(1, 60), home=st.floats(0, 1),
       v2g=st.floats(0, 1), res=st.sampled_from([1.0, 0.5, 0.25]),
       charger=st.sampled_from([3.3, 7.0, 22.0]), battery=st.sampled_from([20.0, 50.0, 100.0]),
       stations=st.sampled_from([(14, 22, 30), (18, 22, 33), (5,), (9, 25)]),
       distance=st.sampled_from(["feeder", "euclidean"]))
def test_every_generated_fleet_validates(ieee33, seed, n, home, v2g, res, charger, battery,
                                         stations, distance):
    f = generate_fleet(ieee33, fleet_seed=seed, n_evs=n, home_share=home, v2g_share=v2g,
                       resolution_h=res, min_stay_h=res, charger_kw=charger,
                       charger_kva=1.1 * charger, battery_kwh=battery, station_buses=stations,
                       station_distance=distance)
    rep = validate_reservations(f, ieee33, stations, on_error="skip")
    assert rep.ok, rep.messages()[:3]
    assert np.allclose(f["arrival_hour"] / res, np.round(f["arrival_hour"] / res))


@pytest.mark.parametrize("params, msg", [
    ({"n_evs": 0}, "fleet parameters, fleet parameters, field 'n_evs' = 0: must be an integer in 1..5000"),
    ({"v2g_share": 1.5}, "fleet parameters, fleet parameters, field 'v2g_share' = 1.5: must be in [0, 1]"),
    ({"charger_kva": 5.0}, "fleet parameters, fleet parameters, field 'charger_kva' = 5.0: must be >= charger_kw = 7.0 kVA"),
    ({"station_distance": "crow"}, "fleet parameters, fleet parameters, field 'station_distance' = 'crow': must be one of 'feeder', 'euclidean'"),
    ({"resolution_h": 0.3}, "fleet parameters, fleet parameters, field 'resolution_h' = 0.3: must divide one hour (1, 0.5, 0.25, ...)"),
    ({"soc_max": 0.8}, "fleet parameters, fleet parameters, field 'soc_max' = 0.8: must be >= every departure and arrival SOC upper bound = 0.9"),
])
def test_parameter_errors_name_parameter_value_and_range(params, msg):
    with pytest.raises(InputError) as exc:
        FleetConfig.from_params(source="fleet parameters", **params)
    assert str(exc.value) == msg


def test_unknown_parameter_and_unknown_station(ieee33):
    with pytest.raises(InputError, match=r"field 'seed' = 3: unknown parameter"):
        FleetConfig.from_params(seed=3)
    with pytest.raises(InputError, match=r"unknown bus id\(s\) \[99\]"):
        generate_fleet(ieee33, station_buses=(14, 99))
