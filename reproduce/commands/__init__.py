"""A benchmark's own commands beside its grid (``Benchmark.add_arguments`` / ``Benchmark.command``):
their options (importable before torch, for ``--help``) and what they run."""
