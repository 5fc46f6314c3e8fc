"""One parameter schema (evsched.schema): every place a parameter appears agrees with it.

The YAML file and the notebooks' ``parameters`` cells are generated from the schema
(``evsched params --write``); the functions that take parameters (load_case, FleetConfig,
tou.check_params, forecast.check_params, check_voltage_band, the runner) validate through it
and take its defaults; the OPF model gets its options from the case in one object.
"""
from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
import yaml

from evsched import forecast, run_study, schema, tou
from evsched.case import Case, case_keys, load_case
from evsched.errors import InputError
from evsched.fleet import FleetConfig
from evsched.params import check_voltage_band
from evsched.paths import NOTEBOOKS, PARAMS, ROOT


# --------------------------------------------------------------------------- generated files
def test_default_yaml_is_generated_from_the_schema():
    assert (PARAMS / "default.yaml").read_text(encoding="utf-8") == schema.default_yaml(), \
        "params/default.yaml is stale: run `evsched params --write`"
    assert yaml.safe_load(schema.default_yaml()) == schema.defaults()


@pytest.mark.parametrize("nb", run_study.notebooks(), ids=lambda p: p.stem)
def test_parameters_cell_is_generated_from_the_schema(nb):
    """Names, defaults and comments (title, unit, range) of every notebook's parameters cell."""
    old, new = schema.notebook_with_cell(nb)
    assert old == new, f"{nb.name}: the parameters cell is stale: run `evsched params --write`"


@pytest.mark.parametrize("nb", run_study.notebooks(), ids=lambda p: p.stem)
def test_notebooks_declare_only_schema_keys_and_their_defaults(nb):
    declared = run_study.declared_parameters(nb)
    # papermill (which decides what the runner passes) sees every assignment of the cell
    assert list(declared) == schema.notebook_keys(nb)
    assert next(iter(declared)) == "results_dir"
    unknown = set(declared) - set(schema.FLAT) - set(schema.RUNNER_KEYS)
    assert not unknown, f"{nb.name} declares {unknown}, which evsched/schema.py does not define"
    d = schema.defaults()
    for k, text in declared.items():
        if k in d:
            assert ast.literal_eval(text) == d[k], (nb.name, k)


def test_no_parameter_exists_in_one_place_only():
    """Every schema key is in the YAML file and read by a notebook (declared in its cell, or
    through ``params_file`` by a notebook that loads the whole case); every key a notebook or a
    parameter file names is in the schema."""
    declared = {nb.name: run_study.declared_parameters(nb) for nb in run_study.notebooks()}
    whole_case = [n for n, d in declared.items() if "params_file" in d]
    assert whole_case, "no notebook reads the whole case (params_file)"
    for n in whole_case:  # such a notebook really reads the file
        src = (NOTEBOOKS / n).read_text(encoding="utf-8")
        assert "load_case(params_file" in src, f"{n} declares params_file but does not load it"
    used = set().union(*declared.values())
    directly = used - set(schema.RUNNER_KEYS)
    assert directly <= set(schema.FLAT)
    assert set(yaml.safe_load((PARAMS / "default.yaml").read_text())) == set(schema.FLAT)
    for path in sorted(PARAMS.glob("*.yaml")):
        keys = set(run_study.load_params(path))
        assert keys <= set(schema.FLAT), f"{path.name}: {keys - set(schema.FLAT)}"
        load_case(path)  # every value valid, every rule kept


def test_every_notebook_key_is_documented():
    for k in schema.FLAT:
        fi = schema.info(k)
        assert fi.description and fi.title, k
        assert "\n" not in fi.description, k
        assert schema.range_text(k), k


# --------------------------------------------------------------------------- one definition
def test_functions_take_the_schema_keys_and_defaults():
    d = schema.defaults()
    sig = inspect.signature(tou.check_params).parameters
    assert list(sig) == list(schema.TOU.model_fields)
    assert {k: p.default for k, p in sig.items()} == schema.defaults("tou")
    sig = inspect.signature(forecast.check_params).parameters
    assert set(sig) - {"history"} == set(schema.Forecast.model_fields)
    assert all(p.default == d[k] for k, p in sig.items() if k not in ("history", "target_day"))
    da = inspect.signature(forecast.day_ahead).parameters
    assert da["model"].default == d["forecast_model"]
    assert all(da[k].default == d[k] for k in ("train_days", "renewable_window_days", "backtest_days"))
    cfg = FleetConfig()
    names = {f.name for f in fields(FleetConfig)}
    assert names == set(schema.Fleet.model_fields) | {"station_buses", "peak_hours"}
    assert {k: getattr(cfg, k) for k in schema.Fleet.model_fields} == schema.defaults("fleet")
    assert list(cfg.station_buses) == d["station_buses"]
    assert set(case_keys()) == set(schema.FLAT)


