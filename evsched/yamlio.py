"""A strict, safe YAML reader for parameter files (``params/*.yaml``).

:func:`load_yaml_mapping` is :func:`yaml.safe_load` with the traps of hand-written parameter
files turned into clear :class:`~evsched.errors.InputError` messages naming the file:

* a **duplicate key** is an error naming the key and both line numbers (YAML would silently
  keep the last value);
* **anchors and aliases** (``&a`` / ``*a``) and merge keys (``<<``) are refused: a parameter
  file never needs them, and nested aliases ("billion laughs") make the reader hang;
* an unquoted **date** (``target_day: 2016-12-07``) is accepted and returned as the ISO string
  ``"2016-12-07"`` (a timestamp as its ISO form), as the notebooks expect;
* the top level must be a mapping with string keys; an empty file is ``{}``;
* a missing, unreadable, binary (non UTF-8) or oversized file is an error.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from evsched.errors import InputError

MAX_BYTES = 1_000_000
"""Largest parameter file read [bytes] (the study's files are a few kB)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases/merge keys, with duplicate-key detection."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise RefusedYAML(f"alias '*{event.anchor}': anchors and aliases are not allowed "
                              "in parameter files (write each value out)", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise RefusedYAML(f"anchor '&{event.anchor}': anchors and aliases are not allowed "
                              "in parameter files (write each value out)", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise RefusedYAML("merge key '<<': merge keys are not allowed in parameter "
                                  "files (write each key out)", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise RefusedYAML(f"every parameter name must be text, got a "
                                  f"{type(key).__name__}", key_node.start_mark) from None
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _construct_timestamp(loader, node):
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise RefusedYAML(f"{node.value!r} is not a valid date ({exc})", node.start_mark) from None


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


class RefusedYAML(yaml.YAMLError):
    """Valid YAML that a parameter file may not use (anchors, aliases, merge keys)."""

    def __init__(self, message: str, mark):
        super().__init__(message)
        self.message, self.line = message, mark.line + 1


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, first_line: int, second_line: int):
        super().__init__(f"duplicate key {key!r}: first on line {first_line}, again on line "
                         f"{second_line} (YAML would silently keep the second value; keep one)")
        self.key, self.first_line, self.second_line = key, first_line, second_line


def _plain(value):
    """Dates → ISO strings, recursively through lists and mappings."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read_text(path: str | Path, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path`` (a BOM is dropped); clear errors for unreadable files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: parameter file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path}: {size} bytes is too large for a parameter file "
                             f"(at most {max_bytes})")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise InputError(f"{path}: not a text file (contains NUL bytes); a parameter file is "
                         "UTF-8 YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); a parameter file is "
                         "UTF-8 YAML text") from None


def load_yaml_mapping(path: str | Path) -> dict:
    """Read a YAML parameter file: a mapping ``name: value`` with string names.

    Raises :class:`InputError` naming the file (and line) for every problem listed in the
    module docstring.
    """
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 — StrictLoader is a SafeLoader
    except DuplicateKeyError as exc:
        lines = (f"twice on line {exc.first_line}" if exc.first_line == exc.second_line
                 else f"on lines {exc.first_line} and {exc.second_line}")
        raise InputError(f"{path}: duplicate key {exc.key!r} {lines}; keep only one (YAML "
                         "would silently use the last)") from None
    except RefusedYAML as exc:
        raise InputError(f"{path}, line {exc.line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        where = f", line {exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise InputError(f"{path}{where}: not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level must be a mapping 'name: value', got a "
                         f"{type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise InputError(f"{path}: every parameter name must be text, got {bad[0]!r} "
                         f"({type(bad[0]).__name__}); quote it or fix the line")
    return _plain(data)
