"""Gather a `Report` from a run folder: one section per kind of product found there."""

from __future__ import annotations

from pathlib import Path

from electroseg.report.content import (Report, Section, Table, figures_under, flatten,
                                       format_value, label_of, products, read_json, side_by_side)
from electroseg.report.provenance import package_versions

_DIFFERENCE_COLUMNS = ("pair", "metric", "a", "b", "difference", "variability",
                       "exceeds_variability", "note")


def summary_section(root: Path) -> Section | None:
    """Key statements written by the pipeline to ``summary.json`` (``{"lines": [...]}``)."""
    path = root / "summary.json"
    if not path.is_file():
        return None
    summary = read_json(path)
    lines = tuple(str(line) for line in summary.get("lines", []))
    table = side_by_side({"value": summary.get("values", {})}, "Key figures")
    return Section("Summary", paragraphs=lines, tables=(table,) if table.rows else ())


def trust_section(root: Path) -> Section | None:
    """"How far to trust this": what the run's own products say about its figures' reliability.

    Built from the sub-block intervals and the representative-volume verdicts of each
    metrics.json, the agreement of each segmentation with the truth or the hand labels
    (comparison.json), the learned predictions' quality records (prediction.json), and, where
    labelled slices measured it, the segmentation's own error (``uncertainty.total``); where
    nothing measured that error, it says so.
    """
    lines: list[str] = []
    measured = False
    for path in products(root, "metrics.json"):
        tree, name = read_json(path), label_of(path, root)
        line = _segmentation_line(tree, name)
        if line:
            lines.append(line)
            measured = measured or "corrected" in line
        blocks = ((tree.get("uncertainty") or {}).get("metrics") or {})
        pba, am = blocks.get("pba_pooled") or {}, blocks.get("volume_fraction_am") or {}
        parts = []
        for label, entry, headline in (("PBA", pba, (tree.get("pba") or {}).get("pooled")),
                                       ("AM fraction", am, (tree.get("volume_fraction") or {}).get("am"))):
            if entry.get("ci_low") is not None and headline is not None:
                parts.append(f"{label} {format_value(headline)} (sub-block 95 % interval of the mean "
                             f"[{format_value(entry['ci_low'])}, {format_value(entry['ci_high'])}], "
                             f"{entry.get('n')} blocks)")
        rve = (tree.get("representative_volume") or {}).get("metrics") or {}
        short = [f"{m.replace('volume_fraction_', '')} (±{format_value(f['half_width'])} against ±"
                 f"{format_value(f['target_half_width'])})" for m, f in rve.items() if not f.get("sufficient")]
        if parts or rve:
            verdict = ("the imaged volume is large enough for every headline metric's target" if rve and not short
                       else f"the imaged volume is too small for: {', '.join(short)}" if short else "")
            lines.append(f"{name}: " + "; ".join(parts + ([verdict] if verdict else [])) + ".")
    for path in products(root, "comparison.json"):
        found = read_json(path)
        pba = (found.get("total") or {}).get("pba_pooled")
        if pba and found.get("samples"):  # analyze inputs= with both samples' hand labels
            a, b = found["samples"]
            lines.append(f"{b} − {a}, pooled PBA corrected for both segmentations' errors: "
                         f"{format_value(pba['difference'])} [{format_value(pba['ci_low'])}, "
                         f"{format_value(pba['ci_high'])}]: "
                         f"{'significant' if pba.get('excludes_zero') else 'not significant'} "
                         "(the interval holds both samples' sampling and segmentation errors).")
        agreement = found.get("agreement") or {}
        judged = [f"{pair}: mean IoU {format_value(a.get('mean_iou'))}" for pair, a in agreement.items()
                  if pair.endswith((" vs truth", " vs hand labels", " vs reference"))]
        if judged:
            lines.append("Against labels a person or the generator made: " + "; ".join(judged) + ".")
    for path in products(root, "prediction.json"):
        qa = read_json(path).get("qa") or {}
        uncertain = qa.get("low_confidence") or {}
        low = uncertain.get("all")
        hand = (qa.get("hand_labels") or {}).get("agreement")
        if low is not None or hand is not None:
            tiling = qa.get("tiling_agreement")
            warning_from = uncertain.get("warning_from")
            parts = [] if low is None else [
                f"{format_value(100 * low)} % of the voxels are low-confidence (normalised entropy ≥ "
                f"{format_value(uncertain.get('threshold'))})"
                + ("" if warning_from is None or low < warning_from else
                   f", at or above the {format_value(100 * warning_from)} % from which this model's "
                   "predictions were mostly poor on images with truth: check them against hand labels")]
            if tiling is not None:
                parts.append(f"a crop predicted alone agrees on {format_value(100 * tiling)} %")
            if hand is not None:
                parts.append(f"the prediction reproduces {format_value(100 * hand)} % of its hand labels")
            lines.append(f"{label_of(path, root)}: " + "; ".join(parts) + ".")
    for path in products(root, "reliability.json"):
        table = read_json(path)
        if table.get("ece") is not None:
            over = (table.get("mean_confidence") or 0) > (table.get("accuracy_overall") or 0)
            lines.append(f"{label_of(path, root)}: the learned probabilities against the {table.get('against', 'labels')}: "
                         f"mean confidence {format_value(table.get('mean_confidence'))}, accuracy "
                         f"{format_value(table.get('accuracy_overall'))}, expected calibration error "
                         f"{format_value(table['ece'])} ({'over-confident' if over else 'under-confident'}; "
                         "reliability.png).")
    if not lines:
        return None
    lines.append("Sub-block intervals cover how the metrics vary across this specimen, not the segmentation's "
                 "own error. " + ("Total intervals add the error each segmentation makes on hand-labelled "
                                  "slices it did not learn from (uncertainty.total in metrics.json); a "
                                  "segmentation without them has only the sampling interval, and the truth "
                                  "may lie outside it." if measured else
                                  "No labelled slices measured that error here (give hand labels: "
                                  "electroseg analyze hand_labels=..., or train with held-out slices): "
                                  "where two segmentations of the same images differ by more than the "
                                  "interval, the difference is the segmentation's, and the truth may lie "
                                  "outside both intervals."))
    return Section("How far to trust this", paragraphs=tuple(lines))


