"""Figures. Drawing functions take a matplotlib Axes and return it; functions that make a whole
figure write a PNG atomically and return its path.

- `grok.plots.base`: `save_figure`, `panel_grid` and `plot_metric`, the one line of a metric over
  time: the mean over members with a min–max band.
- `grok.plots.run`: a run's history, one function per panel (accuracy, loss, the probe families),
  and `plot_run`, the multi-panel figure of `grok plot`.
- `grok.plots.phase`: phase diagrams [D] and heat maps of a sweep (`grok phase`).
- `grok.plots.compare`: steps to a test-accuracy threshold per method of a sweep (`grok compare`).
- `grok.plots.prune`: accuracy against the fraction of neurons pruned (`grok prune`) [D].
- `grok.plots.reproduce`: the figures of `grok reproduce`.
- `grok.plots.demo`: the figure of `grok demo`.

This package and `grok.plots.reproduce` (which `grok.reproduce` imports for its catalogue) load
matplotlib only when a figure is drawn; the other modules load it when imported.
"""
