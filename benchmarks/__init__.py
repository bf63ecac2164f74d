"""Fixative benchmarks: protection strength against baselines, speed and scale, GPU timing.

Run ``python -m benchmarks.run --size full`` to regenerate docs/benchmarks.md and its plots;
``--size small`` is the CI smoke run (same code paths, toy sizes).
"""
