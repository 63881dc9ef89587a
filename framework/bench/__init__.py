"""Performance measurement: timed training steps, FLOPs per sample, MFU, plain references.

``framework bench RECIPE`` (see :mod:`framework.commands.bench`) drives
:func:`framework.bench.runner.bench_recipe`; :mod:`framework.bench.analytic` gives
closed-form FLOP counts that cross-check ``torch.utils.flop_counter``.
"""
