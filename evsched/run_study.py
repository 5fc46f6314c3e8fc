"""Run the whole study: every notebook in ``notebooks/``, in order, with papermill.

Usage: ``python -m evsched.run_study [params/default.yaml] [--only 04_scenarios]``
(``make run`` / ``make run PARAMS=params/other.yaml``).

* ``params/default.yaml`` writes to ``results/``; any other ``params/<name>.yaml`` writes to
  ``results/<name>/``, so runs never overwrite each other.
* Each notebook receives the keys its ``parameters`` cell declares, plus ``results_dir``.
  A key that no notebook declares is an error (a typo would otherwise be ignored).
* Notebooks write into a staging folder; only when all succeed is it moved into place and
  ``run_info.json`` written last. A failed run prints the failing cell, leaves the partial
  output in ``results/<name>.failed/`` and never a folder that looks complete.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import yaml

from evsched.errors import InputError
from evsched.paths import NOTEBOOKS, RESULTS, ROOT

KERNEL = "evsched"
COMPLETE_MARKER = "run_info.json"


def notebooks() -> list[Path]:
    """The study's notebooks in execution order (their file names start with a number)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(nb: Path) -> dict:
    """Names and defaults declared in a notebook's ``parameters`` cell (papermill)."""
    import papermill as pm
    return {k: v["default"] for k, v in pm.inspect_notebook(str(nb)).items()}


def load_params(path: Path) -> dict:
    """Read a YAML parameter file; it must be a mapping of names to values."""
    if not path.exists():
        raise InputError(f"{path}: parameter file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise InputError(f"{path}: must be a mapping 'name: value', got {type(params).__name__}")
    return params


def output_dir(params_path: Path) -> Path:
    """``results/`` for params/default.yaml, ``results/<stem>/`` for any other file."""
    return RESULTS if params_path.stem == "default" else RESULTS / params_path.stem


def check_unknown(params: dict, declared: dict[str, dict], source: str) -> None:
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(f"{source}: unknown parameter(s) {unknown}; the notebooks declare "
                         f"{sorted(known - {'results_dir'})}")


def execute(nb: Path, out_nb: Path, parameters: dict) -> None:
    """Execute one notebook with papermill (kernel 'evsched', working directory notebooks/)."""
    import papermill as pm
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(nb), str(out_nb), parameters=parameters, kernel_name=KERNEL,
                        cwd=str(NOTEBOOKS), progress_bar=False, log_output=False)


def run(params_path: Path, only: list[str] | None = None, out: Path | None = None) -> Path:
    """Run the notebooks; return the results folder. Raises SystemExit(1) on a failed notebook."""
    import papermill as pm

    params_path = Path(params_path)
    params = load_params(params_path)
    nbs = notebooks()
    if only:
        nbs = [nb for nb in nbs if any(nb.stem.startswith(o) for o in only)]
        if not nbs:
            raise InputError(f"--only {only}: no notebook matches; have {[n.stem for n in notebooks()]}")
    declared = {nb.name: declared_parameters(nb) for nb in notebooks()}
    check_unknown(params, declared, str(params_path))
    target = out or output_dir(params_path)
    target.mkdir(parents=True, exist_ok=True)
    (target / COMPLETE_MARKER).unlink(missing_ok=True)  # from here on the folder is not complete
    staging = target.parent / f".staging-{target.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    print(f"evsched: running {len(nbs)} notebook(s) with {params_path} → {_rel(target)}/", flush=True)
    timings = {}
    t_all = time.perf_counter()
    for k, nb in enumerate(nbs, 1):
        given = {key: val for key, val in params.items() if key in declared[nb.name]}
        given["results_dir"] = str(staging)
        print(f"[{k}/{len(nbs)}] {nb.name} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        try:
            execute(nb, staging / "notebooks" / nb.name, given)
        except pm.PapermillExecutionError as exc:
            print("FAILED", flush=True)
            failed = _keep_failed(staging, target)
            print(f"\n{nb.name}: cell {exc.exec_count} raised {exc.ename}: {exc.evalue}\n"
                  f"--- failing cell ---\n{exc.source}\n--------------------\n"
                  f"The partial output is in {_rel(failed)}/ (executed notebook: "
                  f"{_rel(failed / 'notebooks' / nb.name)}); {_rel(target)}/ has no complete run.",
                  file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except BaseException as exc:  # kernel missing, interrupted, ...: keep what was written
            print("FAILED", flush=True)
            failed = _keep_failed(staging, target)
            hint = " (run `make setup` to register the 'evsched' kernel)" if "NoSuchKernel" in type(exc).__name__ else ""
            print(f"{nb.name}: {type(exc).__name__}: {exc}{hint}; partial output in {_rel(failed)}/",
                  file=sys.stderr, flush=True)
            raise
        timings[nb.name] = round(time.perf_counter() - t0, 2)
        print(f"done in {timings[nb.name]:.1f} s", flush=True)
    # move the staging folder into place, then mark the run complete: a full run replaces
    # each top-level entry it wrote (no stale files); a partial run (--only) merges file by file
    if only:
        for src in sorted(p for p in staging.rglob("*") if p.is_file()):
            dest = target / src.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dest))
        shutil.rmtree(staging)
    else:
        for entry in staging.iterdir():
            dest = target / entry.name
            if dest.is_dir():
                shutil.rmtree(dest)
            elif dest.exists():
                dest.unlink()
            shutil.move(str(entry), str(dest))
        staging.rmdir()
    info = {"params_file": _rel(params_path), "parameters": params, "notebooks": timings,
            "partial_run": bool(only),
            "total_seconds": round(time.perf_counter() - t_all, 2),
            "python": platform.python_version(), "machine": platform.machine(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (target / COMPLETE_MARKER).write_text(json.dumps(info, indent=2, default=str))
    print(f"evsched: study complete in {info['total_seconds']:.1f} s; results in {_rel(target)}/", flush=True)
    return target


def _keep_failed(staging: Path, target: Path) -> Path:
    """Move a failed run's staging folder to ``<target>.failed`` (replacing an older one)."""
    failed = target.parent / f"{target.name}.failed"
    shutil.rmtree(failed, ignore_errors=True)
    shutil.move(str(staging), str(failed))
    return failed


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="?", default="params/default.yaml", help="YAML parameter file")
    ap.add_argument("--only", nargs="*", help="run only the notebooks whose names start with these")
    args = ap.parse_args(argv)
    try:
        run(Path(args.params), only=args.only)
    except InputError as exc:
        print(f"evsched: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
