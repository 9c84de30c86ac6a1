"""``report``: one self-contained HTML page about a job, for people to look at.

The page holds its data and BokehJS itself (``bokeh.resources.INLINE``), so it opens
with no network: no CDN, font or image is fetched. It shows a summary, the tasks per
node over time (a bar per task, coloured by outcome, retried or requeued ones outlined;
hovering one shows its record), the distribution of task durations, the nodes running
the job's tasks over time, the slowest tasks, the failed tasks with their exit codes and
the tail of their stderr, the bytes in and out, and an estimated cost.

Everything on it comes from the Batch service's records and storage listings
(runner/report/data.py), so a report can be made for a job submitted elsewhere; the
figures are computed in runner/report/metrics.py, the cost in runner/report/prices.py,
and the plots drawn in runner/report/plots.py. This module writes the page around them.
"""

from __future__ import annotations

import html
import os
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from runner.clients import Clients
from runner.fetch import destination
from runner.report import metrics, prices
from runner.report.data import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    WAITING,
    ReportData,
    StderrTail,
    fetch,
)
from runner.safe_text import printable

SLOWEST = 10
OTHER_FAILED_LISTED = 500
"""Failed tasks beyond those shown with their stderr are listed this far, a line each."""


def default_path(job_id: str, out: Path | None = None) -> Path:
    """Next to the job's results: ``results/<job-id>/report.html``, or in ``out`` (the
    results folder a submit or wait was given)."""
    return destination(job_id, out) / "report.html"


def write(
    clients: Clients,
    job_id: str,
    path: Path | None = None,
    price_per_node_hour: float | None = None,
) -> Path:
    """Read the job's records, write its report to ``path`` (by default next to its
    results) and return the path. The file is written whole under a temporary name and
    renamed, so a reader never sees half a page. Raises ResourceNotFoundError when there
    is no such job."""
    target = path or default_path(job_id)
    page = render(fetch(clients, job_id), price_per_node_hour)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        temporary.write_text(page, encoding="utf-8")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def render(data: ReportData, price_per_node_hour: float | None = None) -> str:
    """The whole page, as a string."""
    line = metrics.timeline(data.tasks, data.generated)
    node_time = metrics.node_time(line.bars)
    cost = prices.estimate(node_time.span_hours, data.job.vm_size, price_per_node_hour)
    sections = {
        "summary": _summary(data, line, node_time),
        "slowest": _slowest(metrics.slowest(line.bars, SLOWEST)),
        "failed": _failed(data),
        "cost": _cost(cost, node_time, data.job.vm_size),
    }
    from runner.report import plots  # Bokeh: imported only to make a report

    return plots.page(
        line,
        {node.node_id for node in data.nodes},
        title=f"Job {data.job.job_id}: report",
        template=_TEMPLATE,
        variables={"job": _e(data.job.job_id), **sections},
    )


# --- the HTML around the plots ----------------------------------------------------------


def _e(value: object) -> str:
    """HTML text of a value; what came from files (names, stderr) with controls escaped."""
    return html.escape(printable(str(value)), quote=True)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:,.3f} s"
    minutes, rest = divmod(value, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h {minutes:02d}m {rest:04.1f}s" if hours else f"{minutes}m {rest:04.1f}s"


def _bytes(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:,.1f} {unit} ({size:,} bytes)"
        value /= 1024
    return f"{value:,.1f} TiB ({size:,} bytes)"


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(key)}</th><td>{value}</td></tr>" for key, value in rows)


