"""Typed, frozen configs built from nested dicts; unknown keys and wrong types are rejected.

Precedence when resolving a run: command line (``--set``) > config file > profile > defaults.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import reprlib
import textwrap
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from bench.errors import UserError, first_line
from bench.registry import unknown_name


def build(cls: type, values: dict[str, Any] | None, where: str = "") -> Any:
    """Builds dataclass ``cls`` from ``values``, checking every key and type.

    Raises:
        UserError: naming the dotted key that is unknown or has the wrong type.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UserError(f"config section '{where or 'top level'}' must be a mapping, got {short(values)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in values:
        if key not in fields:
            raise unknown_name("config key", _join(where, key), [_join(where, k) for k in fields])
    kwargs = {}
    for name in fields:
        if name in values:
            kwargs[name] = _coerce(hints[name], values[name], _join(where, name))
        elif dataclasses.is_dataclass(hints.get(name)) and fields[name].default is dataclasses.MISSING:
            kwargs[name] = build(hints[name], {}, _join(where, name))
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' must be a mapping, got {short(value)}")
        return build(tp, value, key)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise UserError(f"config key '{key}' must be one of {', '.join(map(str, choices))}; got {short(value)}")
        return value
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}' must be a list, got {short(value)}")
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key '{key}' must be true or false, got {short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key '{key}' must be an integer, got {short(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key '{key}' must be a number, got {short(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise UserError(f"config key '{key}' must be a finite number, got {short(value)}")
        return number
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # `--set method.csn_layers=2` reads 2 as a number
        if not isinstance(value, str):
            raise UserError(f"config key '{key}' must be a string, got {short(value)}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for '{key}'")


def merge(base: dict, override: dict) -> dict:
    """Deep merge: mappings merge key by key, anything else in ``override`` replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict:
    """Turns ``["train.lr=0.001", "method.shift=pre"]`` into a nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise UserError(f"--set has an empty key part in '{item}'")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set '{key}' conflicts with another --set")
        node[parts[-1]] = value
    return out


def parse_list(text: str | None, convert=str) -> list:
    """A comma-separated option's values; ``[None]`` where it was not given (one variant: the config's)."""
    if text is None:
        return [None]
    if not text.strip():
        return []
    items = [v.strip() for v in text.split(",")]
    if "" in items:
        raise UserError(f"the list '{text}' has an empty item")
    try:
        return [convert(v) for v in items]
    except ValueError:
        raise UserError(f"cannot read the list '{text}'") from None


def parse_names(option: str, text: str, convert=str) -> list:
    """The values of a comma-separated option that must name at least one; errors name the option."""
    try:
        values = parse_list(text, convert)
    except UserError as exc:
        raise UserError(f"{option}: {exc}") from None
    if not values:
        raise UserError(f"{option} names nothing: give a comma-separated list")
    return values


def parse_grid(items: tuple[str, ...] | list[str]) -> list[dict]:
    """Every combination of ``["method.inner_lr=0.01,0.03", "train.lr=[0.001]"]`` as nested override
    dicts, in order (the last key varies fastest). A value list is either comma-separated or a
    YAML list (``method.value_hidden=[[10,10],[40,40]]``, for values that hold commas)."""
    axes: list[tuple[str, list]] = []
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid expects key=value1,value2,..., got '{item}'")
        key, raw = (part.strip() for part in item.split("=", 1))
        if raw.startswith("["):
            try:
                values = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise UserError(f"--grid '{key}': cannot read the list '{raw}'") from None
        else:
            values = [v.strip() for v in raw.split(",")] if raw else []
            if "" in values:
                raise UserError(f"--grid '{key}': the list '{raw}' has an empty item")
            values = [parse_assignments([f"{key}={v}"]) for v in values]  # each value parsed as --set parses it
        if not isinstance(values, list) or not values:
            raise UserError(f"--grid '{key}' needs at least one value")
        if any(key == k for k, _ in axes):
            raise UserError(f"--grid sets '{key}' twice")
        axes.append((key, [v if isinstance(v, dict) else _nested(key, v) for v in values]))
    combos: list[dict] = [{}]
    for _, options in axes:
        combos = [merge(combo, option) for combo in combos for option in options]
    return combos


def _nested(key: str, value: Any) -> dict:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


MAX_CONFIG_BYTES = 2**20


def load_yaml(path: str | Path) -> dict:
    """Reads a YAML mapping of at most 1 MiB from a regular file; anything else (missing,
    too large, a device, binary, bad YAML) is a one-line UserError."""
    path = Path(path)
    try:
        if not path.is_file():
            raise UserError(f"config file not found: {path}" if not path.exists() else f"config file {path} is not a regular file")
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 2**20} MiB")
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read config file {path}: {first_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping at the top level")
    return data


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def short(value: Any) -> str:
    """A bounded repr: a few hundred bytes of YAML aliases can expand to gigabytes when printed."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an integer too long to print (Python refuses over 4300 digits)
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable value>"


# -- documentation generated from the dataclasses ---------------------------------------


@dataclass(frozen=True)
class KeyDoc:
    key: str
    type: str
    default: str
    doc: str


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of dataclass ``cls`` (empty where there is none)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            is_doc = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)
            text = " ".join(inspect.cleandoc(after.value.value).split()) if is_doc else ""
            docs[node.target.id] = text.replace("``", "`")  # reStructuredText literals as Markdown
    return docs


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(map(str, typing.get_args(tp)))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
    else:
        return "(required)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def describe(cls: type, prefix: str = "") -> list[KeyDoc]:
    """Every key of dataclass ``cls`` (nested dataclasses flattened to dotted keys) with its
    type, default and field docstring: the source of ``cli.py list --keys`` and docs/usage.md."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows: list[KeyDoc] = []
    for f in dataclasses.fields(cls):
        key = _join(prefix, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            rows += describe(hints[f.name], key)
        else:
            rows.append(KeyDoc(key, _type_name(hints[f.name]), _default_text(f), docs.get(f.name, "")))
    return rows


def keys_markdown(rows: list[KeyDoc]) -> str:
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{r.key}` | {cell(r.type)} | {cell(r.default)} | {cell(r.doc)} |" for r in rows]
    return "\n".join(lines) + "\n"


def keys_text(rows: list[KeyDoc]) -> str:
    """The rows for a terminal: each key with its type and default, its meaning beneath."""
    width = max(len(r.key) for r in rows)
    return "".join(f"{r.key:{width}s}  {r.type} = {r.default}\n{'':{width}s}  {r.doc}\n" for r in rows)
