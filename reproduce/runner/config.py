"""YAML configs: presets, command-line overrides, and the one typed path from a config section
to an object.

``configs/<benchmark>/<preset>.yaml`` holds every hyper-parameter. A preset may start with
``extends: other.yaml`` (resolved relative to itself); it is deep-merged over that file, so a
reduced preset lists exactly what it changes. Command-line overrides are ``dotted.key=value``
with YAML values (``optim.lr=0.01``, ``grid.rows=[...]``), applied last.

A config section becomes an object through :func:`build` (or is checked without building by
:func:`check_args`): every key must be a parameter of the class and its value must fit the
parameter's annotation, else an :class:`~datamodules._common.InputError` names the key and the
expected type, before anything is trained. Integers of the common count-like parameters must
also reach their smallest valid value (:func:`minimum`: sizes and counts at least 1, seeds and
``num_workers`` at least 0).

>>> from dataclasses import dataclass
>>> @dataclass
... class Data:
...     size: int = 9
...     lr: float = 0.1
>>> build(Data, {"size": 17, "lr": 1}, "data")
Data(size=17, lr=1.0)
>>> build(Data, {"size": "abc"}, "data")
Traceback (most recent call last):
...
datamodules._common.InputError: config data.size: expected int, got 'abc' (str)
>>> build(Data, {"size": 0}, "data")
Traceback (most recent call last):
...
datamodules._common.InputError: config data.size: expected an int >= 1, got 0
>>> build(Data, {"sise": 3}, "data")
Traceback (most recent call last):
...
datamodules._common.InputError: config data.sise: unknown key for Data; valid keys: lr, size
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from datamodules._common import InputError
from reproduce.runner import lazy

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
PRESETS = ("smoke", "cpu", "paper")


def deep_merge(base: dict, over: dict) -> dict:
    """Return ``base`` updated recursively by ``over`` (neither is modified)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load_yaml(path: Path) -> dict:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise InputError(f"malformed config {path}: {e}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise InputError(f"malformed config {path}: expected a mapping at the top level")
    return data


def load_file(path: Path, _seen: tuple = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    if path in _seen:
        raise InputError(f"config {path}: circular 'extends'")
    data = _load_yaml(path)
    parent = data.pop("extends", None)
    if parent:
        base = load_file(path.parent / parent, _seen + (path,))
        data = deep_merge(base, data)
    return data


def benchmark_names(trained: bool | None = None, config_root: Path = CONFIG_ROOT) -> list[str]:
    """The benchmarks, by name: every ``configs/<name>/`` with a ``paper.yaml``. ``trained=True``
    keeps those whose ``paper`` preset is a grid of training runs, ``False`` the measurements.

    >>> "tetris" in benchmark_names(trained=True) and "equivariance_sphere" in benchmark_names(trained=False)
    True
    """
    names = sorted(p.parent.name for p in Path(config_root).glob("*/paper.yaml"))
    if trained is None:
        return names
    return [n for n in names if ("grid" in load_preset(n, "paper", config_root)) == trained]


def load_preset(benchmark: str, preset: str, config_root: Path = CONFIG_ROOT) -> dict:
    if preset not in PRESETS:
        raise InputError(f"unknown preset '{preset}' for {benchmark}; valid presets are "
                         f"{', '.join(PRESETS)}")
    cfg = load_file(config_root / benchmark / f"{preset}.yaml")
    cfg["preset"] = preset
    cfg.setdefault("benchmark", benchmark)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise InputError(f"config override '{text}' must look like key.sub=value")
    key, value = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"config override '{text}': empty key")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise InputError(f"config override '{text}': value is not valid YAML") from None
    return key.split("."), parsed


#: sections whose keys are checked against the class they build (:func:`check_args`): an override
#: may set a key the YAML leaves at the class default; a typo there fails in that check
TYPED_SECTIONS = ("data", "models", "model", "optim", "trainer", "task")


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` overrides. Keys must already exist (typos fail loudly), except one new
    leaf inside an existing mapping of a :data:`TYPED_SECTIONS` section, which the typed check of
    the run then validates against its class."""
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        node = cfg
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                raise InputError(f"config override '{text}': no section "
                                 f"'{'.'.join(keys[:i + 1])}' in this config")
            node = node[k]
        if keys[-1] not in node and not (keys[0] in TYPED_SECTIONS and len(keys) > 1):
            raise InputError(f"config override '{text}': unknown key '{'.'.join(keys)}' "
                             f"(known here: {', '.join(sorted(node)) or 'none'})")
        node[keys[-1]] = value
    return cfg


def set_dotted(cfg: dict, dotted: dict) -> dict:
    """Deep-merge ``{'a.b': v}`` style overrides (used by grid rows); creates keys as needed."""
    out = copy.deepcopy(cfg)
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for k in parts[:-1]:
            node = node.setdefault(k, {})
        node[parts[-1]] = copy.deepcopy(value)
    return out


def config_hash(obj: Any, n: int = 10) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` → ``{'a.b': 1}``; lists and scalars are leaves.

    >>> flatten({"data": {"size": 9, "splits": [0, 1]}, "seed": 0})
    {'data.size': 9, 'data.splits': [0, 1], 'seed': 0}
    """
    if not isinstance(cfg, dict) or not cfg:
        return {prefix: cfg} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def diff(base: dict, other: dict) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in base, value in other)`` for every leaf that differs, in the order
    of ``base`` then the keys only ``other`` has; a missing leaf is :data:`MISSING`.

    A value that is a leaf on one side and a mapping on the other is one difference, whole:

    >>> diff({"data": {"size": 37, "zoom": 5}}, {"data": {"size": 17, "zoom": 5}, "x": 1})
    [('data.size', 37, 17), ('x', <missing>, 1)]
    >>> diff({"t": {"select": "last"}}, {"t": {"select": {"metric": "val/map", "mode": "max"}}})
    [('t.select', 'last', {'metric': 'val/map', 'mode': 'max'})]
    """
    a, b = flatten(base), flatten(other)
    keys = list(a) + [k for k in b if k not in a]
    out, done = [], set()
    for k in keys:
        # the shortest prefix of k that is a leaf on one side and a mapping on the other
        parts = k.split(".")
        whole = next((".".join(parts[:i]) for i in range(1, len(parts))
                      if ".".join(parts[:i]) in a or ".".join(parts[:i]) in b), None)
        if whole is None and (any(x.startswith(k + ".") for x in a) or any(x.startswith(k + ".") for x in b)):
            whole = k
        if whole is not None:
            if whole not in done:
                done.add(whole)
                out.append((whole, get(base, whole, MISSING), get(other, whole, MISSING)))
            continue
        if a.get(k, MISSING) != b.get(k, MISSING):
            out.append((k, a.get(k, MISSING), b.get(k, MISSING)))
    return out


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def get(cfg: dict, dotted: str, default: Any = ...) -> Any:
    node: Any = cfg
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            if default is ...:
                raise InputError(f"config for {cfg.get('benchmark', '?')}: missing key '{dotted}'")
            return default
        node = node[k]
    return node


# --------------------------------------------------------------------------- typed construction
def _type_name(hint: Any) -> str:
    if hint is None or hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(hint))
    if origin in (list, tuple, typing.Sequence, set):
        args = typing.get_args(hint)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin in (dict, typing.Mapping):
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the annotation ``hint`` (and converted where that is lossless:
    int → float, str → Path, numeric strings such as YAML's ``1e-3`` → float). Raises
    :class:`InputError` naming ``where`` and the expected type."""
    if hint is None or hint is Any or hint is inspect.Parameter.empty:
        return value
    if isinstance(hint, str):  # unresolved forward reference: nothing to check against
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        exact = [a for a in args if a is type(value) or typing.get_origin(a) is type(value)]
        for a in exact + [a for a in args if a not in exact and a is not type(None)]:
            try:
                return coerce(value, a, where)
            except InputError:
                pass
        raise InputError(f"config {where}: expected {_type_name(hint)}, got {_got(value)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise InputError(f"config {where}: expected one of {', '.join(repr(a) for a in args)}, "
                         f"got {_got(value)}")
    if origin in (list, tuple, typing.Sequence, set) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"config {where}: expected {_type_name(hint)}, got {_got(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):  # tuple[int, str]: positional
                raise InputError(f"config {where}: expected {len(args)} items, got {_got(value)}")
            return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else None
        out = [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple or hint is tuple else out
    if origin in (dict, typing.Mapping) or hint is dict:
        if not isinstance(value, dict):
            raise InputError(f"config {where}: expected a mapping, got {_got(value)}")
        if len(args) == 2:
            return {k: coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"config {where}: expected true or false, got {_got(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise InputError(f"config {where}: expected int, got {_got(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise InputError(f"config {where}: expected float, got {_got(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise InputError(f"config {where}: expected str, got {_got(value)}")
    if hint in (Path,) or (isinstance(hint, type) and issubclass(hint, Path)):
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
        raise InputError(f"config {where}: expected a path, got {_got(value)}")
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return build(hint, value, where)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise InputError(f"config {where}: expected {_type_name(hint)}, got {_got(value)}")
    return value


def minimum(key: str) -> int | None:
    """The smallest valid integer value of a parameter named ``key`` (None: no rule by name).
    Sizes, batch sizes, counts (``num_*``) and ``max_*`` at least 1; seeds (``seed``,
    ``*_seed``) and ``num_workers`` at least 0.

    >>> [minimum(k) for k in ("batch_size", "test_batch_size", "size", "num_classes", "seed", "num_workers", "lr")]
    [1, 1, 1, 1, 0, 0, None]
    """
    if key == "num_workers" or key == "seed" or key.endswith("_seed"):
        return 0
    if key == "size" or key.endswith("_size") or key.startswith(("num_", "max_")):
        return 1
    return None


def _check_minimum(key: str, value: Any, where: str) -> None:
    low = minimum(key)
    if low is not None and isinstance(value, int) and not isinstance(value, bool) and value < low:
        raise InputError(f"config {where}: expected an int >= {low}, got {value}")


def check_args(target, section: dict | None, where: str, given: dict | None = None) -> dict:
    """The keyword arguments ``target(**kwargs)`` would get from config ``section`` (at config
    path ``where``) plus the runner-supplied ``given`` ones, each value checked against the
    parameter's annotation. Unknown keys, missing required ones, a key that the runner supplies
    and wrong types are :class:`InputError`. Nothing is constructed (nor imported, for a
    ``"module:Name"`` target whose source says its parameters: :func:`~reproduce.runner.lazy.signature`)."""
    if section is not None and not isinstance(section, dict):
        raise InputError(f"config {where}: expected a mapping, got {_got(section)}")
    section = dict(section or {})
    given = dict(given or {})
    sig = lazy.signature(target)
    params, name = sig.params, sig.name
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        if key in given:
            raise InputError(f"config {where}.{key}: set by the runner for {name}, not by the config")
        if key not in params and not sig.var_kw:
            raise InputError(f"config {where}.{key}: unknown key for {name}; valid keys: "
                             f"{', '.join(sorted(k for k in params if k not in given)) or 'none'}")
        kwargs[key] = coerce(value, sig.hint(key) if key in params else None, f"{where}.{key}")
        _check_minimum(key, kwargs[key], f"{where}.{key}")
    for key, required in params.items():
        if required and key not in kwargs and key not in given:
            raise InputError(f"config {where}: missing key '{key}' "
                             f"({_type_name(sig.hint(key) or Any)}) for {name}")
    kwargs.update(given)
    return kwargs


def build(target, section: dict | None, where: str, **given):
    """``target(**check_args(target, section, where, given))`` (``target`` a class or function, or
    its ``"module:Name"``); a ``ValueError`` raised by the
    constructor for a bad value is re-raised as :class:`InputError` naming ``where``."""
    target = lazy.resolve(target)  # a "module:Name" is imported: what is built is checked against the class itself
    kwargs = check_args(target, section, where, given)
    try:
        return target(**kwargs)
    except InputError:
        raise
    except (ValueError, TypeError) as e:
        raise InputError(f"config {where}: {e}") from None
