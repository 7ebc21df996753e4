"""An arm's distribution for a percentile-spectrum chart: from its HDR histogram, or its summary.

loadgen records every timing in microseconds (`loadgen.histograms`); here values become
milliseconds. The spectrum's x is 1/(1 − p): 2 is the median, 10 p90, 100 p99, and so on,
so a log axis gives each "nine" the same width (HdrHistogram's percentile plot). A run
exported without histograms still has its percentiles: those are drawn as points instead
of a curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from loadgen.histograms import Recorder
from loadgen.report import Cell

US_PER_MS = 1000
STEPS_PER_DECADE = 25
# summary key → x = 1/(1 − p)
SUMMARY_X = {"p50": 2.0, "p90": 10.0, "p95": 20.0, "p99": 100.0, "p99_9": 1000.0}
TICKS = ((2.0, "50%"), (10.0, "90%"), (100.0, "99%"), (1000.0, "99.9%"), (10000.0, "99.99%"))


@dataclass(frozen=True)
class Distribution:
    """One arm's timings: `summary` (loadgen's own, `Recorder.summary_ms`), and `histogram` when the
    document holds it (the curve is drawn from it; without it, from the summary's percentiles)."""

    histogram: HdrHistogram | None
    summary: dict | None

    @property
    def count(self) -> int | None:
        return (self.summary or {}).get("count")

    def figures(self, names: tuple[str, ...]) -> list[Cell]:
        """The named percentiles (p50…p99_9, max) in ms, None where unmeasured."""
        summary = self.summary or {}
        return [summary.get(name) for name in names]

    def curve(self, names: tuple[str, ...]) -> tuple[list[float], list[float]]:
        """(x, ms): the spectrum from the histogram, else the named summary figures (the max at x = count);
        empty when unmeasured."""
        if self.histogram is not None:
            return spectrum(self.histogram)
        summary = self.summary or {}
        points = [(x, summary.get(name)) for name, x in SUMMARY_X.items() if name in names]
        if "max" in names and points:
            points.append((max(float(self.count or 0), points[-1][0]), summary.get("max")))
        points = [(x, value) for x, value in points if value is not None]
        return [x for x, _ in points], [value for _, value in points]


def distribution(encoded: dict | None, summary: dict | None) -> Distribution:
    """From a document's `{"hdr": base64, ...}` (None or empty: not there) and its summary. With the
    histogram, its figures are loadgen's own summary of it, so the table and the document agree."""
    if encoded and encoded.get("hdr"):
        recorder = Recorder.decode(encoded)
        if recorder.count:
            return Distribution(recorder.histogram, recorder.summary_ms())
    if summary is not None and not summary.get("count"):
        summary = None
    return Distribution(None, summary)


def spectrum(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """Latency in ms at x = 1/(1 − p), evenly on a log scale up to the count (past it: the max)."""
    count = histogram.get_total_count()
    steps = int(STEPS_PER_DECADE * math.log10(max(count, 2)))
    xs = [10 ** (i / STEPS_PER_DECADE) for i in range(steps + 1)]
    percentiles = [100.0 * (1 - 1 / x) for x in xs]
    values = histogram.get_percentile_to_value_dict(percentiles)
    ms = [values[p] / US_PER_MS for p in percentiles]
    xs.append(float(max(count, 2)))
    ms.append(histogram.get_max_value() / US_PER_MS)
    return xs, ms


def percentile_axis(ax, highest_x: float) -> None:
    """Log x axis labelled 50 %, 90 %, 99 %, … up to the nines the data reach."""
    ax.set_xscale("log")
    ticks = [(x, label) for x, label in TICKS if x <= max(highest_x, 2.0)]
    ax.set_xticks([x for x, _ in ticks], [label for _, label in ticks])
    ax.minorticks_off()
    ax.set_xlim(1, max(highest_x, 10.0) * 1.1)
    ax.set_xlabel("percentile")