def _segmentation_line(tree: dict, name: str) -> str | None:
    """One sentence per segmentation: the corrected headline metrics with their total intervals."""
    unc = tree.get("uncertainty") or {}
    check = unc.get("segmentation_check")
    if not check:
        return None
    if not unc.get("segmentation"):
        return f"{name}: segmentation error not measured: {check.get('note', '')}"
    chosen = unc.get("total") or unc["segmentation"]
    kind = "total" if unc.get("total") else "segmentation"
    parts = []
    for metric, label in (("pba_pooled", "PBA"), ("volume_fraction_cbd", "CBD fraction"),
                          ("volume_fraction_am", "AM fraction"),
                          ("particle_volume_weighted_median_um", "particle D50 by volume (µm)")):
        entry, reported = chosen.get(metric) or {}, (unc["segmentation"].get(metric) or {}).get("reported")
        if entry.get("estimate") is not None and entry.get("ci_low") is not None:
            parts.append(f"{label} {format_value(entry['estimate'])} [{format_value(entry['ci_low'])}, "
                         f"{format_value(entry['ci_high'])}] (as segmented {format_value(reported)})")
    labelled = check.get("labelled") or {}
    other = (", measured on other volumes: prediction intervals for this one" if check.get("transfer") else "")
    return (f"{name}: corrected for the segmentation's error on {len(labelled.get('slices') or [])} labelled "
            f"slices ({check.get('source')}{other}), {kind} 95 % intervals: " + "; ".join(parts) +
            f". Through-slice error: {check.get('through_slice')}."
            + (f" Caution: {check['caution']}." if check.get("caution") else ""))


