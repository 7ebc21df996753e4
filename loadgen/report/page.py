"""The self-contained HTML page of a results document (`--html`, `loadgen report --html`).

One file that opens with no network: the style sheet and the sorting script inline, every
chart an inline SVG with its figures in a table beside it. A pure function of the document
(and its charts): the same document gives the same bytes, so `loadgen report RESULTS.json
--html` rebuilds exactly the page a run wrote.
"""

from __future__ import annotations

import re
from html import escape

from loadgen.report import Chart, Table
from loadgen.report.page_assets import SCRIPT, STYLE
from loadgen.report.page_html import figure_text, figures_table, section, slug
from loadgen.report.page_sections import Section, kind_sections

STATUS = {"generated_at": "generated at", "target": "target", "valid": "valid", "interrupted": "interrupted"}
KIND_TITLES = {None: "load test", "sweep": "rate sweep", "faults": "fault matrix", "compare": "comparison"}


def render_page(document: dict) -> str:
    """The page of a document with the charts the chart module draws for it."""
    from loadgen.report.charts import charts_for, render_svg

    charts = charts_for(document)
    return html_page(document, charts, {chart.id: render_svg(chart) for chart in charts})


def html_page(document: dict, charts: list[Chart], svgs: dict[str, str]) -> str:
    """The page: header, navigation, the document kind's tables, then each chart section in order."""
    sections = [(title, f"section-{slug(title)}", body) for title, body in kind_sections(document)]
    sections += [(title, f"section-charts-{slug(title)}", body) for title, body in chart_sections(charts, svgs)]
    sections += [(title, f"section-{slug(title)}", body) for title, body in _problems(document)]
    title = _title(document)
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            f"{_header(document, title)}\n{_nav(sections)}\n"
            f"<main>\n{''.join(section(*parts) + chr(10) for parts in sections)}</main>\n"
            f"<script>{SCRIPT}</script>\n</body></html>\n")


def chart_sections(charts: list[Chart], svgs: dict[str, str]) -> list[Section]:
    """One section per chart `section`, in the order the charts come, each chart a figure with its table."""
    grouped: dict[str, list[str]] = {}
    for chart in charts:
        grouped.setdefault(chart.section, []).append(_figure(chart, svgs.get(chart.id, "")))
    return [(title, "".join(figures)) for title, figures in grouped.items()]


def _figure(chart: Chart, svg: str) -> str:
    table = figures_table(chart.table, attributes=f' class="figures" data-chart="{escape(chart.id)}"')
    return (f'<figure class="chart" id="chart-{escape(chart.id)}"><div class="plot">{_labelled(svg, chart.title)}'
            f"</div>{table}<figcaption><strong>{escape(chart.title)}</strong> {escape(chart.caption)}</figcaption>"
            f"</figure>")


def _labelled(svg: str, title: str) -> str:
    """The SVG as an image with the chart's title as its accessible name (unless it names itself)."""
    opening = re.search(r"<svg\b[^>]*>", svg)
    if opening is None or "aria-label" in opening.group(0):
        return svg
    tag = opening.group(0)
    labelled = tag[:-1] + f' role="img" aria-label="{escape(title)}">'
    return svg[:opening.start()] + labelled + svg[opening.end():]


def _title(document: dict) -> str:
    profile = document.get("profile") or {}
    name = profile.get("name") or (document.get("new") or {}).get("profile") or "results"
    return f"loadgen {KIND_TITLES.get(document.get('kind'), document.get('kind'))}: {name}"


def _header(document: dict, title: str) -> str:
    profile = document.get("profile") or {}
    tool = document.get("tool") or {}
    status = {"tool": f"{tool.get('name', 'loadgen')} {tool.get('version', '')}".strip(),
              **{label: document[key] for key, label in STATUS.items() if key in document},
              "errors": len(document.get("errors") or [])}
    about = f'<p class="about">{escape(profile["description"])}</p>' if profile.get("description") else ""
    items = "".join(f"<li><strong>{escape(key)}</strong> {escape(figure_text(value))}</li>"
                    for key, value in status.items())
    return f'<header id="top"><h1>{escape(title)}</h1>{about}<ul class="status">{items}</ul></header>'


def _nav(sections: list[tuple[str, str, str]]) -> str:
    links = "".join(f'<li><a href="#{escape(section_id)}">{escape(title)}</a></li>' for title, section_id, _ in sections)
    return f'<nav aria-label="Sections"><ul>{links}</ul></nav>'


def _problems(document: dict) -> list[Section]:
    """Why the run is invalid and what went wrong, when anything did."""
    found = []
    reasons = document.get("invalid_reasons") or []
    if reasons:
        found.append(("Validity", figures_table(_reasons_table(reasons))))
    errors = document.get("errors") or []
    if errors:
        found.append(("Errors", '<ul class="errors">' + "".join(f"<li>{escape(str(e))}</li>" for e in errors)
                      + "</ul>"))
    return found


def _reasons_table(reasons: list) -> Table:
    if all(isinstance(reason, dict) for reason in reasons):
        headers = list(dict.fromkeys(key for reason in reasons for key in reason))
        return Table(headers, [[reason.get(key) for key in headers] for reason in reasons])
    return Table(["reason"], [[str(reason)] for reason in reasons])