def _summary(data: ReportData, line: metrics.Timeline, node_time: metrics.NodeTime) -> str:
    job = data.job
    counts = Counter(task.outcome for task in data.tasks)
    retried = sum(1 for task in data.tasks if task.retries)
    requeued = sum(1 for task in data.tasks if task.requeues)
    waiting_again = sum(
        1 for task in data.tasks if task.outcome == WAITING and (task.retries or task.requeues)
    )
    started = [bar.start for bar in line.bars]
    ended = [bar.end for bar in line.bars]
    spread = (max(ended) - min(started)).total_seconds() if started else None
    stats = metrics.durations(
        [bar.seconds for bar in line.bars if bar.task.outcome in (SUCCEEDED, FAILED)]
    )
    pool = _e(job.pool_id or "-")
    if job.vm_size:
        pool += f" ({_e(job.vm_size)}, {job.slots_per_node or 1} task slots a node)"
    elif job.pool_id:
        pool += " (the pool is gone: its VM size is unknown)"
    outcome_counts = ", ".join(
        f'<span class="badge {name}">{counts.get(name, 0):,} {name}</span>'
        for name in (SUCCEEDED, FAILED, RUNNING, WAITING)
    )
    waiting_note = f" ({waiting_again:,} waiting to run again)" if waiting_again else ""
    results = data.results
    rows = [
        ("job", f"{_e(job.job_id)} ({_e(job.state)})"),
        ("pool", pool),
        ("created", _e(_when(job.created))),
        ("ended", _e(_when(job.ended)) if job.ended else "not yet"),
        ("tasks", f"{len(data.tasks):,}: {outcome_counts}{_e(waiting_note)}"),
        (
            "retried, requeued",
            f"{_count(retried, 'task', 'tasks')} retried, {requeued:,} requeued",
        ),
        (
            "first start to last end",
            _e(_seconds(spread)) + (" (so far)" if counts.get(RUNNING) else ""),
        ),
        (
            "task durations",
            _e(
                f"median {_seconds(stats.median)}, 95th percentile {_seconds(stats.p95)}, "
                f"longest {_seconds(stats.longest)}, {_seconds(stats.total)} in all"
            )
            if stats.count
            else "no task has completed",
        ),
        ("nodes used", f"{node_time.nodes:,}"),
        ("bytes in", _bytes_in(data)),
        (
            "bytes out",
            _e(
                f"{_bytes(results.size)} in {results.count:,} result blobs "
                f"({results.container}/{results.prefix})"
            ),
        ),
        ("report made", _e(_when(data.generated))),
    ]
    return f"<table class='summary'>{_rows(rows)}</table>"


def _bytes_in(data: ReportData) -> str:
    """What the job was submitted with (recorded at submit), and what of it is still in
    the input container: a job's uploaded inputs are removed once it succeeds."""
    inputs = data.inputs
    stored = _e(f"{inputs.count:,} input blobs ({inputs.container}/{inputs.prefix})")
    if data.submitted is None:  # a job the runner did not record: the listing alone
        return _e(f"{_bytes(inputs.size)} in ") + stored
    count, size = data.submitted
    submitted = _e(f"{_bytes(size)} in {_count(count, 'input', 'inputs')}")
    if inputs.count:
        return f"{submitted}; {stored} still stored"
    return (
        f"{submitted}; none still stored: uploaded inputs are removed once the job succeeds "
        "(<code>--keep-inputs</code> keeps them), and inputs given with <code>--blobs</code> "
        "are read where they are"
    )


def _task_cells(bar: metrics.Bar) -> str:
    task = bar.task
    return (
        f"<td><code>{_e(task.task_id)}</code></td><td>{_e(task.display_name)}</td>"
        f"<td><code>{_e(task.node_id or '-')}</code></td>"
    )


def _slowest(bars: Sequence[metrics.Bar]) -> str:
    if not bars:
        return "<p>No task has started.</p>"
    header = (
        "<tr><th>task</th><th>input</th><th>node</th><th>duration</th><th>outcome</th>"
        "<th>exit code</th><th>retries</th><th>requeues</th></tr>"
    )
    rows = "".join(
        f"<tr>{_task_cells(bar)}<td class='num'>{_e(_seconds(bar.seconds))}"
        f"{' (running)' if bar.task.outcome == RUNNING else ''}</td>"
        f"<td><span class='badge {bar.task.outcome}'>{bar.task.outcome}</span></td>"
        f"<td class='num'>{_e(_exit(bar.task.exit_code))}</td>"
        f"<td class='num'>{bar.task.retries}</td><td class='num'>{bar.task.requeues}</td></tr>"
        for bar in bars
    )
    return f"<table class='tasks' id='slowest-tasks'>{header}{rows}</table>"


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def _exit(code: int | None) -> str:
    return "-" if code is None else str(code)