def test_load_case_defaults_are_the_yaml_values():
    from_file, from_code = load_case(), load_case(None)
    assert from_file == from_code
    assert from_file.flat() == schema.defaults()
    assert isinstance(from_file, Case)


def test_case_reads_flat_and_by_topic():
    c = load_case(None, n_evs=40, v_min_pu=0.94)
    assert c.n_evs == c.fleet.n_evs == c.fleet["n_evs"] == 40
    assert c.v_min_pu == c.limits.v_min_pu == 0.94
    assert dict(c.tou) == schema.defaults("tou")
    assert c.forecast.get("target_day") == "2016-12-07" and "target_day" in c.forecast
    cfg = FleetConfig.from_params(station_buses=tuple(c.station_buses), **c.fleet)
    assert cfg.n_evs == 40
    copy = c.model_copy(update={"pv_capacity_kw": [1500.0, 1500.0]})
    assert copy.pv_capacity_kw == [1500.0, 1500.0] and c.pv_capacity_kw == [500.0, 500.0]
    with pytest.raises(InputError, match=r"field 'pv_capacity_kw' = \[1500.0\]: must give one capacity per bus"):
        c.model_copy(update={"pv_capacity_kw": [1500.0]})


# --------------------------------------------------------------------------- messages
@pytest.mark.parametrize("text, expected", [
    ("v_min_pu: 1.04\n", "network limits, field 'v_min_pu' = 1.04: must be in [0.8, 1.0] p.u."),
    ("v_max_pu: 0.99\n", "network limits, field 'v_max_pu' = 0.99: must be in [1.0, 1.2] p.u."),
    ("v_max_pu: 1.0\nv_min_pu: 1.0\n", "field 'v_min_pu' = 1.0: must be < v_max_pu = 1.0 p.u."),
    ("tou_ratio_peak: 2.5\n", "field 'tou_ratio_sharp_peak' = 2.05 (default): must be at least tou_ratio_peak = 2.5"),
    ("tou_valley_quantile: 0.8\n", "field 'tou_peak_quantile' = 0.75 (default): must satisfy tou_valley_quantile (0.8)"),
    ("charger_kw: 11.0\n", "fleet parameters, field 'charger_kva' = 7.7 (default): must be >= charger_kw = 11.0 kVA"),
    ("pv_buses: [13, 13]\npv_capacity_kw: [1.0, 2.0]\n", "field 'pv_buses' = [13, 13]: a bus may appear only once"),
    ("wt_capacity_kw: [500.0]\n", "field 'wt_capacity_kw' = [500.0]: must give one capacity per bus of wt_buses = [18, 33]"),
    ("wt_capacity_kw: [500.0, 20000.0]\n", "item 2 = 20000.0: must be in [0, 10000] kW"),
    ("n_evs: 10.5\n", "field 'n_evs' = 10.5: must be an integer in 1..5000"),
    ("ev_model: perfect\n", "field 'ev_model' = 'perfect': must be one of 'exact', 'envelope'"),
    ("curtail_renewables: 1\n", "field 'curtail_renewables' = 1: must be true or false"),
    ("curtailment_penalty: 1.0\n", "field 'curtailment_penalty' = 1.0: must be in (0, 1) kWh loss per kWh curtailed"),
    ("run_exact: maybe\n", "field 'run_exact' = 'maybe': must be true or false"),
    ("target_day: 2016-13-01\n", "not a valid date"),
    ("backtest_days: 200\ntrain_days: 180\n", "history too short"),
    ("v_slak_pu: 1.0\n", "unknown parameter(s) ['v_slak_pu'] (did you mean 'v_slack_pu'?)"),
])
def test_errors_name_file_parameter_value_and_range(tmp_path, text, expected):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        load_case(p)
    msg = str(exc.value)
    assert expected in msg, msg
    assert msg.startswith(str(p)) and "np." not in msg


def test_every_error_is_reported_with_its_own_source(tmp_path):
    p = tmp_path / "two.yaml"
    p.write_text("n_evs: 0\n")
    with pytest.raises(InputError) as exc:
        load_case(p, v_slack_pu=2.0)
    msg = str(exc.value)
    assert f"{p}, fleet parameters, field 'n_evs' = 0" in msg
    assert f"load_case overrides of {p}, network limits, field 'v_slack_pu' = 2.0" in msg


