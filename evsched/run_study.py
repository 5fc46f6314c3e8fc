"""Run the whole study: every notebook in ``notebooks/``, in order, with papermill.

Usage: ``python -m evsched.run_study [PARAMS] [--only NB ...]``
(``make run`` / ``make run PARAMS=params/other.yaml``).

Where the output goes:

* this repository's ``params/default.yaml`` writes to ``results/`` itself;
* any other parameter file ``<name>.yaml`` (wherever it lies) writes to ``results/<name>/``.
  ``<name>`` must match ``[A-Za-z0-9][A-Za-z0-9_-]*`` and must not be one of the folders of
  the default run or of other tools (see ``RESERVED``): rename the file otherwise. A folder
  ``results/<name>/`` holding a complete run of a *different* file is never overwritten.
* ``results_dir`` cannot be set in a parameter file.

Checks before anything is written: the file is strict YAML (:mod:`evsched.yamlio`), every key
is a parameter of :mod:`evsched.schema` (a typo would otherwise be ignored), and every value is
in its range (:func:`evsched.case.load_case`). Each notebook gets the keys its ``parameters``
cell declares and, if it declares ``params_file``, the file itself. Input errors exit with
status 2.

Completion and atomicity: notebooks write into a staging folder (``results/.staging-<name>/``);
only when all succeed is it swapped in and ``run_info.json`` — the completion marker — written
last. Until then the previous complete run stays intact. A failed or interrupted run prints
the failing cell and leaves its partial output in ``results/<name>.failed/``
(``results/.failed-default/`` for the default run), never in a folder that looks complete.

``--only NB`` re-runs only the notebooks whose file names start with ``NB`` (e.g. ``04``), on
top of an existing complete run made with exactly the same parameters; ``run_info.json`` then
records which notebooks were re-run and keeps the others' timings.

Notebooks written for some networks or time steps only (metadata ``evsched.networks`` /
``evsched.resolutions``, :func:`notebook_scope`) are skipped by runs outside them:
``run_info.json`` records ``"skipped"`` as their time in ``notebooks`` and the reason in
``skipped`` (``{notebook: reason}``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from evsched.errors import InputError
from evsched.paths import NOTEBOOKS, PARAMS, RESULTS, ROOT, RUN_CACHE_ENV

KERNEL = "evsched"
COMPLETE_MARKER = "run_info.json"
DEFAULT_PARAMS = PARAMS / "default.yaml"
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
RESERVED = frozenset({
    # folders of the default run in results/ and of other tools (make bench, lab, ...)
    "forecast", "tou", "network", "reservations", "scenarios", "figures", "notebooks",
    "bench", "lab", "uncertainty", "sweeps", "report",
    # 'default' would read as the default run; README would shadow results/README.md
    "default", "readme"})
"""Names a parameter file may not have (compared case-insensitively), besides every
top-level folder the last complete default run wrote (its ``run_info.json`` ``outputs``)."""
DEFAULT_STAGING = ".staging-default"
DEFAULT_FAILED = ".failed-default"
DEFAULT_REPLACED = ".replaced-default"
KEEP_IN_RESULTS = frozenset({"README.md", "bench"})
"""Entries of ``results/`` the default run never replaces."""
SHARED_FOLDERS = frozenset({"sweeps"})
"""Folders of ``results/`` the default run shares with other tools (``make sweep`` writes
``results/sweeps/<spec>/``): the default run replaces only the sub-folders it wrote."""


def notebooks() -> list[Path]:
    """The study's notebooks in execution order (their file names start with a number)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(nb: Path) -> dict:
    """Names and defaults (source text) declared in a notebook's ``parameters`` cell (papermill)."""
    import papermill as pm
    return {k: v["default"] for k, v in pm.inspect_notebook(str(nb)).items()}


