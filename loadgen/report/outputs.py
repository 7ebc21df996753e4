"""Writing a document's report outputs where the user asked: the HTML page, the PNG charts, the CSV tables;
and reading a results document back for `loadgen report`.

Called after the results JSON is written (so an output that cannot be written loses nothing
measured); such a failure is a `UserError` naming the path (exit 2), never a traceback. The
chart, page and CSV modules are imported only when an output is asked for: a run without
them does not load matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from loadgen.document import SCHEMA_VERSION, validate_document, write_atomically
from loadgen.errors import ExitCode, UserError


def read_document(path: Path) -> dict:
    """A loadgen results document from its file, or a `UserError` naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file", ExitCode.USAGE) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}", ExitCode.USAGE) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})", ExitCode.USAGE) from None
    if not (isinstance(document, dict) and "schema_version" in document
            and isinstance(document.get("tool"), dict) and document["tool"].get("name") == "loadgen"):
        raise UserError(f"{path}: not a loadgen results document (no schema_version and tool.name 'loadgen')",
                        ExitCode.USAGE)
    broken = validate_document(document)
    if broken:
        more = f" (and {len(broken) - 3} more)" if len(broken) > 3 else ""
        raise UserError(f"{path}: does not match the results schema (loadgen/schemas/results.schema.json, this "
                        f"loadgen's {SCHEMA_VERSION}; the file says {document['schema_version']}): "
                        f"{'; '.join(broken[:3])}{more}", ExitCode.USAGE)
    return document


BESIDE = "@beside"  # an output flag given bare: put it beside the results JSON (`default_path`)


def default_path(kind: str, beside: str | None) -> str:
    """Where a bare --html, --plots or --csv goes: next to the results JSON, named after it
    (r.json → r.html, r-plots/, r-csv/); without a JSON, loadgen-report.html, loadgen-plots/, loadgen-csv/."""
    if beside:
        stem = Path(beside).with_suffix("")
        return str(stem.with_name(stem.name + ".html")) if kind == "html" else f"{stem}-{kind}"
    return "loadgen-report.html" if kind == "html" else f"loadgen-{kind}"


def write_outputs(document: dict, *, html: str | None, plots: str | None, csv: str | None,
                  say: Callable[[str], None], beside: str | None = None) -> None:
    """Write each requested output of the document and say where it went (`beside`: the results
    JSON's path, where a bare flag's output goes)."""
    html, plots, csv = (default_path(kind, beside) if value == BESIDE else value
                        for kind, value in (("html", html), ("plots", plots), ("csv", csv)))
    charts = []
    if html or plots:
        from loadgen.report.charts import charts_for

        charts = charts_for(document)
    if html:
        path = _absolute(html)
        _refuse_to_replace(path)
        _writing(path, lambda: _write_page(document, charts, path))
        say(f"report written to {path}")
    if plots:
        from loadgen.report.charts import write_pngs

        folder = _absolute(plots)
        written = _writing(folder, lambda: write_pngs(charts, _folder(folder)))
        say(f"plots written to {folder} ({len(written)} PNG files)")
    if csv:
        from loadgen.report.tables import write_csv

        folder = _absolute(csv)
        written = _writing(folder, lambda: write_csv(document, _folder(folder)))
        say(f"CSV tables written to {folder} ({len(written)} files)")


def _refuse_to_replace(path: Path) -> None:
    """A page replaces an earlier page, never another file (a profile or results JSON named by mistake)."""
    if not path.exists():
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(15)
    except OSError:
        return  # _writing names the path if it cannot be written either
    if path.is_dir() or head.lower() != b"<!doctype html>":
        raise UserError(f"{path}: exists and is not an HTML page; not replaced (--html names the page to write)",
                        ExitCode.USAGE)


def _write_page(document: dict, charts: list, path: Path) -> None:
    from loadgen.report.charts import render_svg
    from loadgen.report.page import html_page

    page = html_page(document, charts, {chart.id: render_svg(chart) for chart in charts})
    _folder(path.parent)
    write_atomically(path, page)


def _absolute(path: str) -> Path:
    return Path(path).expanduser().absolute()


def _folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _writing(path: Path, write: Callable):
    """Run `write`; a file system refusal becomes one message naming the path."""
    try:
        return write()
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", ExitCode.USAGE) from None