def metrics_section(root: Path) -> Section | None:
    """Every metrics.json side by side, one column per segmentation folder."""
    paths = products(root, "metrics.json")
    if not paths:
        return None
    named = {label_of(p, root): read_json(p) for p in paths}
    table = side_by_side({k: {m: v for m, v in tree.items() if m not in ("uncertainty", "representative_volume")}
                          for k, tree in named.items()}, "Metrics of each segmentation (metrics.json)")
    tables = (table, _uncertainty_table(named)) if any(t.get("uncertainty") for t in named.values()) else (table,)
    if any(t.get("representative_volume") for t in named.values()):
        tables += (_rve_table(named),)
    return Section("Metrics", paragraphs=_pba_convention(named), tables=tables,
                   figures=figures_under(root, [p.parent for p in paths]))


def _pba_convention(named: dict[str, dict]) -> tuple[str, ...]:
    """How PBA was counted: which axis is depth, and that only in-plane face pairs count."""
    axes = {tree.get("depth_axis") for tree in named.values() if isinstance(tree.get("pba"), dict)}
    methods = {tree["pba"].get("method", "face") for tree in named.values() if isinstance(tree.get("pba"), dict)}
    if not axes:
        return ()
    axis = ", ".join(str(a) for a in sorted(a for a in axes if a is not None)) or "?"
    if methods == {"voxel"}:
        how = ("PBA (voxel method): the share of AM surface voxels that touch CBD, per slice along depth "
               f"(array axis {axis}).")
    else:
        how = (f"PBA (face method): the share of AM faces that touch CBD rather than pore. Depth is array axis "
               f"{axis} (separator at index 0); only face pairs inside planes perpendicular to depth count, so "
               "pooled PBA of the same labels changes with depth_axis. PBA by depth is that share per plane.")
    return (how,)


def _rve_table(named: dict[str, dict]) -> Table:
    """Is the imaged volume large enough: per segmentation and metric, the 95 % half width the
    imaged volume supports, the target, the volume that target needs, and the verdict."""
    rows = []
    for source, tree in named.items():
        rve = tree.get("representative_volume") or {}
        for metric, fit in (rve.get("metrics") or {}).items():
            needed = fit.get("volume_needed_um3")
            rows.append((source, metric, format_value(fit.get("half_width")), format_value(fit.get("target_half_width")),
                         format_value(rve.get("imaged_volume_um3")),
                         "no volume (the spread does not fall)" if needed is None else format_value(needed),
                         "yes" if fit.get("sufficient") else "no"))
    return Table("Representative volume: the precision the imaged volume supports (95 % half width, from the "
                 "fall of the between-block spread with block volume) and the volume a target needs",
                 ("segmentation", "metric", "half width", "target", "imaged µm³", "needed µm³", "enough"),
                 tuple(rows))


def _uncertainty_table(named: dict[str, dict]) -> Table:
    """One row per sub-block metric: mean ± std [95 % interval] for each segmentation."""
    per_source = {k: (tree.get("uncertainty") or {}).get("metrics", {}) for k, tree in named.items()}
    keys: list[str] = []
    for metrics in per_source.values():
        keys.extend(m for m in metrics if m not in keys)

    def cell(entry: dict | None) -> str:
        if not entry or entry.get("mean") is None:
            return ""
        text = f"{entry['mean']:.4g} ± {entry.get('std') or 0:.2g}"
        if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
            text += f" [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]"
        return text

    rows = tuple((key, *(cell(per_source[n].get(key)) for n in named)) for key in keys)
    return Table(caption="Within-sample variability over in-plane sub-blocks: mean ± std [bootstrap 95 % interval]",
                 columns=("metric", *named), rows=rows)


def _difference_table(comparison: dict, caption: str) -> Table:
    rows = tuple(tuple(format_value(d.get(c)) for c in _DIFFERENCE_COLUMNS)
                 for d in comparison.get("differences", []))
    return Table(caption=caption, columns=_DIFFERENCE_COLUMNS, rows=rows)


