"""YAML configs with presets and command-line overrides.

``configs/<benchmark>/<preset>.yaml`` holds every hyper-parameter. A preset may start with
``extends: other.yaml`` (resolved relative to itself); it is deep-merged over that file, so a
reduced preset lists exactly what it changes. Command-line overrides are ``dotted.key=value``
with YAML values (``optim.lr=0.01``, ``grid.rows=[...]``), applied last.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from datamodules._common import InputError

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"
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


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` overrides. Keys must already exist (typos fail loudly)."""
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        node = cfg
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                raise InputError(f"config override '{text}': no section "
                                 f"'{'.'.join(keys[:i + 1])}' in this config")
            node = node[k]
        if keys[-1] not in node:
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


def get(cfg: dict, dotted: str, default: Any = ...) -> Any:
    node: Any = cfg
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            if default is ...:
                raise InputError(f"config for {cfg.get('benchmark', '?')}: missing key '{dotted}'")
            return default
        node = node[k]
    return node
