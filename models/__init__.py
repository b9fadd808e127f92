"""equivariant-bench: models (see the README). The suite's three top-level packages must come from one install."""
import importlib.util as _util, os as _os  # the guard lives in models/_siblings.py, loaded by path
_spec = _util.spec_from_file_location("_equivariant_bench_siblings", _os.path.join(
    _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "models", "_siblings.py"))
_guard = _util.module_from_spec(_spec); _spec.loader.exec_module(_guard)
_guard.check_siblings(__file__, ('datamodules', 'reproduce')); del _util, _os, _spec, _guard
