"""What the measurement benchmarks (:mod:`reproduce.runner.measurement`) measure and how they report it.

* :mod:`~reproduce.measure.timing` — the timing helpers (medians after warm-up, paired timings, peak memory);
* ``speed_<section>`` — the sections of ``reproduce/speed.py``, each ``measure(quick, device) → (title, rows)``;
* :mod:`~reproduce.measure.deepsphere_pytorch` — the peer Chebyshev convolution (speed floor, test oracle);
* ``scaling_series`` — the layers ``reproduce/scaling.py`` grows and how a series is timed.

Their tables and figures are in ``reproduce/reports/<benchmark>.py``, as for every benchmark.
"""
