"""Classes and functions named ``"module:attr"``, imported only when a run builds them, and
their keyword parameters read from the source without importing it.

A benchmark declares its datamodule, backbones, task and report as such names
(``datamodule = "datamodules.tetris:TetrisDataModule"``), so that ``--list`` — which checks every
run's config against the parameters of the classes it would build
(:func:`reproduce.runner.config.check_args`) — imports neither Lightning nor torch. The
parameter list has one home, the class itself: :func:`read_signature` reads it from the class's
source (``__init__`` or dataclass fields, following imports and project base classes), and
:func:`resolve` imports the class when it is built. What the reader cannot follow (a base class
outside the project, a decorated ``__init__``, an annotation naming a class) is read from the
imported class instead: slower, never different (``tests/test_list_fast.py`` compares the two for
every declared class).

>>> sig = read_signature("reproduce.runner.launch:Select")
>>> sig.params, sig.var_kw, sig.hint("mode")
({'metric': True, 'mode': False}, False, typing.Literal['min', 'max'])
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import importlib
import importlib.machinery
import inspect
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


def is_ref(target: Any) -> bool:
    """Whether ``target`` is a ``"module:attr"`` name (else it is the object itself)."""
    return isinstance(target, str) and ":" in target


def resolve(target: Any) -> Any:
    """The object a ``"module:attr"`` name stands for (imported now); anything else as it is."""
    if not is_ref(target):
        return target
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def ref_name(target: Any) -> str:
    """``TetrisDataModule`` for ``"datamodules.tetris:TetrisDataModule"`` or the class itself."""
    if is_ref(target):
        return target.rpartition(":")[2].rpartition(".")[2]
    return getattr(target, "__name__", str(target))


class Lazy:
    """A class attribute declared as ``"module:attr"``: reading it imports the object
    (:class:`reproduce.runner.benchmark.Benchmark` wraps its declarations in it)."""

    def __init__(self, ref: str):
        self.ref = ref

    def __get__(self, obj, owner=None):
        return resolve(self.ref)

    def __repr__(self) -> str:
        return f"Lazy({self.ref!r})"


# --------------------------------------------------------------------------- reading the source
class Unreadable(Exception):
    """The source does not say it plainly: the imported object is read instead."""


@dataclass
class Signature:
    """The keyword parameters of a class or function: ``params`` maps each name to whether it is
    required (no default); ``var_kw`` whether it takes ``**kwargs``; :meth:`hint` a parameter's
    annotation, evaluated."""

    name: str
    params: dict[str, bool]
    var_kw: bool
    hint: Callable[[str], Any]


def _cheap(module: str) -> bool:
    """Modules imported for an annotation: the standard library and what is already imported."""
    return module in sys.modules or module.partition(".")[0] in sys.stdlib_module_names


@functools.lru_cache(maxsize=None)
def _module_file(module: str) -> Path | None:
    """The ``.py`` file of ``module``, found without importing it or its packages."""
    path, spec = None, None
    parts = module.split(".")
    for i in range(len(parts)):
        try:
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:i + 1]), path)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        path = spec.submodule_search_locations
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


class _Source:
    """A module's top-level bindings, from its syntax tree (``if``/``try`` blocks are not read)."""

    def __init__(self, module: str):
        path = _module_file(module)
        if path is None:
            raise Unreadable(f"no Python source for {module}")
        self.module = module
        self.package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        self.tree = ast.parse(path.read_text(), str(path))
        self.bindings: dict[str, tuple] = {}
        for stmt in self.tree.body:
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                self.bindings[stmt.name] = ("def", stmt)
            elif isinstance(stmt, ast.ImportFrom):
                base = self._absolute(stmt)
                for a in stmt.names:
                    self.bindings[a.asname or a.name] = ("from", base, a.name)
            elif isinstance(stmt, ast.Import):
                for a in stmt.names:
                    if a.asname:
                        self.bindings[a.asname] = ("import", a.name)
                    else:
                        top = a.name.partition(".")[0]
                        self.bindings[top] = ("import", top)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self.bindings[stmt.targets[0].id] = ("value", stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self.bindings[stmt.target.id] = ("value", stmt.value)

    def _absolute(self, stmt: ast.ImportFrom) -> str:
        if not stmt.level:
            return stmt.module or ""
        base = self.package
        for _ in range(stmt.level - 1):
            base = base.rpartition(".")[0]
        return f"{base}.{stmt.module}" if stmt.module else base

    def namespace(self) -> "_Namespace":
        return _Namespace(self)


@functools.lru_cache(maxsize=None)
def _source(module: str) -> _Source:
    return _Source(module)


def _find(module: str, name: str, depth: int = 0) -> tuple[_Source, tuple]:
    """The binding of ``name`` in ``module``, following ``from x import name`` re-exports."""
    if depth > 20:
        raise Unreadable(f"{module}:{name}: too many re-exports")
    src = _source(module)
    b = src.bindings.get(name)
    if b is None:
        raise Unreadable(f"{module} binds no {name} at its top level")
    if b[0] == "from":
        if _module_file(f"{b[1]}.{b[2]}") is not None and b[2] not in _source(b[1]).bindings:
            return src, ("module", f"{b[1]}.{b[2]}")
        return _find(b[1], b[2], depth + 1)
    if b[0] == "value" and isinstance(b[1], ast.Name):  # Alias = Original
        return _find(module, b[1].id, depth + 1)
    return src, b


class _Unresolved(Exception):
    pass


class _Namespace(Mapping):
    """A module's names as its annotations see them, without importing the module: standard
    library imports are imported, module-level type aliases evaluated; a name bound to a class or
    function of a module not yet imported is unresolved (:class:`_Unresolved`)."""

    def __init__(self, src: _Source):
        self.src = src

    def __getitem__(self, name: str) -> Any:
        b = self.src.bindings.get(name)
        if b is None:
            if hasattr(builtins, name):
                return getattr(builtins, name)
            raise KeyError(name)
        if self.src.module in sys.modules:  # imported already: its own value
            try:
                return getattr(sys.modules[self.src.module], name)
            except AttributeError:
                pass
        if b[0] == "import":
            if _cheap(b[1]):
                return importlib.import_module(b[1])
            raise _Unresolved(name)
        if b[0] == "from":
            if _cheap(b[1]):
                mod = importlib.import_module(b[1])
                try:
                    return getattr(mod, b[2])
                except AttributeError:
                    return importlib.import_module(f"{b[1]}.{b[2]}")
            try:
                src, found = _find(b[1], b[2])
            except Unreadable:
                raise _Unresolved(name) from None
            if found[0] == "value":
                return _evaluate(found[1], src)
            if found[0] == "def" and isinstance(found[1], ast.ClassDef):
                return _fields_only(found[1], src)
            raise _Unresolved(name)
        if b[0] == "value":
            return _evaluate(b[1], self.src)
        if b[0] == "def" and isinstance(b[1], ast.ClassDef):
            return _fields_only(b[1], self.src)
        raise _Unresolved(name)

    def __iter__(self):
        return iter(self.src.bindings)

    def __len__(self) -> int:
        return len(self.src.bindings)


def _evaluate(node: ast.expr | str, src: _Source) -> Any:
    text = node if isinstance(node, str) else ast.unparse(node)
    try:
        return eval(compile(text, f"<{src.module}>", "eval"), {"__builtins__": builtins}, src.namespace())
    except _Unresolved:
        raise
    except Exception as e:  # noqa: BLE001 - any failure: read the imported object instead
        raise _Unresolved(f"{text}: {e}") from None


_FIELDS_ONLY: dict[tuple[str, str], type] = {}


def _fields_only(cls: ast.ClassDef, src: _Source) -> type:
    """A dataclass that is nothing but typed fields (a config sub-section such as the stand-in's
    parameters), as an annotation sees it: a dataclass of the same name, fields, types and
    required fields, made from the source. It checks a config value as the class would (the same
    keys, types and required keys; nothing else runs in such a class); the object built from it is
    only checked, never used. Anything more (methods, ``__post_init__``, bases) is unresolved."""
    key = (src.module, cls.name)
    if key in _FIELDS_ONLY:
        return _FIELDS_ONLY[key]
    body = [s for s in cls.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if (cls.bases or cls.keywords or [_decorator_name(d) for d in cls.decorator_list] != ["dataclass"]
            or not all(isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) for s in body)):
        raise _Unresolved(cls.name)
    fields = []
    for name, (required, text, where) in _dataclass_fields(cls, src).items():
        hint = _evaluate(text, where) if text else Any
        fields.append((name, hint) if required else (name, hint, dataclasses.field(default=None)))
    made = dataclasses.make_dataclass(cls.name, fields)
    made.__module__, made.__doc__ = src.module, f"{cls.name}'s fields, read from the source of {src.module}"
    _FIELDS_ONLY[key] = made
    return made


def _annotation(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


_Params = dict  # name -> (required, annotation text, source the annotation is read in)


def _function_params(fn: ast.FunctionDef, src: _Source, method: bool) -> tuple[_Params, bool]:
    if fn.decorator_list:
        raise Unreadable(f"{fn.name} is decorated")
    a = fn.args
    positional = a.posonlyargs + a.args
    first_default = len(positional) - len(a.defaults)
    params: _Params = {}
    for i, arg in enumerate(positional):
        if i < len(a.posonlyargs) or (method and i == 0):
            continue  # positional-only parameters and ``self`` are not config keys
        params[arg.arg] = (i < first_default, _annotation(arg.annotation), src)
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        params[arg.arg] = (default is None, _annotation(arg.annotation), src)
    return params, a.kwarg is not None


def _dataclass_fields(cls: ast.ClassDef, src: _Source) -> _Params:
    params: _Params = {}
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        text = _annotation(stmt.annotation) or ""
        if text.startswith(("ClassVar", "typing.ClassVar")) or text in ("KW_ONLY", "dataclasses.KW_ONLY"):
            continue
        required = stmt.value is None
        if isinstance(stmt.value, ast.Call) and _decorator_name(stmt.value) == "field":
            kw = {k.arg: k.value for k in stmt.value.keywords}
            if isinstance(kw.get("init"), ast.Constant) and kw["init"].value is False:
                continue
            required = "default" not in kw and "default_factory" not in kw
        params[stmt.target.id] = (required, text, src)
    return params


def _class_params(cls: ast.ClassDef, src: _Source, depth: int = 0) -> tuple[_Params, bool]:
    if depth > 20 or cls.keywords:  # metaclass=...
        raise Unreadable(f"{cls.name}: not a plain class")
    names = [_decorator_name(d) for d in cls.decorator_list]
    if any(n != "dataclass" for n in names):
        raise Unreadable(f"{cls.name} has a decorator other than @dataclass")
    own = {s.name: s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if "__new__" in own or "__signature__" in own:
        raise Unreadable(f"{cls.name} defines __new__")
    if "__init__" in own:
        return _function_params(own["__init__"], src, method=True)
    bases = []
    for base in cls.bases:
        if not isinstance(base, ast.Name):
            raise Unreadable(f"{cls.name}: base {ast.unparse(base)} is not a project class")
        bsrc, b = _find(src.module, base.id)
        if b[0] != "def" or not isinstance(b[1], ast.ClassDef):
            raise Unreadable(f"{cls.name}: base {base.id} is not a class of the project")
        bases.append((bsrc, b[1]))
    if names:  # a dataclass: the fields of its dataclass bases, then its own
        params: _Params = {}
        for bsrc, bcls in reversed(bases):
            if "dataclass" not in [_decorator_name(d) for d in bcls.decorator_list]:
                raise Unreadable(f"{cls.name}: base {bcls.name} is not a dataclass")
            params.update(_class_params(bcls, bsrc, depth + 1)[0])
        params.update(_dataclass_fields(cls, src))
        return params, False
    if len(bases) > 1:
        raise Unreadable(f"{cls.name}: several base classes")
    if not bases:
        return {}, False
    return _class_params(bases[0][1], bases[0][0], depth + 1)


@functools.lru_cache(maxsize=None)
def read_signature(ref: str) -> Signature:
    """The keyword parameters of the class or function ``ref`` (``"module:Name"``) from its source.
    Raises :class:`Unreadable` where the source does not say it plainly."""
    module, _, name = ref.partition(":")
    if "." in name:
        raise Unreadable(f"{ref}: a nested name")
    src, b = _find(module, name)
    if b[0] != "def":
        raise Unreadable(f"{ref} is not a class or function")
    node = b[1]
    if isinstance(node, ast.ClassDef):
        params, var_kw = _class_params(node, src)
    else:
        params, var_kw = _function_params(node, src, method=False)
    table = dict(params)

    def hint(key: str) -> Any:
        try:
            return source_hint(table, key)
        except Unreadable:  # names a class of a module not imported: the imported object's annotation
            return live_signature(resolve(ref)).hint(key)

    hint.table = table  # for source_hint
    return Signature(name, {k: v[0] for k, v in params.items()}, var_kw, hint)


def source_hint(table_or_signature, key: str) -> Any:
    """The annotation of parameter ``key`` evaluated from the source alone (:func:`read_signature`'s
    signature or its table); :class:`Unreadable` when it names what only an import gives (a class
    of a module not imported, e.g. ``nn.Module``)."""
    table = getattr(getattr(table_or_signature, "hint", None), "table", table_or_signature)
    required, text, where = table[key]
    if text is None:
        return None
    try:
        return _evaluate(text, where)
    except _Unresolved as e:
        raise Unreadable(f"annotation of {key}: {e}") from None


def live_signature(target):
    """The keyword parameters of an imported class or function (:class:`Signature`)."""
    fn = target.__init__ if isinstance(target, type) else target
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(target if dataclasses.is_dataclass(target) else fn)
    except Exception:  # noqa: BLE001 - annotations that do not resolve are not checked
        hints = {}
    params = {n: p.default is inspect.Parameter.empty for n, p in sig.parameters.items() if n != "self"
              and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return Signature(getattr(target, "__name__", str(target)), params, var_kw, hints.get)


def signature(target):
    """The keyword parameters of ``target``: a class or function, or its ``"module:Name"`` (read
    from the source, nothing imported, unless the module is imported already or its source does
    not say it plainly)."""
    if is_ref(target):
        if target.partition(":")[0] not in sys.modules:
            try:
                return read_signature(target)
            except Unreadable:
                pass
        target = resolve(target)
    return live_signature(target)