# --------------------------------------------------------------------------- inputs
def load_params(path: Path) -> dict:
    """Read a parameter file with the strict YAML reader; ``results_dir`` is refused."""
    from evsched.yamlio import load_yaml_mapping

    path = Path(path)
    if str(path) in ("", "."):
        raise InputError("no parameter file given (e.g. params/default.yaml)")
    params = load_yaml_mapping(path)
    if "results_dir" in params:
        raise InputError(f"{path}: 'results_dir' cannot be set in a parameter file; the output "
                         f"folder follows from the file's name: {_where(path)} (rename the file "
                         "to choose another folder)")
    if "params_file" in params:
        raise InputError(f"{path}: 'params_file' cannot be set in a parameter file; the runner "
                         "passes the file itself to the notebooks that declare it")
    return params


def _where(params_path: Path) -> str:
    try:
        return _rel(output_dir(params_path)) + "/"
    except InputError:
        return "results/<name>/ for a file <name>.yaml"


def reserved_names() -> set[str]:
    """:data:`RESERVED` plus the top-level folders of the last complete default run (lower case)."""
    names = {n.lower() for n in RESERVED}
    info = _read_marker(RESULTS)
    if isinstance(info, dict) and isinstance(info.get("outputs"), list):
        names |= {str(n).lower() for n in info["outputs"]}
    return names


def output_dir(params_path: Path) -> Path:
    """``results/`` for this repository's params/default.yaml, ``results/<name>/`` for any
    other file ``<name>.yaml``; raises :class:`InputError` for a name that is not allowed."""
    p = Path(params_path)
    if p.resolve() == DEFAULT_PARAMS.resolve():
        return RESULTS
    if p.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"{p}: a parameter file must be named <name>.yaml; <name> becomes the "
                         "output folder results/<name>/")
    name = p.name[:-len(p.suffix)]
    if not NAME_RULE.match(name):
        raise InputError(f"{p}: the file name {name!r} cannot name an output folder: it must "
                         "start with a letter or digit and contain only letters, digits, '_' "
                         "and '-'; rename the file (e.g. params/my_case.yaml → results/my_case/)")
    reserved = reserved_names()
    if name.lower() in reserved:
        raise InputError(f"{p}: the name {name!r} is reserved (results/{name}/ belongs to the "
                         f"default run or another tool); rename the file. Reserved names: "
                         f"{', '.join(sorted(reserved))}")
    target = RESULTS / name
    root = RESULTS.resolve()
    if target.is_symlink() or target.resolve().parent != root:
        raise InputError(f"{p}: the output folder {_rel(target)} must be a plain folder inside "
                         f"{_rel(RESULTS)}/ (it is a link or lies outside); remove it or rename the file")
    return target


def check_unknown(params: dict, declared: dict[str, dict], source: str) -> None:
    """Every key of ``params`` is a parameter of :mod:`evsched.schema` (what the notebooks
    declare, ``declared``, is checked against the schema by tests/test_schema.py)."""
    from evsched.schema import FLAT, suggest

    unknown = sorted(set(params) - set(FLAT))
    if unknown:
        raise InputError(f"{source}: unknown parameter(s) {unknown}{suggest(unknown[0])}; "
                         f"`evsched params` lists the {len(FLAT)} parameters")


def validate(params_path: Path, params: dict, declared: dict[str, dict]) -> None:
    """Every key a parameter of :mod:`evsched.schema`; every value in its range and every
    cross-field rule, a key left out taking the schema's default (= params/default.yaml), the
    target day against the forecast history (:func:`evsched.case.load_case`); the buses on the
    feeder the ``network`` parameter names (:func:`evsched.feeders.load_network`). Raises
    :class:`InputError` naming the file."""
    from evsched.case import load_case
    from evsched.feeders import load_network
    from evsched.params import rewrite_source

    source = str(params_path)
    check_unknown(params, declared, source)
    case = load_case(params_path)
    with rewrite_source({"case parameter": f"{source}, case parameter", "network": f"{source}: network"}):
        case.check_network(load_network(case.network))


NOTEBOOK_SCOPES = {"networks": "network", "resolutions": "resolution_min"}
"""Notebook metadata ``evsched.<key>`` → the run parameter whose values it lists: a notebook
written for some values only (e.g. ``"networks": ["ieee33"]``, ``"resolutions": [60]``) is
skipped by a run with another value."""


