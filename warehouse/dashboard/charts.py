"""Server-rendered charts (matplotlib, Agg, inline SVG): no JavaScript and no chart service needed."""
from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402 - after choosing the backend

# Text stays text in the SVG (small, selectable); sizes suit an admin column.
_RC = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
SIZE = (6.4, 2.4)


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and doctype: inlined in the page


def _figure() -> tuple[Figure, object]:
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=SIZE)
        axes = figure.subplots()
    return figure, axes


def _day_labels(days: Sequence[date]) -> list[str]:
    return [day.strftime("%d %b") for day in days]


def bars_per_day(days: Sequence[date], series: dict[str, Sequence[int]], *, title: str) -> str:
    """Side-by-side bars per day, one colour per series."""
    figure, axes = _figure()
    width = 0.8 / max(len(series), 1)
    positions = range(len(days))
    for i, (label, values) in enumerate(series.items()):
        axes.bar([p + i * width for p in positions], values, width=width, label=label)
    axes.set_title(title, loc="left")
    step = max(1, len(days) // 6)
    axes.set_xticks([p + width * (len(series) - 1) / 2 for p in positions][::step])
    axes.set_xticklabels(_day_labels(days)[::step])
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="upper left", frameon=False)
    return _svg(figure)


def share_per_day(days: Sequence[date], shares: Sequence[float | None], *, title: str) -> str:
    """A line of shares (0–100 %) per day; days without data are gaps."""
    figure, axes = _figure()
    points = [(i, 100 * share) for i, share in enumerate(shares) if share is not None]
    if points:
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o", markersize=3)
    axes.set_ylim(0, 100)
    axes.set_ylabel("%")
    axes.set_title(title, loc="left")
    step = max(1, len(days) // 6)
    axes.set_xticks(list(range(len(days)))[::step])
    axes.set_xticklabels(_day_labels(days)[::step])
    return _svg(figure)


def horizontal_bars(items: Sequence[tuple[str, int]], *, title: str) -> str:
    figure, axes = _figure()
    labels = [label for label, _ in items]
    axes.barh(labels, [value for _, value in items], color="#f59e0b")
    axes.invert_yaxis()
    axes.set_xlim(0, max([1, *(value for _, value in items)]) * 1.1)
    axes.set_title(title, loc="left")
    axes.xaxis.get_major_locator().set_params(integer=True)
    return _svg(figure)
