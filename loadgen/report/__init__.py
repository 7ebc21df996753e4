"""Results people would rather look at: charts, an HTML page, CSV tables, from a results document alone.

Everything here is a function of an exported document (`loadgen.document`, a sweep's, a soak's
or a fault matrix's): `loadgen report RESULTS.json` rebuilds the same page and files a run
wrote at its end. Nothing here measures; a figure the document does not hold is shown as
unmeasured.

- `loadgen.report.charts`: every chart of a document (`charts_for`), each with the table of the
  figures it draws; drawn by matplotlib, as inline SVG for the page and PNG for `--plots`.
- `loadgen.report.page`: the self-contained HTML page (`--html`).
- `loadgen.report.tables`: the CSV files (`--csv`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

Cell = str | int | float | None  # None: unmeasured, shown as "n/m"


@dataclass(frozen=True)
class Table:
    """The figures a chart draws (or a table of its own), as the page and the CSV show them."""

    headers: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class Chart:
    """One chart: drawn on a matplotlib Figure by `draw`, with its figures in `table`.

    `id` is a stable slug, unique within a document (e.g. "overhead-openai"); it names the PNG
    file (`<id>.png`) and the page's element (`id="chart-<id>"`).
    """

    id: str
    section: str  # the page section it belongs to, e.g. "Overhead", "Latency", "Soak"
    title: str
    caption: str  # what it shows and how to read it, one or two sentences
    table: Table
    draw: Callable = field(repr=False, compare=False)  # draw(figure) -> None


def slug(*parts: str) -> str:
    """'latency', 'openai', 'rate 50/s constant' → 'latency-openai-rate-50-s-constant': chart ids,
    section ids and CSS classes."""
    return "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts if part)
