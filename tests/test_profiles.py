"""The SimBench extract, its reader, and every bad-input rule of evsched.profiles."""
from __future__ import annotations

import gzip
import importlib.util
import logging
import sys

import numpy as np
import pandas as pd
import pytest

from evsched.errors import InputError
from evsched.history import read_customer_mix
from evsched.paths import DATA
from evsched.profiles import PROFILE_FILE, load_profiles, read_profiles

sys.path.insert(0, str(DATA / "profiles"))
import make_extract  # noqa: E402  (data/profiles/make_extract.py)


# --------------------------------------------------------------------------- the extract
@pytest.mark.skipif(importlib.util.find_spec("simbench") is None,
                    reason="simbench is not installed (pip install simbench, the 'dev' extra): "
                           "cannot regenerate the extract to compare with it")
def test_extract_matches_simbench_exactly(tmp_path):
    fresh = make_extract.build_extract()
    stored = pd.read_csv(PROFILE_FILE, dtype={"time": str})
    assert list(stored.columns) == ["time"] + make_extract.LOAD_COLUMNS + make_extract.RES_COLUMNS
    pd.testing.assert_frame_equal(stored, fresh.reset_index(drop=True), check_exact=True)
    # and the CSV text is rebuilt byte for byte (the gzip header only differs by file name)
    out = make_extract.write_extract(fresh, tmp_path / "x.csv.gz")
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(PROFILE_FILE.read_bytes())


def test_extract_is_small_and_complete():
    assert PROFILE_FILE.stat().st_size < 3e6
    raw = pd.read_csv(PROFILE_FILE, dtype={"time": str})
    assert raw.shape == (35136, 12)
    assert raw.time.iloc[0] == "01.01.2016 00:00" and raw.time.iloc[-1] == "31.12.2016 23:45"
    assert raw.time.duplicated().sum() == 4                                 # the fall-back hour
    assert not raw.time.isin([f"27.03.2016 02:{m:02d}" for m in (0, 15, 30, 45)]).any()


def test_reader_maps_local_time_to_regular_cet_grid():
    df = load_profiles()
    raw = pd.read_csv(PROFILE_FILE, dtype={"time": str})
    assert len(df) == 366 * 96
    assert (df.index == pd.date_range("2016-01-01", periods=366 * 96, freq="15min")).all()
    # no value invented or dropped: the columns are the raw ones in the same order
    for col in ["H0-A_pload", "G1-A_pload", "PV3"]:
        np.testing.assert_array_equal(df[col].to_numpy(), raw[col].to_numpy())
    # local 27.03 03:00 (CEST) is 02:00 CET; the second 30.10 02:00 (CET) stays 02:00
    i_spring = raw.index[raw.time == "27.03.2016 03:00"][0]
    assert df.index[i_spring] == pd.Timestamp("2016-03-27 02:00")
    i_fall = raw.index[raw.time == "30.10.2016 02:00"]
    assert list(df.index[i_fall]) == [pd.Timestamp("2016-10-30 01:00"), pd.Timestamp("2016-10-30 02:00")]
    # wind stand-by values were clipped, not kept negative
    assert (raw[["WP4", "WP8"]] < 0).sum().sum() == 90
    assert df[["WP4", "WP8"]].min().min() == 0.0