def notebook_scope(nb: Path) -> dict[str, list]:
    """The run parameters a notebook is restricted to: ``{parameter: allowed values}`` from its
    metadata (:data:`NOTEBOOK_SCOPES`); empty if it runs with any value."""
    meta = json.loads(Path(nb).read_text(encoding="utf-8")).get("metadata", {})
    ev = meta.get("evsched") if isinstance(meta.get("evsched"), dict) else {}
    return {param: list(ev[key]) for key, param in NOTEBOOK_SCOPES.items() if isinstance(ev.get(key), list)}


def skip_reason(nb: Path, params: dict) -> str | None:
    """Why a run with ``params`` (its file's values; schema defaults for the rest) skips ``nb``,
    or None if it runs it."""
    from evsched.schema import info
    for param, allowed in notebook_scope(nb).items():
        value = params.get(param, info(param).default)
        if value not in allowed:
            return (f"written for {param} {' / '.join(map(str, allowed))} only "
                    f"(this run: {param} {value})")
    return None


# --------------------------------------------------------------------------- runs
def _read_marker(folder: Path):
    """The parsed ``run_info.json`` of ``folder``; None if absent; ``"unreadable"`` if broken."""
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return "unreadable"
    return info if isinstance(info, dict) else "unreadable"


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _same_file(recorded, params_path: Path) -> bool:
    if not isinstance(recorded, str) or not recorded:
        return False
    p = Path(recorded)
    p = p if p.is_absolute() else ROOT / p
    return p.resolve() == Path(params_path).resolve()


def check_target(target: Path, params_path: Path, params: dict, only) -> dict | None:
    """Refuse to overwrite another file's complete run; for ``--only`` require a complete run of
    the same parameters. Returns the existing run's ``run_info`` (or None)."""
    info = _read_marker(target)
    where = f"{_rel(target)}/"
    if info == "unreadable":
        raise InputError(f"{where}{COMPLETE_MARKER} is unreadable, so it is unknown which "
                         f"parameter file made {where}; delete {where} or rename {params_path}")
    if info is not None and target != RESULTS and not _same_file(info.get("params_file"), params_path):
        raise InputError(f"{where} already holds a complete run of {info.get('params_file')!r}, "
                         f"a different file than {params_path}; rename {params_path} (or delete "
                         f"{where} if that run is no longer needed)")
    if only:
        if info is None:
            raise InputError(f"--only {' '.join(only)}: {where} has no complete run (no "
                             f"{COMPLETE_MARKER}) to update; run the whole study first "
                             f"(python -m evsched.run_study {params_path})")
        if _canonical(info.get("parameters", None) or {}) != _canonical(params):
            old = info.get("parameters") or {}
            changed = sorted(k for k in set(old) | set(params)
                             if _canonical({k: old.get(k)}) != _canonical({k: params.get(k)}))
            raise InputError(f"--only {' '.join(only)}: the complete run in {where} was made with "
                             f"different parameters (differing: {', '.join(changed) or 'all'}); "
                             "re-running some notebooks would mix two parameter sets; run the "
                             f"whole study (python -m evsched.run_study {params_path})")
    return info


def execute(nb: Path, out_nb: Path, parameters: dict) -> None:
    """Execute one notebook with papermill (kernel 'evsched', working directory notebooks/)."""
    import papermill as pm
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(nb), str(out_nb), parameters=parameters, kernel_name=KERNEL,
                        cwd=str(NOTEBOOKS), progress_bar=False, log_output=False)


def _folders(target: Path) -> dict[str, Path]:
    """Staging, failed and replaced-run folders beside ``target`` (inside it for results/)."""
    if target == RESULTS:
        return {"staging": RESULTS / DEFAULT_STAGING, "failed": RESULTS / DEFAULT_FAILED,
                "replaced": RESULTS / DEFAULT_REPLACED}
    return {"staging": target.parent / f".staging-{target.name}",
            "failed": target.parent / f"{target.name}.failed",
            "replaced": target.parent / f".replaced-{target.name}"}


