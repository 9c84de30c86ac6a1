"""``report``: one self-contained HTML page about a job (see page.py): its data read from
the service (data.py), the figures (metrics.py), the cost (prices.py), the plots
(plots.py, Bokeh, imported only to draw a page)."""

from runner.report.page import default_path, render, write

__all__ = ["default_path", "render", "write"]