def _stderr(stderr: StderrTail) -> str:
    if stderr.source is None:
        return "<p class='muted'>stderr: not available (no uploaded log, and no node has it)</p>"
    if not stderr.lines:
        return f"<p class='muted'>stderr ({_e(stderr.source)}): empty</p>"
    return (
        f"<p class='muted'>last lines of stderr ({_e(stderr.source)}):</p>"
        f"<pre>{_e(chr(10).join(stderr.lines))}</pre>"
    )


def _failed(data: ReportData) -> str:
    failed = [task for task in data.tasks if task.outcome == FAILED]
    if not failed:
        return "<p>No task failed.</p>"
    parts = [f"<p>{_count(len(failed), 'task', 'tasks')} failed.</p>"]
    for detail in data.failed:
        task = detail.task
        packed = (
            f"<p>a task of {detail.packed_inputs} inputs; those that failed:</p><ul>"
            + "".join(
                f"<li>{_e(item.label)}: exit code {_e(_exit(item.exit_code))}"
                + (f"<pre>{_e(chr(10).join(item.stderr_tail))}</pre>" if item.stderr_tail else "")
                + "</li>"
                for item in detail.inputs
            )
            + "</ul>"
            if detail.packed_inputs
            else ""
        )
        parts.append(
            f"<div class='failure' data-task='{_e(task.task_id)}'>"
            f"<h3><code>{_e(task.task_id)}</code> {_e(task.display_name)}</h3>"
            f"<p>exit code <b>{_e(_exit(task.exit_code))}</b>"
            + (f", {_e(task.failure)}" if task.failure else "")
            + f"; node <code>{_e(task.node_id or '-')}</code>; ended {_e(_when(task.end))}; "
            f"{_count(task.retries, 'retry', 'retries')}, "
            f"{_count(task.requeues, 'requeue', 'requeues')}</p>"
            + packed
            + _stderr(detail.stderr)
            + "</div>"
        )
    shown = {detail.task.task_id for detail in data.failed}
    others = [task for task in failed if task.task_id not in shown]
    if others:
        listed = others[:OTHER_FAILED_LISTED]
        parts.append(
            f"<p>{len(others):,} more failed tasks (their stderr is not read here: "
            "<code>python -m runner logs JOB TASK --stderr</code> shows one):</p>"
            "<table class='tasks' id='other-failed'><tr><th>task</th><th>input</th><th>node</th>"
            "<th>exit code</th></tr>"
            + "".join(
                f"<tr><td><code>{_e(task.task_id)}</code></td><td>{_e(task.display_name)}</td>"
                f"<td><code>{_e(task.node_id or '-')}</code></td>"
                f"<td class='num'>{_e(_exit(task.exit_code))}</td></tr>"
                for task in listed
            )
            + "</table>"
        )
        if len(others) > len(listed):
            parts.append(f"<p>... and {len(others) - len(listed):,} more.</p>")
    return "".join(parts)