def comparison_sections(root: Path) -> list[Section]:
    """One section per comparison.json: agreement scores and downstream metric differences."""
    sections = []
    for path in products(root, "comparison.json"):
        comparison = read_json(path)
        if "samples" in comparison and "names" not in comparison:  # electroseg analyze inputs=...
            sections.append(_sample_comparison_section(comparison, path, root))
            continue
        names = comparison.get("names", ["a", "b"])
        agreements = comparison.get("agreement", {})
        tables = [side_by_side(agreements, "Voxel agreement (IoU, Dice, boundary F1; "
                                           "confusion matrices in the figures)")]
        tables.append(_difference_table(
            comparison, "Downstream differences (pair 'x − y' = x minus y); 'exceeds' = larger "
                        "than the within-sample variability from in-plane sub-blocks"))
        corrected = comparison.get("corrected_by_hand_labels") or {}
        if corrected:
            rows = tuple((metric, *(_interval_cell(corrected[n].get(metric)) for n in names),
                          {True: "yes", False: "no"}.get(corrected.get("overlap", {}).get(metric), ""))
                         for metric in corrected[names[0]] if metric != "particle_median_diameter_um")
            tables.append(Table(f"Corrected on the {len((corrected.get('check') or {}).get('labelled', {}).get('slices', []))} "
                                "hand-labelled slices: estimate [95 % interval] (as segmented); intervals "
                                "that do not overlap are a disagreement the labelled slices cannot explain",
                                ("metric", *names, "overlap"), rows))
        sections.append(Section(f"Comparison: {' vs '.join(names)}{_where(path, root)}",
                                tables=tuple(t for t in tables if t.rows),
                                figures=figures_under(root, [path.parent])))
    return sections


def _where(path: Path, root: Path) -> str:
    """`` (folder)`` of a product below the report's root; nothing for one at the root."""
    where = label_of(path, root)
    return "" if where in ("", ".") else f" ({where})"


def _sample_comparison_section(comparison: dict, path: Path, root: Path) -> Section:
    """Two samples analysed together (``analyze inputs=``): each metric per sample, the
    difference with its bootstrap interval over in-plane sub-blocks, and whether it excludes 0."""
    a, b = comparison["samples"]
    rows = []
    for metric, entry in (comparison.get("metrics") or {}).items():
        rows.append((metric, format_value(entry.get(a)), format_value(entry.get(b)),
                     _interval_cell({"estimate": entry.get("difference"), "ci_low": entry.get("ci_low"),
                                     "ci_high": entry.get("ci_high")}),
                     {True: "yes", False: "no"}.get(entry.get("excludes_zero"), "")))
    blocks = comparison.get("n_blocks") or {}
    caption = (f"{comparison.get('difference', f'{b} - {a}')}: estimate [95 % interval] "
               f"({comparison.get('method', 'bootstrap')}; sub-blocks {blocks.get(a, '?')} and {blocks.get(b, '?')}). "
               "'beyond the variability' = the interval excludes 0: the samples differ by more than "
               "either varies across its own volume (the segmentation's own error is not in it)")
    table = Table(caption, ("metric", a, b, "difference", "beyond the variability"), tuple(rows))
    tables = (table,) if rows else ()
    total = comparison.get("total") or {}
    if total:  # both samples' segmentation error measured on their hand-labelled slices
        corrected = tuple((metric, _interval_cell({"estimate": e.get("difference"), "ci_low": e.get("ci_low"),
                                                   "ci_high": e.get("ci_high")}),
                           {True: "yes", False: "no"}.get(e.get("excludes_zero"), ""))
                          for metric, e in total.items())
        tables += (Table(f"{b} - {a} of the estimates corrected for each segmentation's error on its hand-labelled "
                         "slices: difference [95 % interval holding both samples' sampling and segmentation "
                         "errors]; 'significant' = the interval excludes 0",
                         ("metric", "corrected difference", "significant"), corrected),)
    return Section(f"Two samples: {b} against {a}{_where(path, root)}",
                   tables=tables, figures=figures_under(root, [path.parent]))


def _interval_cell(entry: dict | None) -> str:
    if not entry or entry.get("estimate") is None:
        return ""
    text = format_value(entry["estimate"])
    if entry.get("ci_low") is not None:
        text += f" [{format_value(entry['ci_low'])}, {format_value(entry['ci_high'])}]"
    return text + (f" ({format_value(entry['reported'])})" if entry.get("reported") is not None else "")


