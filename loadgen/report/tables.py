"""A results document as CSV files (`--csv DIR`), one per table, for spreadsheets and pandas.

Each record becomes one row of its scalar figures: nested dicts flattened to dotted columns
(`latency_ms.p99`), a 95 % CI ([lo, hi]) split into `_lo` and `_hi`, histograms and other
lists left out. Columns are the union of the rows' keys in first-seen order; an unmeasured
figure (None) is an empty cell. Only the tables the document has are written.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from loadgen.report import Table
from loadgen.document import write_atomically

LEFT_OUT = {"histograms"}  # encoded HDR histograms: the JSON keeps them, a spreadsheet cannot use them
SPAN_COLUMNS = ("started", "ended", "exported", "received", "dropped", "unaccounted", "duplicates")


def flatten(record: dict, prefix: str = "") -> dict[str, object]:
    """One record's scalar figures under dotted names; CIs as `_lo`/`_hi`; other lists left out."""
    flat: dict[str, object] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if key in LEFT_OUT:
            continue
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            if "ci95" in key and len(value) == 2:
                flat[f"{name}_lo"], flat[f"{name}_hi"] = value
        else:
            flat[name] = value
    return flat


def records_table(records: list[dict]) -> Table:
    """Flattened records as one table, the columns the union of their keys in first-seen order."""
    flat = [flatten(record) for record in records]
    headers = list(dict.fromkeys(key for row in flat for key in row))
    return Table(headers, [[row.get(key) for key in headers] for row in flat])


def spans_table(runs: list[dict]) -> Table:
    """Per tracing run, where its spans went: each span in exactly one bucket, duplicates beside.

    A sweep's runs carry their step's rate (`step_rate`), kept as the first column.
    """
    lead = ("step_rate", "provider", "arm", "mode")
    return records_table([{**{key: run.get(key) for key in lead if key in run},
                           **{key: run["spans"].get(key) for key in SPAN_COLUMNS}}
                          for run in runs if run.get("spans")])


def sweep_steps(document: dict) -> list[dict]:
    """A sweep's runs, one record per step and run, led by the step's offered rate."""
    return [{"step_rate": step["rate"], "step_complete": step["complete"], **run}
            for step in document["sweep"]["steps"] for run in step["runs"]]


def document_tables(document: dict) -> dict[str, Table]:
    """File name → table, for every table this kind of document has (empty tables left out)."""
    kind = document.get("kind")
    records: dict[str, list[dict]] = {}
    if kind is None:
        records["runs"] = document.get("runs") or []
        records["north_star"] = document.get("north_star_metrics") or []
        records["spans"] = document.get("runs") or []
        if document.get("soak"):
            records["soak_windows"] = document["soak"].get("windows") or []
            records["soak_memory"] = document["soak"].get("memory") or []
    elif kind == "sweep":
        steps = sweep_steps(document)
        records["sweep_steps"] = steps
        records["sweep_highest_rates"] = document["sweep"]["highest_sustainable_rate"]
        records["spans"] = steps
    elif kind == "faults":
        records["fault_cells"] = document.get("cells") or []
        records["fault_baselines"] = document.get("baselines") or []
    elif kind == "compare":
        records["compare"] = document.get("rows") or []
    tables = {name: spans_table(rows) if name == "spans" else records_table(rows) for name, rows in records.items()}
    return {name: table for name, table in tables.items() if table.rows}


def csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows([["" if cell is None else cell for cell in row] for row in table.rows])
    return buffer.getvalue()


def write_csv(document: dict, folder: Path) -> list[Path]:
    """One `<table>.csv` per table of the document in `folder` (created), each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in document_tables(document).items():
        path = folder / f"{name}.csv"
        write_atomically(path, csv_text(table))
        paths.append(path)
    return paths
