"""Key statements of a run, read from its products (metrics.json, comparison.json).

``summarize_run`` gives the few numbers a user shows first: each segmentation's pooled PBA and
AM fraction, each segmentation's agreement with the reference, and which metric differences
exceed the within-sample variability.
"""

from __future__ import annotations

from pathlib import Path

from electroseg.report.content import format_value, label_of, products, read_json


def _metric_lines(root: Path) -> tuple[list[str], dict]:
    lines, values = [], {}
    for path in products(root, "metrics.json"):
        metrics, name = read_json(path), label_of(path, root)
        pba = (metrics.get("pba") or {}).get("pooled")
        am = (metrics.get("volume_fraction") or {}).get("am")
        interval = ((metrics.get("uncertainty") or {}).get("pba_pooled_from_counts") or {})
        ci = (f" (95% interval {format_value(interval.get('ci_low'))}–"
              f"{format_value(interval.get('ci_high'))})" if interval.get("ci_low") is not None else "")
        lines.append(f"{name}: pooled PBA {format_value(pba)}{ci}, AM fraction {format_value(am)}")
        values[f"{name}.pba_pooled"] = pba
        values[f"{name}.am_fraction"] = am
    return lines, values


def _comparison_lines(root: Path) -> tuple[list[str], dict]:
    lines, values = [], {}
    for path in products(root, "comparison.json"):
        comparison, where = read_json(path), label_of(path, root)
        for pair, found in (comparison.get("agreement") or {}).items():
            lines.append(f"{where}: {pair}: mean IoU {format_value(found.get('mean_iou'))}, "
                         f"boundary F1 {format_value((found.get('boundary') or {}).get('f1'))}")
            values[f"{where}.{pair}.mean_iou"] = found.get("mean_iou")
        exceeding = [f"{d.get('metric')} ({d.get('pair')}: {format_value(d.get('difference'))})"
                     for d in comparison.get("differences", []) if d.get("exceeds_variability")]
        if comparison.get("differences"):
            lines.append(f"{where}: differences beyond the within-sample variability: "
                         + (", ".join(exceeding) if exceeding else "none"))
    return lines, values


def summarize_run(root: str | Path) -> dict:
    """``{"lines": [...], "values": {...}}`` for ``summary.json`` and the report's first section.

    Examples
    --------
    >>> import tempfile
    >>> summarize_run(tempfile.mkdtemp())
    {'lines': [], 'values': {}}
    """
    root = Path(root)
    metric_lines, metric_values = _metric_lines(root)
    comparison_lines, comparison_values = _comparison_lines(root)
    cycling = products(root, "cycling.json")
    extra = read_json(cycling[0]).get("lines", []) if cycling else []
    return {"lines": [*extra, *metric_lines, *comparison_lines],
            "values": {**metric_values, **comparison_values}}
