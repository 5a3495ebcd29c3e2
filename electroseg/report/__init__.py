"""Build a run's report (self-contained HTML + Markdown) from the products in its folder.

Imports analysis/evaluation products as files only; never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from electroseg.errors import InputError
from electroseg.report.collect import collect_report
from electroseg.report.content import Report, Section, Table
from electroseg.report.provenance import input_hashes, package_versions, sha256_file
from electroseg.report.render import render_html, render_markdown, write_text_atomic


@dataclass(frozen=True)
class ReportFiles:
    """Where `build_report` wrote the report."""

    html: Path
    markdown: Path

    def to_dict(self) -> dict:
        return {"html": str(self.html), "markdown": str(self.markdown)}


def build_report(run_dir: str | Path, *, title: str | None = None) -> ReportFiles:
    """Write ``report.html`` (self-contained) and ``report.md`` into ``run_dir`` from its products.

    Parameters
    ----------
    run_dir : path
        A folder written by ``electroseg run`` or ``electroseg compare``.
    title : str, optional

    Raises
    ------
    InputError
        When ``run_dir`` is not a folder or holds no product to report on.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"report: expected an existing run folder, got {str(root)!r}")
    report = collect_report(root, title=title)
    if not any(s.tables or s.figures for s in report.sections if s.title != "Provenance"):
        raise InputError(f"{root}: no metrics.json, comparison.json or figure found to report on; "
                         "expected the out folder of `electroseg run` or `electroseg compare`")
    return ReportFiles(html=write_text_atomic(root / "report.html", render_html(report)),
                       markdown=write_text_atomic(root / "report.md", render_markdown(report)))


__all__ = ["Report", "ReportFiles", "Section", "Table", "build_report", "collect_report",
           "input_hashes", "package_versions", "render_html", "render_markdown", "sha256_file"]
