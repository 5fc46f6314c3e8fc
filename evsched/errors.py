"""Exceptions a user can act on: each message names the file, row/id, field and allowed range."""
from __future__ import annotations


class EvschedError(Exception):
    """Base class of every error raised by evsched."""


class InputError(EvschedError, ValueError):
    """A user input (CSV, YAML, notebook parameter) breaks a documented rule.

    Build messages with :func:`input_error` so they always carry source, location, field,
    offending value and the rule.
    """


class NetworkDataError(InputError):
    """The network description (bus/line tables or a pandapower net) is not a valid radial feeder."""


class OptimisationError(EvschedError, RuntimeError):
    """A solve failed or was infeasible; the message says what was solved and what binds."""


class InexactRelaxationError(OptimisationError):
    """The SOC relaxation (or the AC power flow of its dispatch) disagrees with the exact
    power flow: the optimum is not a physical operating point. The message names the hours
    and branches where the cone is loose and what to try."""


def input_error(source: str, where: str, field: str, value, rule: str,
                cls: type[InputError] = InputError) -> InputError:
    """Build an error ``"<source>, <where>, field '<field>' = <value>: <rule>"``.

    Parameters
    ----------
    source : file name or object being read (e.g. ``"data/ieee33/lines.csv"``)
    where : row or id (e.g. ``"row 7 (line 7)"``)
    field : column or parameter name
    value : the offending value
    rule : the rule it breaks, with the allowed range
    """
    return cls(f"{source}, {where}, field '{field}' = {value!r}: {rule}")
