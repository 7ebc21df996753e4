"""The page's building blocks: a document's figures as escaped HTML cells, tables and definition lists.

A figure is shown as the document holds it (no rounding of our own, so the page and the JSON
agree to the digit); None is "n/m", unmeasured. Every string from the document goes through
`html.escape` here, so a profile name or an error message can never become markup.
"""

from __future__ import annotations

from html import escape

from loadgen.report import Cell, Table, slug as report_slug

UNMEASURED = "n/m"
VERDICT_CLASSES = {"pass", "warn", "fail", "unmeasured", "better", "worse", "within noise", "leak", "no leak",
                   "inconclusive"}


def slug(text: str) -> str:
    """An id fragment from a heading: lower-case letters, digits and dashes ("section" when none)."""
    return report_slug(text) or "section"


def figure_text(value: object) -> str:
    """A figure as the document holds it: None → n/m, booleans yes/no, a CI as [lo, hi], lists joined."""
    if value is None:
        return UNMEASURED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return f"[{value[0]}, {value[1]}]"
        return ", ".join(figure_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {figure_text(v)}" for key, v in value.items()) or "none"
    return str(value)


def sort_key(value: object) -> float | None:
    """The number a column sorts by: the figure, a CI's lower bound; None (sorts last) for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, list) and value and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
        return value[0]
    return None


def verdict_class(verdict: object) -> str:
    """The CSS class that colours a verdict ('v-pass', 'v-within-noise'); empty for anything else."""
    return f"v-{slug(verdict)}" if isinstance(verdict, str) and verdict in VERDICT_CLASSES else ""


def td(value: object, verdict: str | None = None, title: str | None = None) -> str:
    """One cell: the escaped figure, its sort key, and its verdict's colour when it has one."""
    attributes = ""
    number = sort_key(value)
    if number is not None:
        attributes += f' data-sort="{number!r}"'
    if verdict:
        attributes += f' class="{verdict_class(verdict)}"'
        title = f"{verdict}{f': {title}' if title else ''}"
    if title:
        attributes += f' title="{escape(title)}"'
    return f"<td{attributes}>{escape(figure_text(value))}</td>"


def table_html(headers: list[str], rows: list[str], *, caption: str | None = None, attributes: str = "") -> str:
    """A table of ready-made rows (`<tr>…</tr>` strings) under escaped column headers."""
    head = "".join(f'<th scope="col">{escape(header)}</th>' for header in headers)
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table{attributes}>{caption_html}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def figures_table(table: Table, *, caption: str | None = None, attributes: str = "") -> str:
    """A `Table` of figures, a verdict column coloured by its verdict."""
    verdict_columns = {i for i, header in enumerate(table.headers) if header.lower() == "verdict"}
    rows = ["<tr>" + "".join(td(cell, cell if i in verdict_columns else None) for i, cell in enumerate(row))
            + "</tr>" for row in table.rows]
    return table_html(table.headers, rows, caption=caption, attributes=attributes)


def definitions(items: dict[str, Cell], *, caption: str | None = None) -> str:
    """Setting → value, one row each, the setting as a row header."""
    rows = "".join(f'<tr><th scope="row">{escape(key)}</th>{_setting(value)}</tr>' for key, value in items.items())
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table class="definitions">{caption_html}<tbody>{rows}</tbody></table></div>'


def _setting(value: object) -> str:
    """A setting's cell: one left unset (None, an empty list) reads "none", not unmeasured."""
    return "<td>none</td>" if value is None or value == [] else td(value)


def flat_settings(settings: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted keys (`tracing.max_queue_size`), for a definition table."""
    flat: dict[str, object] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def section(title: str, section_id: str, body: str) -> str:
    return f'<section id="{escape(section_id)}"><h2>{escape(title)}</h2>{body}</section>'
