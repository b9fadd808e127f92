"""The import guard of the suite's three top-level packages (``models``, ``datamodules``, ``reproduce``).

Each package's ``__init__`` loads this file by path (the name ``models`` may be the hidden one) and
calls :func:`check_siblings` with the two other names."""
from __future__ import annotations


def check_siblings(here: str, names: tuple[str, ...]) -> None:
    """equivariant-bench installs three top-level packages, ``models``, ``datamodules`` and
    ``reproduce``, side by side. A module or package of one of these names found earlier on
    ``sys.path`` (a ``models.py`` or ``models/`` in the current folder of a notebook or
    ``python -c``) would hide the suite's and fail later, or mix the two, so it is refused here,
    at import, with one message naming both. ``python reproduce/<benchmark>.py`` puts the script's
    folder, not the current one, first on the path: it never meets such a module."""
    import importlib.util
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(here)))
    for name in names:
        ours = os.path.join(root, name)
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        where = [] if spec is None else list(spec.submodule_search_locations or [spec.origin or "?"])
        if spec is None or not any(os.path.abspath(w) == ours for w in where):
            found = ", ".join(str(w) for w in where) or "nothing"
            raise ImportError(f"equivariant-bench: the top-level name '{name}' resolves to {found}, not to "
                              f"the suite's {ours}: a module or package named '{name}' earlier on sys.path "
                              f"(the current folder or PYTHONPATH) hides it; rename that one or work from "
                              f"another folder")