def test_numpy_values_and_plain_numbers():
    with pytest.raises(InputError) as exc:
        schema.validate({"v2g_share": np.float64(1.5), "n_evs": np.int64(0)})
    assert "= 1.5: must be in [0, 1]" in str(exc.value) and "= 0: must be an integer" in str(exc.value)
    assert schema.validate({"n_evs": np.int64(7)}).n_evs == 7
    assert check_voltage_band(np.float64(1.0), 0.9, 1.1) == (1.0, 0.9, 1.1)
    with pytest.raises(InputError, match="must be a number in"):
        check_voltage_band(1.0, float("nan"), 1.05)


def test_the_same_range_everywhere():
    """The runner, load_case, the notebook helpers and FleetConfig report one range per key."""
    rules = []
    with pytest.raises(InputError) as exc:
        load_case(None, tou_ratio_valley=1.5)
    rules.append(str(exc.value).split(": ", 1)[1])
    with pytest.raises(InputError) as exc:
        tou.check_params(tou_ratio_valley=1.5)
    rules.append(str(exc.value).split(": ", 1)[1])
    assert rules[0] == rules[1] == "must be in (0, 1]"
    with pytest.raises(InputError) as a:
        load_case(None, battery_kwh=300.0)
    with pytest.raises(InputError) as b:
        FleetConfig.from_params(battery_kwh=300.0)
    assert str(a.value).split(": ", 1)[1] == str(b.value).split(": ", 1)[1]


# --------------------------------------------------------------------------- OPF options
def test_options_flow_from_the_case_into_the_opf_model(monkeypatch):
    from evsched import aggregation_gap, scenarios
    from evsched.case import build_case

    case = load_case(None, count_converter_losses=False, v_min_pu=0.93, n_evs=30)
    cd = build_case(case)
    m = scenarios.opf_model(cd, reactive=True)
    assert (m.v_min_pu, m.count_converter_losses) == (0.93, False)
    clone = m.clone()
    assert (clone.v_min_pu, clone.v_max_pu, clone.count_converter_losses) == (0.93, 1.05, False)
    seen = []

    class Stop(Exception):
        pass

    def fake(*args, **kw):
        seen.append(kw)
        raise Stop

    monkeypatch.setattr("evsched.model.OPFModel", fake)
    with pytest.raises(Stop):
        aggregation_gap.compare(cd.network, cd.reservations, cd.load_p_kw, cd.load_q_kvar,
                                options=case.opf_options)
    assert seen[0]["count_converter_losses"] is False and seen[0]["v_min_pu"] == 0.93
    with pytest.raises(InputError, match="give one or the other"):
        aggregation_gap.compare(cd.network, cd.reservations, cd.load_p_kw, cd.load_q_kvar,
                                options=case.opf_options, v_min_pu=0.9)


# --------------------------------------------------------------------------- the command
def test_evsched_params_prints_the_schema_and_the_yaml():
    from evsched.cli import main
    out = subprocess.run([sys.executable, "-c", "from evsched.cli import main; raise SystemExit(main(['params']))"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for t, model in schema.TOPICS.items():
        assert f"{t}: {model.TITLE}" in out.stdout
    for k in schema.FLAT:
        assert f"  {k} " in out.stdout
    assert "[p.u.] [0.8, 1.0], < v_max_pu" in out.stdout
    out = subprocess.run([sys.executable, "-c", "from evsched.cli import main; raise SystemExit(main(['params', '--yaml']))"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout == schema.default_yaml()
    assert main(["params", "--check"]) == 0


def test_regenerating_a_cell_changes_only_its_source(tmp_path, monkeypatch):
    src = NOTEBOOKS / "00_network.ipynb"
    nb = json.loads(src.read_text(encoding="utf-8"))
    i = schema._parameters_cell_index(nb, src)
    cell = nb["cells"][i]
    cell["source"] = ['results_dir = "x"\n', "v_min_pu = 0.9  # hand-edited\n"]
    copy = tmp_path / "00_network.ipynb"
    copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    old, new = schema.notebook_with_cell(copy)
    assert old != new
    after = json.loads(new)
    assert after["cells"][i]["source"] == schema._source_lines(schema.parameters_cell(["v_min_pu"]))
    for j, (a, b) in enumerate(zip(nb["cells"], after["cells"])):
        assert a["id"] == b["id"] and a["metadata"] == b["metadata"]
        if j != i:
            assert a == b
    assert {k: v for k, v in after.items() if k != "cells"} == {k: v for k, v in nb.items() if k != "cells"}
    with pytest.raises(InputError, match="not defined in evsched/schema.py.*did you mean 'v_min_pu'"):
        schema.parameters_cell(["v_mn_pu"])
