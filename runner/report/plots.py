"""``report``'s plots, made with Bokeh: the tasks per node over time, the durations, the
nodes in use over time; and the page that embeds them with BokehJS inlined
(``bokeh.resources.INLINE``), so it needs no network to open.

Imported only when a report is made: Bokeh takes half a second to import, which no other
command of the runner should pay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from bokeh.embed import file_html
from bokeh.models import (
    BasicTicker,
    CDSView,
    ColumnDataSource,
    DataRange1d,
    DatetimeTickFormatter,
    FixedTicker,
    HoverTool,
    IndexFilter,
    Range1d,
)
from bokeh.plotting import figure
from bokeh.resources import INLINE
from bokeh.transform import factor_cmap

from runner.report import metrics
from runner.report.data import FAILED, RUNNING, SUCCEEDED

COLOURS = {SUCCEEDED: "#3b8f5a", FAILED: "#d1495b", RUNNING: "#e9a23b"}
OUTLINE = "#1b1f3b"
MAX_BINS = 60
TIME = "%Y-%m-%d %H:%M:%S.%3N"
"""How hover tooltips show a time (UTC)."""


def page(
    line: metrics.Timeline,
    present: set[str],
    title: str,
    template: str,
    variables: Mapping[str, Any],
) -> str:
    """The HTML page: ``template`` (a Jinja2 template extending Bokeh's own, which embeds
    the plots by name: ``timeline``, ``durations``, ``nodes``) with ``variables``, and
    BokehJS inlined. ``present``: the nodes the pool has now."""
    plots = [timeline_plot(line, present), histogram_plot(line.bars), nodes_plot(line.bars)]
    return file_html(
        plots, INLINE, title=title, template=template, template_variables=dict(variables)
    )


def _clock_axis(plot: Any) -> None:
    """Every tick of a time axis a clock time (Bokeh's own labels a sub-second tick
    ``0ms``, and a tick within a minute ``:37:42``)."""
    plot.xaxis.formatter = DatetimeTickFormatter(
        milliseconds="%H:%M:%S.%3N",
        seconds="%H:%M:%S",
        minsec="%H:%M:%S",
        minutes="%H:%M",
        hourmin="%H:%M",
        hours="%H:%M",
        context=None,
    )


def _ms(times: Iterable[datetime]) -> np.ndarray:
    """Times as Bokeh wants them on a datetime axis: milliseconds since the epoch."""
    return np.array([when.timestamp() * 1000.0 for when in times], dtype=np.float64)


def timeline_plot(line: metrics.Timeline, present: set[str]) -> figure:
    """``present``: the nodes the pool has now, to mark those that left it."""
    drawn = {SUCCEEDED: 0, RUNNING: 1, FAILED: 2}  # failed bars are drawn last, on top
    bars = sorted(line.bars, key=lambda bar: drawn[bar.task.outcome])
    rows = len(line.nodes)
    lanes = max((bar.lanes for bar in bars), default=1)
    height = 24 if rows > 30 else min(120, max(50, 26 * lanes))  # pixels a node's row
    source = ColumnDataSource(
        name="tasks",
        data={
            "task": [bar.task.task_id for bar in bars],
            "input": [bar.task.display_name for bar in bars],
            "node": [line.nodes[bar.row] for bar in bars],
            "outcome": [bar.task.outcome for bar in bars],
            "exit": ["" if bar.task.exit_code is None else str(bar.task.exit_code) for bar in bars],
            "left": _ms(bar.start for bar in bars),
            "right": _ms(bar.end for bar in bars),
            "bottom": np.array(
                [bar.row - 0.4 + 0.8 * bar.lane / bar.lanes for bar in bars], dtype=np.float64
            ),
            "top": np.array(
                [bar.row - 0.4 + 0.8 * (bar.lane + 1) / bar.lanes for bar in bars],
                dtype=np.float64,
            ),
            "duration": np.array([bar.seconds for bar in bars], dtype=np.float64),
            "retries": np.array([bar.task.retries for bar in bars], dtype=np.int32),
            "requeues": np.array([bar.task.requeues for bar in bars], dtype=np.int32),
        },
    )
    plot = figure(
        name="timeline",
        title="Tasks per node over time (a bar per task, from its start to its end; UTC)",
        x_axis_type="datetime",
        y_range=Range1d(start=max(rows, 1) - 0.5, end=-0.5),
        height=150 + max(rows, 1) * height,  # the title, toolbar, axis and legend: 150
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        active_drag="box_zoom",
        toolbar_location="above",
    )
    bars_renderer = plot.quad(
        left="left",
        right="right",
        bottom="bottom",
        top="top",
        source=source,
        fill_color=factor_cmap("outcome", list(COLOURS.values()), list(COLOURS)),
        line_color=factor_cmap("outcome", list(COLOURS.values()), list(COLOURS)),
        legend_field="outcome",
    )
    marked = [index for index, bar in enumerate(bars) if bar.task.retries or bar.task.requeues]
    if marked:
        plot.quad(
            left="left",
            right="right",
            bottom="bottom",
            top="top",
            source=source,
            view=CDSView(filter=IndexFilter(indices=marked)),
            fill_alpha=0,
            line_color=OUTLINE,
            line_width=1.5,
            legend_label="retried or requeued (outlined)",
        )
    plot.add_tools(
        HoverTool(
            renderers=[bars_renderer],
            tooltips=[
                ("task", "@task"),
                ("input", "@input"),
                ("node", "@node"),
                ("outcome", "@outcome"),
                ("start", f"@left{{{TIME}}}"),
                ("end", f"@right{{{TIME}}}"),
                ("duration", "@duration{0,0.000} s"),
                ("exit code", "@exit"),
                ("retries", "@retries"),
                ("requeues", "@requeues"),
            ],
            formatters={"@left": "datetime", "@right": "datetime"},
        )
    )
    _clock_axis(plot)
    plot.yaxis.ticker = FixedTicker(ticks=list(range(rows)))
    plot.yaxis.major_label_overrides = {
        index: node if node in present else f"{node} (left the pool)"
        for index, node in enumerate(line.nodes)
    }
    plot.ygrid.grid_line_color = None
    plot.yaxis.axis_label = "node"
    _legend_below(plot)
    return plot


def _legend_below(plot: figure) -> None:
    """The legend under the plot, in a row, where it hides no bar; a click hides a series."""
    legend = plot.legend[0]
    legend.orientation = "horizontal"
    legend.click_policy = "hide"
    legend.location = "center"
    plot.add_layout(legend, "below")


def histogram_plot(bars: Sequence[metrics.Bar]) -> figure:
    done = [bar for bar in bars if bar.task.outcome in (SUCCEEDED, FAILED)]
    seconds = np.array([bar.seconds for bar in done], dtype=np.float64)
    if len(seconds):
        edges = np.histogram_bin_edges(seconds, bins="auto")
        if len(edges) - 1 > MAX_BINS:
            edges = np.histogram_bin_edges(seconds, bins=MAX_BINS)
    else:
        edges = np.array([0.0, 1.0])
    ok = np.histogram([bar.seconds for bar in done if bar.task.outcome == SUCCEEDED], bins=edges)[0]
    bad = np.histogram([bar.seconds for bar in done if bar.task.outcome == FAILED], bins=edges)[0]
    source = ColumnDataSource(
        name="durations",
        data={
            "low": edges[:-1],
            "high": edges[1:],
            "succeeded": ok,
            "failed": bad,
            "stack": ok + bad,
        },
    )
    plot = figure(
        name="durations",
        title=f"Task durations ({len(done)} completed tasks, last attempt each)",
        height=300,
        y_range=DataRange1d(start=0),
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
    )
    succeeded = plot.quad(
        left="low", right="high", bottom=0, top="succeeded", source=source,
        fill_color=COLOURS[SUCCEEDED], line_color="white", legend_label="succeeded",
    )  # fmt: skip
    failed = plot.quad(
        left="low", right="high", bottom="succeeded", top="stack", source=source,
        fill_color=COLOURS[FAILED], line_color="white", legend_label="failed",
    )  # fmt: skip
    plot.add_tools(
        HoverTool(
            renderers=[succeeded, failed],
            tooltips=[
                ("duration", "@low{0,0.000} to @high{0,0.000} s"),
                ("succeeded", "@succeeded"),
                ("failed", "@failed"),
            ],
        )
    )
    plot.xaxis.axis_label = "seconds"
    plot.yaxis.axis_label = "tasks"
    _legend_below(plot)
    return plot


def nodes_plot(bars: Sequence[metrics.Bar]) -> figure:
    steps = metrics.nodes_over_time(bars)
    source = ColumnDataSource(
        name="nodes",
        data={
            "time": _ms(when for when, _ in steps),
            "nodes": np.array([count for _, count in steps], dtype=np.int32),
        },
    )
    plot = figure(
        name="nodes",
        title="Nodes in use by this job over time (from the task records; UTC)",
        x_axis_type="datetime",
        height=260,
        y_range=DataRange1d(start=0),
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
    )
    renderer = plot.step(x="time", y="nodes", source=source, mode="after", line_width=2)
    plot.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=[("from", f"@time{{{TIME}}}"), ("nodes", "@nodes")],
            formatters={"@time": "datetime"},
            mode="vline",
        )
    )
    _clock_axis(plot)
    plot.yaxis.axis_label = "nodes"
    plot.yaxis.ticker = BasicTicker(min_interval=1)
    plot.yaxis.minor_tick_line_color = None
    return plot
