"""Render a `Report` as one self-contained HTML file (PNG figures embedded as base64) or Markdown."""

from __future__ import annotations

import base64
import html
import logging
import os
from pathlib import Path

from electroseg.report.content import Report, Section, Table

logger = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.4em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:0.9em}
td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-style:italic;padding:4px 0}
figure{display:inline-block;margin:0.5em;max-width:100%}
img{max-width:100%;height:auto}
.wide{overflow-x:auto;max-width:100%}
figcaption{font-size:0.85em;color:#555}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:0.85em}
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table.rows)
    return (f'<div class="wide"><table><caption>{html.escape(table.caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _html_figure(path: Path, root: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(path.relative_to(root).as_posix())
    return (f'<figure><img alt="{caption}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _html_section(section: Section, root: Path) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
    parts += [_html_table(t) for t in section.tables]
    parts += [_html_figure(f, root) for f in section.figures]
    if section.preformatted:
        parts.append(f"<pre>{html.escape(section.preformatted)}</pre>")
    return "<section>" + "\n".join(parts) + "</section>"


def render_html(report: Report) -> str:
    """One HTML document with every figure embedded (``data:image/png;base64,...``)."""
    body = "\n".join(_html_section(s, report.root) for s in report.sections)
    title = html.escape(report.title)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head>"
            f"<body><h1>{title}</h1>\n{body}\n</body></html>\n")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    lines = [f"*{table.caption}*", "",
             "| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _md_section(section: Section, root: Path) -> str:
    parts = [f"## {section.title}\n"]
    parts += [f"{p}\n" for p in section.paragraphs]
    parts += [_md_table(t) for t in section.tables]
    parts += [f"![{f.stem}]({f.relative_to(root).as_posix()})\n" for f in section.figures]
    if section.preformatted:
        parts.append(f"```yaml\n{section.preformatted.rstrip()}\n```\n")
    return "\n".join(parts)


def render_markdown(report: Report) -> str:
    """Markdown with figures linked by path relative to the run folder (where report.md lives)."""
    return f"# {report.title}\n\n" + "\n".join(_md_section(s, report.root) for s in report.sections)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary name beside ``path`` and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    logger.info("wrote %s", path)
    return path