def run(params_path: Path, only: list[str] | None = None, out: Path | None = None) -> Path:
    """Run the notebooks; return the results folder.

    Raises :class:`InputError` (nothing written) for a bad parameter file or ``--only``,
    SystemExit(1) on a failed notebook; ``out`` overrides the output folder (tests).
    """
    import papermill as pm

    params_path = Path(params_path)
    params = load_params(params_path)
    target = Path(out) if out is not None else output_dir(params_path)
    all_nbs = notebooks()
    nbs = all_nbs
    if only:
        bad = [o for o in only if not o.strip()]
        if bad:
            raise InputError("--only needs notebook names (e.g. --only 04), got an empty one")
        nbs = [nb for nb in all_nbs if any(nb.stem.startswith(o) for o in only)]
        if not nbs:
            raise InputError(f"--only {' '.join(only)}: no notebook matches; have "
                             f"{[n.stem for n in all_nbs]}")
    declared = {nb.name: declared_parameters(nb) for nb in all_nbs}
    validate(params_path, params, declared)
    dirs = _folders(target)
    _recover(target, dirs)
    previous = check_target(target, params_path, params, only)

    staging = dirs["staging"]
    _remove(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    if only and target != RESULTS:  # start from the complete run; the re-run notebooks overwrite
        shutil.copytree(target, staging, symlinks=True,
                        ignore=lambda d, names: [COMPLETE_MARKER] if Path(d) == target else [])
    else:
        staging.mkdir()
    print(f"evsched: {params_path} → {_rel(target)}/ ({len(nbs)} notebook(s); staged in "
          f"{_rel(staging)}/ until all succeed)", flush=True)
    timings, skipped = {}, {}
    t_all = time.perf_counter()
    # the kernels inherit this: notebooks write where results_dir says, never into results/lab/
    # (evsched.figures.output_dir), and export PNGs
    os.environ["EVSCHED_BATCH_RUN"] = "1"
    # one forecast per run: evsched.forecast.day_ahead keeps its result here for the later
    # notebooks (a folder outside results/, removed when the run ends, however it ends)
    cache = Path(tempfile.mkdtemp(prefix="evsched-run-cache-"))
    previous_cache = os.environ.get(RUN_CACHE_ENV)
    os.environ[RUN_CACHE_ENV] = str(cache)
    try:
        for k, nb in enumerate(nbs, 1):
            why = skip_reason(nb, params)  # e.g. 00-02 on a SimBench feeder, an hourly-only study at 15 min
            if why:
                print(f"[{k}/{len(nbs)}] {nb.name} skipped: {why}", flush=True)
                timings[nb.name] = "skipped"
                skipped[nb.name] = why
                continue
            given = {key: val for key, val in params.items() if key in declared[nb.name]}
            given["results_dir"] = str(staging)
            if "params_file" in declared[nb.name]:  # notebooks that read the whole case from the file
                given["params_file"] = str(params_path.resolve())
            print(f"[{k}/{len(nbs)}] {nb.name} ...", end=" ", flush=True)
            t0 = time.perf_counter()
            try:
                execute(nb, staging / "notebooks" / nb.name, given)
            except pm.PapermillExecutionError as exc:
                print("FAILED", flush=True)
                failed = _keep_failed(dirs)
                print(f"\n{nb.name}: cell {exc.exec_count} raised {exc.ename}: {exc.evalue}\n"
                      f"--- failing cell ---\n{exc.source}\n--------------------\n"
                      f"The partial output is in {_rel(failed)}/ (executed notebook: "
                      f"{_rel(failed / 'notebooks' / nb.name)}); {_state(target)}",
                      file=sys.stderr, flush=True)
                raise SystemExit(1) from None
            except BaseException as exc:  # kernel missing, interrupted, ...: keep what was written
                print("FAILED" if not isinstance(exc, KeyboardInterrupt) else "INTERRUPTED", flush=True)
                failed = _keep_failed(dirs)
                hint = " (run `make setup` to register the 'evsched' kernel)" if "NoSuchKernel" in type(exc).__name__ else ""
                print(f"{nb.name}: {type(exc).__name__}: {exc}{hint}; partial output in {_rel(failed)}/; "
                      f"{_state(target)}", file=sys.stderr, flush=True)
                raise
            timings[nb.name] = round(time.perf_counter() - t0, 2)
            print(f"done in {timings[nb.name]:.1f} s", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if previous_cache is None:
            os.environ.pop(RUN_CACHE_ENV, None)
        else:
            os.environ[RUN_CACHE_ENV] = previous_cache

    info = {"params_file": _rel(params_path), "parameters": params,
            "notebooks": timings, "skipped": skipped, "partial_run": bool(only),
            "total_seconds": round(time.perf_counter() - t_all, 2),
            "python": platform.python_version(), "machine": platform.machine(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if only:
        old = previous.get("notebooks") if isinstance(previous.get("notebooks"), dict) else {}
        info["notebooks"] = {nb.name: timings.get(nb.name, old.get(nb.name)) for nb in all_nbs
                             if nb.name in timings or nb.name in old}
        info["rerun_notebooks"] = list(timings)
        old_skipped = previous.get("skipped") if isinstance(previous.get("skipped"), dict) else {}
        info["skipped"] = {nb.name: skipped.get(nb.name, old_skipped.get(nb.name)) for nb in all_nbs
                           if nb.name in skipped or (nb.name not in timings and nb.name in old_skipped)}
        info["previous_finished"] = previous.get("finished")
    try:
        with _no_interrupt():
            if target == RESULTS:
                _swap_default(dirs, info, merge=bool(only), previous=previous)
            else:
                _swap_folder(target, dirs, info)
    except InputError as exc:
        failed = _keep_failed(dirs)
        print(f"evsched: {exc}; the run's output is in {_rel(failed)}/; {_state(target)}",
              file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    print(f"evsched: study complete in {info['total_seconds']:.1f} s; results in {_rel(target)}/", flush=True)
    return target


def _swap_folder(target: Path, dirs: dict, info: dict) -> None:
    """Replace ``target`` by the staging folder: marker written into staging (last file), then
    two renames; the old run is deleted only after the new one is in place."""
    staging, replaced = dirs["staging"], dirs["replaced"]
    _check_staging(staging)
    _write_marker(staging, info)
    _remove(replaced)
    if target.exists() or target.is_symlink():
        os.replace(target, replaced)
    os.replace(staging, target)
    _remove(replaced)


def _swap_default(dirs: dict, info: dict, merge: bool, previous) -> None:
    """Move the default run's entries into results/ itself: only the entries it wrote are
    replaced (``merge``: file by file), never other runs' folders, README.md or bench/; the old
    marker is removed just before and the new one written last."""
    staging, replaced = dirs["staging"], dirs["replaced"]
    _check_staging(staging)
    entries = sorted(staging.iterdir())
    others = [e.name for e in entries if _foreign(e.name)]
    if others:
        raise InputError(f"the default run wrote {others} at the top of {_rel(RESULTS)}/, which "
                         "belong to other runs or tools; not replaced")
    outputs = sorted(e.name for e in entries)
    if merge and isinstance(previous, dict) and isinstance(previous.get("outputs"), list):
        outputs = sorted(set(outputs) | {str(n) for n in previous["outputs"]})
    info["outputs"] = outputs
    _remove(replaced)
    replaced.mkdir()
    (RESULTS / COMPLETE_MARKER).unlink(missing_ok=True)  # from here on results/ is not complete
    if merge:
        for src in sorted(p for p in staging.rglob("*") if p.is_file() or p.is_symlink()):
            dest = RESULTS / src.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(src, dest)
    else:
        for entry in entries:
            dest = RESULTS / entry.name
            if entry.name in SHARED_FOLDERS and entry.is_dir() and dest.is_dir() and not dest.is_symlink():
                (replaced / entry.name).mkdir(exist_ok=True)
                for child in sorted(entry.iterdir()):  # keep what other tools wrote beside ours
                    d = dest / child.name
                    if d.exists() or d.is_symlink():
                        os.replace(d, replaced / entry.name / child.name)
                    os.replace(child, d)
                continue
            if dest.exists() or dest.is_symlink():
                os.replace(dest, replaced / entry.name)
            os.replace(entry, dest)
    _write_marker(RESULTS, info)
    _remove(replaced)
    _remove(staging)


def _foreign(name: str) -> bool:
    """True for a top-level entry of results/ the default run must not replace."""
    if name in KEEP_IN_RESULTS or name.startswith(".") or name.endswith(".failed"):
        return True
    dest = RESULTS / name
    return (dest.is_dir() and name.lower() not in reserved_names()
            and (dest / COMPLETE_MARKER).exists())


def _check_staging(staging: Path) -> None:
    if (staging / COMPLETE_MARKER).exists():
        raise InputError(f"a notebook wrote {COMPLETE_MARKER}, the run's completion marker, "
                         "which only the runner may write")


def _write_marker(folder: Path, info: dict) -> None:
    tmp = folder / f".{COMPLETE_MARKER}.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str))
    os.replace(tmp, folder / COMPLETE_MARKER)


def _recover(target: Path, dirs: dict) -> None:
    """Undo a swap interrupted by a crash (the runner blocks Ctrl-C while swapping)."""
    replaced = dirs["replaced"]
    if not (replaced.exists() or replaced.is_symlink()):
        return
    if target != RESULTS and _read_marker(target) is None and _read_marker(replaced) is not None:
        _remove(target)
        os.replace(replaced, target)
        print(f"evsched: restored the previous complete run into {_rel(target)}/ (a swap was "
              "interrupted)", flush=True)
    else:
        _remove(replaced)


def _keep_failed(dirs: dict) -> Path:
    """Move a failed run's staging folder to the ``.failed`` folder (replacing an older one)."""
    staging, failed = dirs["staging"], dirs["failed"]
    _remove(failed)
    if staging.exists():
        (staging / COMPLETE_MARKER).unlink(missing_ok=True)  # never looks complete
        (staging / f".{COMPLETE_MARKER}.tmp").unlink(missing_ok=True)
        shutil.move(str(staging), str(failed))
    else:
        failed.mkdir(parents=True)
    return failed


def _state(target: Path) -> str:
    return (f"{_rel(target)}/ still holds the previous complete run (unchanged)."
            if isinstance(_read_marker(target), dict) else f"{_rel(target)}/ has no complete run.")


def _remove(path: Path) -> None:
    """Delete a file, link or folder tree if it exists (a link is removed, never followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@contextmanager
def _no_interrupt():
    """Ignore Ctrl-C (SIGINT) during the block, so that a swap is never cut in half (the run
    is complete once the block ends, so the interrupt is reported, not raised)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    old = signal.signal(signal.SIGINT, lambda *_: got.append(1))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if got:
            print("evsched: Ctrl-C ignored while the results were moved into place", file=sys.stderr)


def _rel(p: Path) -> str:
    """``p`` relative to this module's ROOT (tests point ROOT at a scratch repository)."""
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(Path(p).resolve())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m evsched.run_study", description=__doc__.split("\n\n", 1)[0],
        epilog="Output: params/default.yaml → results/; any other <name>.yaml → results/<name>/ "
               "(name: letters, digits, '_' or '-', not a reserved name: "
               f"{', '.join(sorted(RESERVED))}). A run is complete when run_info.json exists in its "
               "folder; a failed run leaves results/<name>.failed/ (results/.failed-default/). "
               "Exit status: 0 done, 1 a notebook failed, 2 bad input, 130 interrupted.")
    ap.add_argument("params", nargs="?", default="params/default.yaml",
                    help="YAML parameter file (default: params/default.yaml → results/)")
    ap.add_argument("--only", nargs="+", metavar="NB",
                    help="re-run only the notebooks whose file names start with NB (e.g. 04) in "
                         "the existing complete run of the same parameters; the other notebooks' "
                         "results and timings are kept")
    args = ap.parse_args(argv)
    try:
        run(Path(args.params), only=args.only)
    except InputError as exc:
        print(f"evsched: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("evsched: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