def _cost(estimate: prices.Estimate, node_time: metrics.NodeTime, vm_size: str | None) -> str:
    hours = (
        f"<p><b>{node_time.span_hours:,.3f} node-hours</b>: for each of the {node_time.nodes} "
        "nodes that ran this job's tasks, from its first task's start to its last task's "
        f"end ({node_time.busy_hours:,.3f} node-hours of that with one running). A pool "
        "bills its nodes for as long as they are allocated, which can be longer: an "
        "autoscale formula adds and removes nodes at its own interval.</p>"
    )
    if estimate.cost is not None and estimate.given:
        price = f"{estimate.per_hour:g} per node-hour, as given with --price-per-node-hour"
        figure_ = f"<p class='cost'>Estimated cost: <b>{estimate.cost:,.4f}</b> ({_e(price)})</p>"
    elif estimate.cost is not None and estimate.price is not None:
        used = estimate.price
        figure_ = (
            f"<p class='cost'>Estimated cost: <b>USD {estimate.cost:,.4f}</b> at USD "
            f"{used.usd_per_hour:g} an hour for {_e(used.vm_size)} ({_e(used.terms)}, "
            f"{_e(used.region)}; see the table below). Another region, a spot or reserved "
            "node, or a later price list gives another figure: pass "
            "<code>--price-per-node-hour</code> for yours.</p>"
        )
    else:
        size = f"the pool's VM size, {_e(vm_size)}," if vm_size else "the pool's VM size"
        figure_ = (
            f"<p class='cost'>No estimated cost: {size} is not in the table of prices "
            "below. Pass <code>--price-per-node-hour</code> to get one.</p>"
        )
    table = (
        "<table class='prices'><tr><th>VM size</th><th>USD an hour</th><th>region, terms</th>"
        "<th>source</th><th>prices as of</th><th>read</th></tr>"
        + "".join(
            f"<tr><td>{_e(p.vm_size)}</td><td class='num'>{p.usd_per_hour:g}</td>"
            f"<td>{_e(p.region)}, {_e(p.terms)}</td>"
            f"<td>{_e(p.source.publisher)}, &ldquo;{_e(p.source.title)}&rdquo;</td>"
            f"<td>{_e(p.source.stated)}</td><td>{_e(p.source.read)}</td></tr>"
            for p in prices.PRICES.values()
        )
        + "</table>"
    )
    return hours + figure_ + table


_TEMPLATE = """
{% from macros import embed %}
{% block postamble %}
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b;
         background: #fbfbfc; }
  main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
  h1 { font-size: 1.5rem; margin: 0.4em 0; }
  h2 { font-size: 1.15rem; margin: 1.6em 0 0.5em; border-bottom: 1px solid #d8dde3; }
  h3 { font-size: 1rem; margin: 0.3em 0; }
  table { border-collapse: collapse; font-size: 0.9rem; }
  th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
  table.tasks th, table.prices th { border-bottom: 1px solid #c9ced6; }
  table.tasks td, table.prices td { border-bottom: 1px solid #eceff3; }
  table.summary th { font-weight: 600; color: #4a5563; white-space: nowrap; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
              font-size: 0.85em; }
  pre { background: #f1f3f6; border-left: 3px solid #d1495b; padding: 6px 10px;
        white-space: pre-wrap; word-break: break-all; margin: 4px 0; }
  .badge { display: inline-block; padding: 0 6px; border-radius: 8px; color: white;
           font-size: 0.85em; }
  .badge.succeeded { background: #3b8f5a; } .badge.failed { background: #d1495b; }
  .badge.running { background: #e9a23b; } .badge.waiting { background: #7a8593; }
  .failure { border: 1px solid #eccdd2; border-radius: 4px; padding: 6px 12px;
             margin: 8px 0; background: white; }
  .muted { color: #5b6572; margin: 4px 0; }
  .cost { font-size: 1.05rem; }
  .plot { margin: 8px 0 16px; }
</style>
{% endblock %}
{% block contents %}
<main>
<h1>Job <code>{{ job }}</code></h1>
<section id="summary">{{ summary }}</section>
<h2>Tasks per node</h2>
<p class="muted">A row per node, a bar per task from its start to its end (its last attempt;
a running task up to the time of this report). Hover a bar for its record; drag to zoom,
double-click or reset to go back.</p>
<div class="plot">{{ embed(roots.timeline) }}</div>
<h2>Task durations</h2>
<div class="plot">{{ embed(roots.durations) }}</div>
<h2>Nodes over time</h2>
<p class="muted">How many nodes this job was using, as its task records tell: a node counts
from the start of its first task of this job to the end of its last (the node-hours below
are the area under this line). The pool may have held nodes longer, idle or for other
jobs.</p>
<div class="plot">{{ embed(roots.nodes) }}</div>
<h2>Slowest tasks</h2>
<section id="slowest">{{ slowest }}</section>
<h2>Failed tasks</h2>
<section id="failed">{{ failed }}</section>
<h2>Estimated cost</h2>
<section id="cost">{{ cost }}</section>
<p class="muted">Made by <code>python -m runner report</code> from the Batch service's
records of the job, its tasks and its pool, and from storage listings. Times are UTC.</p>
</main>
{% endblock %}
"""