# --------------------------------------------------------------------------- bad input
def _write(tmp_path, rows, name="p.csv", header="time,H0-A_pload,PV3"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _day(date="01.02.2016", start=0, n=12, load=0.5, pv=0.1):
    t0 = pd.Timestamp(pd.to_datetime(date, format="%d.%m.%Y")) + pd.Timedelta(minutes=15 * start)
    return [f"{(t0 + pd.Timedelta(minutes=15 * k)):%d.%m.%Y %H:%M},{load + 0.01 * k},{pv}" for k in range(n)]


def _raises(path, *parts, **kw):
    with pytest.raises(InputError) as exc:
        read_profiles(path, **kw)
    msg = str(exc.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


def test_clean_file_reads(tmp_path):
    df = read_profiles(_write(tmp_path, _day()))
    assert len(df) == 12 and df["H0-A_pload"].iloc[3] == pytest.approx(0.53)


def test_gap_names_file_timestamp_and_count(tmp_path):
    rows = _day()
    del rows[4:6]                          # 01:00 and 01:15 missing
    _raises(_write(tmp_path, rows), "p.csv", "timestamp 2016-02-01 01:00", "'time'",
            "gap: 2 missing 15-minute step(s) between 2016-02-01 00:45 and 2016-02-01 01:30")
    # two steps are never repaired
    _raises(_write(tmp_path, rows), "only a single step can be repaired", repair=True)


def test_single_missing_step_errors_or_is_repaired_and_logged(tmp_path, caplog):
    rows = _day()
    del rows[4]                            # 01:00 missing
    path = _write(tmp_path, rows)
    _raises(path, "timestamp 2016-02-01 01:00", "gap: 1 missing", "repair=True")
    with caplog.at_level(logging.WARNING, logger="evsched.profiles"):
        df = read_profiles(path, repair=True)
    assert len(df) == 12
    assert df.loc["2016-02-01 01:00", "H0-A_pload"] == pytest.approx(0.54)   # (0.53 + 0.55) / 2
    assert "repaired missing timestamp 2016-02-01 01:00" in caplog.text and "p.csv" in caplog.text


def test_duplicated_timestamp(tmp_path):
    rows = _day()
    rows.insert(5, rows[4])
    _raises(_write(tmp_path, rows), "timestamp 2016-02-01 01:00", "duplicated timestamp")


def test_out_of_order_timestamp(tmp_path):
    rows = _day()
    rows[4], rows[5] = rows[5], rows[4]
    _raises(_write(tmp_path, rows), "timestamp 2016-02-01 01:00", "out of order")


def test_missing_or_unparseable_timestamp_names_the_line(tmp_path):
    rows = _day()
    rows[3] = "," + rows[3].split(",", 1)[1]
    _raises(_write(tmp_path, rows), "p.csv", "line 5 (row 3)", "field 'time'", "format '%d.%m.%Y %H:%M'")
    rows = _day()
    rows[2] = "1 Feb 2016 00:30" + rows[2][16:]
    _raises(_write(tmp_path, rows), "line 4 (row 2)", "'1 Feb 2016 00:30'")


def test_off_grid_timestamp(tmp_path):
    rows = _day()
    rows[3] = rows[3].replace("00:45", "00:50")
    _raises(_write(tmp_path, rows), "timestamp 2016-02-01 00:50", "off the 15-minute grid")


def test_dst_nonexistent_local_time(tmp_path):
    rows = _day("27.03.2016", start=4, n=8)     # 01:00 .. 02:45 local: 02:00 does not exist
    _raises(_write(tmp_path, rows), "timestamp 2016-03-27 02:00", "daylight-saving anomaly",
            "does not exist in Europe/Berlin", "spring-forward")


def test_dst_fall_back_hour_not_repeated(tmp_path):
    rows = _day("30.10.2016", start=4, n=12)    # 01:00..03:45 local, 02:xx only once
    _raises(_write(tmp_path, rows), "timestamp 2016-10-30 02:00", "daylight-saving anomaly",
            "appears 1 time(s)", "exactly twice")


def test_dst_correct_local_day_reads_regular(tmp_path):
    rows = _day("30.10.2016", start=4, n=8) + _day("30.10.2016", start=8, n=8)   # 02:xx twice
    df = read_profiles(_write(tmp_path, rows))
    assert len(df) == 16 and (np.diff(df.index.asi8) == 15 * 60 * 10 ** 9).all()
    assert df.index[0] == pd.Timestamp("2016-10-30 00:00")      # 01:00 CEST = 00:00 CET


def test_dst_local_file_read_as_fixed_clock_gets_a_hint(tmp_path):
    rows = _day("30.10.2016", start=8, n=4) + _day("30.10.2016", start=8, n=8)
    _raises(_write(tmp_path, rows), "duplicated timestamp", "fall-back hour of daylight saving",
            "clock='Europe/Berlin'", clock=None)


def test_dst_spring_gap_read_as_fixed_clock_gets_a_hint(tmp_path):
    rows = _day("27.03.2016", start=4, n=4) + _day("27.03.2016", start=12, n=4)   # local 01:xx, 03:xx
    _raises(_write(tmp_path, rows), "timestamp 2016-03-27 02:00", "gap: 4 missing",
            "spring-forward hour of daylight saving", clock=None)
    df = read_profiles(_write(tmp_path, rows))                   # read as local time: regular
    assert len(df) == 8 and df.index[-1] == pd.Timestamp("2016-03-27 02:45")


def test_nan_names_timestamp_and_column(tmp_path, caplog):
    rows = _day()
    rows[6] = rows[6].rsplit(",", 2)[0] + ",,0.1"
    path = _write(tmp_path, rows)
    _raises(path, "p.csv", "timestamp 2016-02-01 01:30", "field 'H0-A_pload'", "missing value (NaN)")
    with caplog.at_level(logging.WARNING, logger="evsched.profiles"):
        df = read_profiles(path, repair=True)
    assert df.loc["2016-02-01 01:30", "H0-A_pload"] == pytest.approx(0.56)
    assert "repaired NaN at timestamp 2016-02-01 01:30, column 'H0-A_pload'" in caplog.text
    rows[7] = rows[7].rsplit(",", 2)[0] + ",,0.1"                 # two NaNs in a row
    _raises(_write(tmp_path, rows), "timestamp 2016-02-01 01:30", "only an isolated NaN", repair=True)


def test_negative_load(tmp_path):
    rows = _day()
    rows[9] = rows[9].rsplit(",", 2)[0] + ",-0.2,0.1"
    _raises(_write(tmp_path, rows), "p.csv", "timestamp 2016-02-01 02:15", "field 'H0-A_pload' = -0.2",
            "negative load")


def test_non_numeric_value(tmp_path):
    rows = _day()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",abc"
    _raises(_write(tmp_path, rows), "timestamp 2016-02-01 00:30", "field 'PV3' = 'abc'", "must be a number")


def test_renewable_outside_unit_interval_and_standby_clipping(tmp_path):
    rows = _day()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",1.2"
    _raises(_write(tmp_path, rows), "timestamp 2016-02-01 00:30", "field 'PV3' = 1.2", "[0, 1]")
    rows = _day()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",-0.00001"
    assert read_profiles(_write(tmp_path, rows))["PV3"].min() == 0.0


def test_missing_file_and_time_column(tmp_path):
    _raises(tmp_path / "nope.csv", "nope.csv", "file not found")
    _raises(_write(tmp_path, ["1,2"], header="when,H0-A_pload"), "a 'time' column is required")


def test_customer_mix_shares_must_sum_to_one(tmp_path):
    mix = pd.read_csv(DATA / "profiles" / "customer_mix.csv")
    assert mix.groupby("bus").energy_share.sum().round(12).eq(1).all()
    assert sorted(mix.bus.unique()) == list(range(2, 34))
    mix.loc[0, "energy_share"] = 0.5
    path = tmp_path / "mix.csv"
    mix.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"mix.csv, bus 2, field 'energy_share' = 1.2.*sum to 1"):
        read_customer_mix(path)
    mix = mix[mix.bus != 5]
    mix.loc[0, "energy_share"] = 0.3
    mix.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"missing: \[5\]"):
        read_customer_mix(path, buses=list(range(2, 34)))
