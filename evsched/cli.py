"""The ``evsched`` command line.

Subcommands::

    evsched fleet [--seed N] [--n-evs N] [--out FILE] [distribution options]
        write a generated fleet of EV reservations (CSV, schema of evsched.reservations)
    evsched validate FILE [--skip-bad] [--station-buses 14,22,30] [--report FILE]
        check a reservation file; print every rejected row and the accepted/rejected counts
    evsched sweep SPEC.yaml [--workers N] [--scheduler ADDRESS] [--out DIR] [--resume]
        run a parameter sweep (evsched.sweep) on dask.distributed → DIR/cases.csv
    evsched params [--yaml | --write | --check]
        print every study parameter (evsched.schema) / a complete default YAML / regenerate
        params/default.yaml and the notebooks' parameters cells / check that they are current

Exit status: 0 success; 1 a rejected row or an input error (the message names file, row,
field, value and rule); 2 a usage error (argparse). New subcommands register a parser in
:data:`SUBCOMMANDS` with a ``func(args) -> int``.

Output files (``--out``, ``--report``) are never written into a folder that does not exist
(evsched creates no folders: a typo would otherwise scatter files), never onto the input file,
and never onto a directory; each case is refused before any work is done. The ``--report``
CSV is spreadsheet-safe: a cell that a spreadsheet would run as a formula (``= + - @``) gets a
leading apostrophe (:meth:`evsched.reservations.ValidationReport.rejected_for_csv`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from evsched.errors import InputError


def _buses(text: str) -> tuple:
    try:
        buses = tuple(int(b) for b in text.replace(" ", "").split(",") if b)
    except ValueError:
        buses = ()
    if not buses:
        raise argparse.ArgumentTypeError(f"expected comma-separated bus ids like 14,22,30, got {text!r}")
    return buses


def check_output_file(path, option: str, inputs=()) -> Path:
    """Refuse an output path in a missing folder, onto a directory or onto an input file."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {path}: is a directory; give the name of the CSV file to write")
    if not p.parent.is_dir():
        what = "is not a folder" if p.parent.exists() else "does not exist"
        raise InputError(f"{option} {path}: folder {p.parent} {what}; create it first "
                         "(evsched creates no folders)")
    for src in inputs:
        if p.exists() and Path(src).exists() and p.resolve() == Path(src).resolve():
            raise InputError(f"{option} {path}: is the input file; choose another name "
                             "(writing it would overwrite the input)")
    return p


