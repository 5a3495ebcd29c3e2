"""``electroseg report DIR`` (or ``dir=DIR``): rebuild the report of a run folder from its products."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from electroseg.errors import InputError

HELP = "rebuild report.html / report.md of a run folder from its products"
POSITIONAL = "dir"  # `electroseg report DIR` means dir=DIR

logger = logging.getLogger(__name__)


def run(cfg: DictConfig) -> int:
    """Rewrite summary.json (optional), report.html and report.md; print the HTML path."""
    from electroseg.io import write_json
    from electroseg.report import build_report
    from electroseg.report.summary import summarize_run

    root = Path(str(cfg.dir))
    if not root.is_dir():
        raise InputError(f"dir: expected an existing run folder, got {str(root)!r}")
    if cfg.summary:
        summary = summarize_run(root)
        if summary["lines"] or summary["values"]:  # a folder without products gets no summary.json
            write_json(root / "summary.json", summary)
    files = build_report(root, title=cfg.title)  # raises, writing no report, when there is no product
    logger.info("report written: %s and %s", files.html, files.markdown)
    print(files.html)
    return 0