_CYCLING_COLUMNS = ("pristine", "cycled", "drop", "ci_low", "ci_high", "corrected_drop", "total_low",
                    "total_high", "significant", "error_vs_truth", "corrected_error_vs_truth")


def cycling_section(root: Path) -> Section | None:
    """The pristine-versus-cycled study (``cycling.json``) with its PBA-versus-depth figure."""
    paths = products(root, "cycling.json")
    if not paths:
        return None
    cycling = read_json(paths[0])
    lines = tuple(str(line) for line in cycling.get("lines", []))
    routes = cycling.get("routes", {})
    recovers = cycling.get("recovers_truth", {})
    tolerance = cycling.get("tolerance")
    rows = tuple((name, *(format_value(route.get(c)) for c in _CYCLING_COLUMNS),
                  {True: "yes", False: "no"}.get(recovers.get(name), ""))
                 for name, route in routes.items())
    within = f"within ±{tolerance:g}" if isinstance(tolerance, (int, float)) else "within tolerance"
    table = Table(caption="Pooled PBA, pristine versus cycled: drop = cycled − pristine, with its "
                          "95 % interval from in-plane sub-blocks; the corrected drop (estimates corrected on "
                          "hand-labelled slices) with its total interval, significant when that excludes 0",
                  columns=("segmentation", "PBA pristine", "PBA cycled", "drop", "95 % low", "95 % high",
                           "corrected drop", "total low", "total high", "significant",
                           "drop − true drop", "corrected drop − true drop", f"as segmented, {within} of the true drop"),
                  rows=rows)
    return Section("Cycling study", paragraphs=lines, tables=(table,) if rows else (),
                   figures=figures_under(root, [paths[0].parent]))


def config_section(root: Path) -> Section | None:
    """The composed configuration the run used (``config.yaml`` at the run root)."""
    path = root / "config.yaml"
    if not path.is_file():
        return None
    return Section("Configuration", preformatted=path.read_text())


def provenance_section(root: Path) -> Section:
    """Package versions (recorded by the run, else read now) and input sha256 hashes."""
    recorded = read_json(root / "provenance.json") if (root / "provenance.json").is_file() else {}
    versions = recorded.get("versions") or package_versions()
    inputs = recorded.get("inputs", {})
    tables = [Table("Package versions", ("package", "version"),
                    tuple((k, str(v)) for k, v in versions.items()))]
    if inputs:
        tables.append(Table("Input files (full paths and sha256 in provenance.json)", ("input", "file", "sha256"),
                            tuple((k, _short_path(v.get("path")), _short_hash(v.get("sha256")))
                                  for k, v in inputs.items())))
    note = () if recorded else ("No provenance.json in the run folder: versions are those "
                                "installed when this report was built.",)
    return Section("Provenance", paragraphs=note, tables=tuple(tables))


def _short_path(path: object) -> str:
    """The last two parts of a path (the table must fit the page; provenance.json has it whole)."""
    parts = Path(str(path)).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else str(path)


def _short_hash(digest: object) -> str:
    """The first 16 hex digits of a sha256 (64 bits: enough to tell files apart by eye)."""
    text = str(digest)
    return text[:16] + "…" if len(text) > 16 else text


def collect_report(root: str | Path, *, title: str | None = None) -> Report:
    """Build the `Report` of a run folder from its products.

    Parameters
    ----------
    root : path
        The run's output folder (the ``out`` of ``electroseg run`` or ``electroseg compare``).
    title : str, optional
        Defaults to ``"electroseg report: <folder name>"``.
    """
    root = Path(root)
    sections = [trust_section(root), summary_section(root), cycling_section(root), metrics_section(root),
                *comparison_sections(root)]
    used = {p for s in sections if s is not None for p in s.figures}
    others = tuple(p for p in sorted(root.rglob("*.png")) if p not in used)
    if others:
        sections.append(Section("Other figures", figures=others))
    sections += [config_section(root), provenance_section(root)]
    return Report(title=title or f"electroseg report: {root.resolve().name}", root=root,
                  sections=tuple(s for s in sections if s is not None))


__all__ = ["collect_report", "flatten"]