def _read_tou(path):
    """The ``--tou`` table, or :class:`InputError` naming the file."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        raise InputError(f"--tou {path}: is a directory, not a TOU CSV file")
    if not p.exists():
        raise InputError(f"--tou {path}: file not found")
    try:
        return pd.read_csv(p)
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(f"--tou {path}: cannot be read as a CSV table "
                         f"(hour, period, price_per_kwh): {exc}") from None


# --- evsched fleet --------------------------------------------------------------------------
_FLEET_OPTIONS = {  # CLI option → FleetConfig field (others: same name with '-' → '_')
    "seed": "fleet_seed",
}


def _add_fleet(sub) -> None:
    from evsched.fleet import FleetConfig

    p = sub.add_parser("fleet", help="write a generated (seeded) fleet of EV reservations to CSV",
                       description="Generate the EV reservations of evsched.fleet.generate_fleet "
                                   "(defaults: the paper's 500 EVs x 50 kWh) and write them as CSV.")
    p.add_argument("--out", default="-", help="output CSV file ('-' = standard output, the default)")
    p.add_argument("--seed", type=int, help="random seed (default %d)" % FleetConfig.fleet_seed)
    p.add_argument("--tou", help="TOU table CSV (hour, period, price_per_kwh): its peak hours "
                                 "decide who may offer V2G (default: placeholder peak hours)")
    p.add_argument("--station-buses", type=_buses, help="comma-separated station bus ids "
                                                        "(default 14,22,30)")
    skip = {"fleet_seed", "station_buses", "peak_hours"}
    for f in fields(FleetConfig):
        if f.name in skip:
            continue
        kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str}.get(f.type, str)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, dest=f.name,
                       help=f"(default {f.default!r})")
    p.set_defaults(func=_cmd_fleet)


def _cmd_fleet(args) -> int:
    from evsched.fleet import FleetConfig, fleet_summary, generate_fleet, write_fleet
    from evsched.network import load_ieee33

    params = {f.name: getattr(args, f.name) for f in fields(FleetConfig)
              if getattr(args, f.name, None) is not None}
    if args.seed is not None:
        params["fleet_seed"] = args.seed
    cfg = FleetConfig.from_params(source="evsched fleet options", **params)
    if args.out != "-":
        check_output_file(args.out, "--out", inputs=[args.tou] if args.tou else [])
    tou = _read_tou(args.tou) if args.tou else None
    fleet = generate_fleet(load_ieee33(), cfg, tou=tou)
    try:
        write_fleet(fleet, sys.stdout if args.out == "-" else args.out)
    except OSError as exc:
        raise InputError(f"--out {args.out}: cannot be written ({exc.strerror or exc})") from None
    where = "standard output" if args.out == "-" else args.out
    print(f"wrote {len(fleet)} reservations to {where} (seed {cfg.fleet_seed}); EVs per station "
          f"and mode:\n{fleet_summary(fleet).to_string()}", file=sys.stderr)
    return 0


# --- evsched validate -----------------------------------------------------------------------
def _add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check a reservation CSV; exit 1 if any row is rejected",
                       description="Validate every row of an EV reservation file against the "
                                   "schema (evsched.reservations). By default stop at the first "
                                   "bad row; with --skip-bad report every bad row.")
    p.add_argument("file", help="reservation CSV")
    p.add_argument("--skip-bad", action="store_true",
                   help="check every row, report each rejected one, keep the good ones")
    p.add_argument("--station-buses", type=_buses, default=None,
                   help="comma-separated station bus ids (default 14,22,30)")
    p.add_argument("--report", help="write the rejected rows (row, ev_id, field, value, reason) to "
                                    "this CSV (its folder must exist; never the input file)")
    p.set_defaults(func=_cmd_validate)


def _cmd_validate(args) -> int:
    from evsched.fleet import DEFAULT_STATION_BUSES
    from evsched.network import load_ieee33
    from evsched.reservations import check_station_buses, validate_reservations

    net = load_ieee33()
    stations = DEFAULT_STATION_BUSES if args.station_buses is None else args.station_buses
    check_station_buses(net, stations, "evsched validate --station-buses")
    if args.report:
        check_output_file(args.report, "--report", inputs=[args.file])
    on_error = "skip" if args.skip_bad else "raise"
    try:
        rep = validate_reservations(args.file, net, stations, on_error=on_error)
    except InputError as exc:
        row, n = getattr(exc, "row", None), getattr(exc, "n_rows", None)
        if row is None:  # the file itself (not one row) is unusable: --skip-bad cannot help
            raise
        print(f"rejected: {exc}", file=sys.stderr)
        print(f"{args.file}: stopped at the first rejected row (row {row} of {n}: {row - 1} "
              "accepted before it, 1 rejected); use --skip-bad to check every row", file=sys.stderr)
        return 1
    for note in rep.notes:
        print(note, file=sys.stderr)
    for m in rep.messages():
        print(f"rejected: {m}", file=sys.stderr)
    if args.report:
        try:
            rep.rejected_for_csv().to_csv(args.report, index=False, lineterminator="\n")
        except OSError as exc:
            raise InputError(f"--report {args.report}: cannot be written ({exc.strerror or exc})") from None
    print(rep.summary())
    return 0 if rep.ok else 1


# --- evsched sweep --------------------------------------------------------------------------
def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run a parameter sweep (cases × scenarios) on dask.distributed",
                       description="Validate every case of a sweep spec (YAML: base, set, grid, zip, "
                                   "days, scenarios; see evsched.sweep), then run S0-S3 per case and "
                                   "write DIR/cases.csv (one row per case × scenario).")
    p.add_argument("spec", help="sweep spec YAML (e.g. params/sweeps/year.yaml)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of a local dask cluster, 1 thread each (default: one per "
                        "core); 0 = run in this process without dask")
    p.add_argument("--scheduler", default=None,
                   help="address of a running dask scheduler (tcp://host:port) to submit to instead")
    p.add_argument("--out", default=None, help="output folder (default results/sweeps/<spec name>/)")
    p.add_argument("--resume", action="store_true",
                   help="continue DIR/cases.csv: skip the cases already there")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args) -> int:
    from evsched.sweep import run_sweep

    if args.workers is not None and args.scheduler:
        raise InputError("--workers and --scheduler exclude each other (the scheduler's cluster "
                         "has its own workers)")
    if args.out is not None and not Path(args.out).resolve().parent.is_dir():
        raise InputError(f"--out {args.out}: folder {Path(args.out).parent} does not exist; create it "
                         "first (evsched creates no folders)")
    try:
        run_sweep(args.spec, args.out, workers=args.workers, scheduler=args.scheduler,
                  resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("evsched sweep: interrupted; the finished cases are in cases.csv (continue with "
              "--resume)", file=sys.stderr)
        return 130
    return 0


# --- evsched params (evsched.schema) --------------------------------------------------------
def _add_params(sub) -> None:
    from evsched.schema import add_params_command
    add_params_command(sub)


SUBCOMMANDS = {"fleet": _add_fleet, "validate": _add_validate, "sweep": _add_sweep,
               "params": _add_params}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="evsched", description="Scheduled EV charging/discharging "
                                 "with coordinated active and reactive power (evsched).")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS.values():
        add(sub)
    return ap


def main(argv=None) -> int:
    """Entry point of the ``evsched`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FileNotFoundError as exc:
        print(f"evsched {args.command}: {exc.filename}: file not found", file=sys.stderr)
        return 1
    except OSError as exc:  # permission denied, a directory, ...: no traceback
        print(f"evsched {args.command}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except InputError as exc:
        print(f"evsched {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
