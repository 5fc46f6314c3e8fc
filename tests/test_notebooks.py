"""Every notebook runs top to bottom under papermill with the default parameters.

The whole study is executed once (as `make run` does, into a temporary folder); the
failure path and parameter checking of the batch runner are tested too.
"""
from __future__ import annotations

import json

import nbformat
import pytest

from evsched import run_study
from evsched.errors import InputError
from evsched.paths import PARAMS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "results"
    run_study.run(PARAMS / "default.yaml", out=out)
    return out


def test_every_notebook_executes(study):
    nbs = run_study.notebooks()
    assert len(nbs) >= 1
    for nb in nbs:
        executed = nbformat.read(study / "notebooks" / nb.name, as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{nb.name}: {errors[0].get('ename')}"
        assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code" and c.source.strip())


def test_exercise_solutions_run_with_the_study(study):
    # every notebook is a lecture; its hidden solutions are ordinary code cells: they run (and
    # assert) in every run, except in a notebook the run skipped (outside its scope)
    info = json.loads((study / run_study.COMPLETE_MARKER).read_text())
    for nb in run_study.notebooks():
        if nb.name in info.get("skipped", {}):
            continue
        executed = nbformat.read(study / "notebooks" / nb.name, as_version=4)
        solutions = [c for c in executed.cells if "solution" in c.metadata.get("tags", [])]
        assert len(solutions) >= 2, f"{nb.name}: {len(solutions)} exercise solutions"
        for c in solutions:
            assert c.get("execution_count") and not any(o.get("output_type") == "error" for o in c.outputs), nb.name


def test_run_is_marked_complete(study):
    info = json.loads((study / run_study.COMPLETE_MARKER).read_text())
    assert set(info["notebooks"]) == {nb.name for nb in run_study.notebooks()}
    assert not (study.parent / ".staging-results").exists()


def test_network_notebook_reproduces_reference(study):
    import pandas as pd
    check = pd.read_csv(study / "network" / "base_case_check.csv", index_col=0)
    assert check.loc["active loss [kW]", "this run"] == pytest.approx(202.68, abs=0.05)
    assert check.loc["minimum voltage [p.u.]", "this run"] == pytest.approx(0.9131, abs=1e-4)
    assert (study / "figures" / "plotly.min.js").exists()  # offline figures


def test_notebooks_committed_without_outputs():
    for nb in run_study.notebooks():
        content = nbformat.read(nb, as_version=4)
        assert content.metadata.kernelspec.name == "evsched", nb.name
        code = [c for c in content.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), f"{nb.name}: first code cell not tagged"
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), nb.name


def test_bad_value_refused_before_any_notebook(tmp_path):
    # the whole file is validated before a notebook starts or a folder is created
    # (the failure path of a notebook itself is tested with a fake executor in test_run_safety.py)
    params = tmp_path / "broken.yaml"
    params.write_text("v_slack_pu: 5.0\n")
    out = tmp_path / "broken"
    with pytest.raises(InputError, match=r"'v_slack_pu' = 5.0: must be in \[0.9, 1.1\] p.u."):
        run_study.run(params, out=out)
    assert not out.exists() and not (tmp_path / "broken.failed").exists()


def test_unknown_parameter_rejected(tmp_path):
    params = tmp_path / "typo.yaml"
    params.write_text("v_slak_pu: 1.0\n")
    with pytest.raises(InputError, match=r"typo.yaml: unknown parameter\(s\) \['v_slak_pu'\]"):
        run_study.run(params, out=tmp_path / "typo")


def test_output_folder_per_parameter_file():
    assert run_study.output_dir(PARAMS / "default.yaml").name == "results"
    assert run_study.output_dir(PARAMS / "windy.yaml").parts[-2:] == ("results", "windy")


def test_notebook_defaults_match_default_yaml():
    """A parameter file may list only what it changes: the notebooks' own defaults must then
    be exactly the values of params/default.yaml."""
    import ast

    import yaml
    defaults = yaml.safe_load((PARAMS / "default.yaml").read_text())
    for nb in run_study.notebooks():
        for name, text in run_study.declared_parameters(nb).items():
            if name in defaults:
                assert ast.literal_eval(text) == defaults[name], f"{nb.name}: {name} = {text}"


def test_every_parameter_file_is_valid():
    for path in sorted(PARAMS.glob("*.yaml")):
        params = run_study.load_params(path)
        declared = {nb.name: run_study.declared_parameters(nb) for nb in run_study.notebooks()}
        run_study.check_unknown(params, declared, str(path))


def test_readme_results_come_from_the_outputs(study):
    # the README's result tables are generated from a default run, never typed in by hand
    from evsched.readme_tables import readme_block, results_block
    assert readme_block() == results_block(study), \
        "README results block is stale: run `make run` then `.venv/bin/python -m evsched.readme_tables --write`"


def test_default_run_honours_every_reservation_and_is_exact(study):
    import pandas as pd
    s = pd.read_csv(study / "summary.csv").set_index("scenario")
    assert s.exact.all()
    for name in ("S2", "S3"):
        assert s.at[name, "reservations_not_honoured"] == 0
        assert s.at[name, "energy_not_delivered_kwh"] == 0.0
