"""Pristine versus cycled: the PBA drop of each segmentation route, with its interval.

Seed paper 000 measures the AM/CBD contact ("PBA", neighbour counting) on FIB-SEM volumes of
pristine and cycled NMC cathodes: about 0.54 → 0.48 → 0.43 over 50 cycles. Here each route
(classical, learned, ground truth) gives a drop ``cycled − pristine`` of the pooled PBA with a
bootstrap interval from in-plane sub-blocks (`electroseg.analysis.sample_comparison.compare_samples`),
and a route recovers the truth when its drop is within ``tolerance`` of the truth's.

Where both analyses measured the segmentation's own error (``uncertainty.total`` of
metrics.json: hand-labelled slices, or the checkpoint's held-out slices), the drop is also given
between the corrected estimates, with an interval holding both the sampling and the
segmentation's error (`electroseg.analysis.sample_comparison.difference_interval`); the drop is
**significant** when that interval excludes zero. Without it the significance is not stated: a sampling-only interval ignores the error of
the segmentation, which on FIB-SEM is often larger than the drop itself.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from electroseg.analysis.sample_comparison import difference_interval
from electroseg.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteDrop:
    """Pooled PBA of one route on both samples and the drop ``cycled − pristine`` (95 % interval)."""

    route: str
    pristine: float | None
    cycled: float | None
    drop: float | None
    ci_low: float | None
    ci_high: float | None
    error_vs_truth: float | None
    corrected_drop: float | None = None
    total_low: float | None = None
    total_high: float | None = None
    corrected_error_vs_truth: float | None = None

    @property
    def significant(self) -> bool | None:
        """Whether the total interval of the drop excludes zero (None without total intervals)."""
        if self.total_low is None or self.total_high is None:
            return None
        return self.total_high < 0 or self.total_low > 0

    def to_dict(self) -> dict:
        return {**self.__dict__, "significant": self.significant}


@dataclass(frozen=True)
class CyclingStudy:
    """Result of `cycling_study`: one `RouteDrop` per route, and the tolerance used."""

    routes: tuple[RouteDrop, ...]
    tolerance: float
    per_depth: dict

    def recovers_truth(self, route: str) -> bool | None:
        """Whether ``route``'s drop is within the tolerance of the truth's (None without truth)."""
        found = {r.route: r for r in self.routes}
        error = found[route].error_vs_truth if route in found else None
        return None if error is None else abs(error) <= self.tolerance

    def lines(self) -> list[str]:
        """Plain-language statements for the summary."""
        out = []
        for r in self.routes:
            if r.drop is None:
                out.append(f"PBA {r.route}: undefined on at least one sample (no AM surface, "
                           f"or a phase missing from the segmentation)")
                continue
            text = (f"PBA {r.route}: pristine {r.pristine:.3f} → cycled {r.cycled:.3f}, "
                    f"drop {r.drop:+.3f}")
            if r.ci_low is not None:
                text += f" (95% interval {r.ci_low:+.3f} to {r.ci_high:+.3f})"
            if r.corrected_drop is not None:
                verdict = "significant" if r.significant else "not significant"
                text += (f"; corrected for the segmentation's error {r.corrected_drop:+.3f} (total interval "
                         f"{r.total_low:+.3f} to {r.total_high:+.3f}: {verdict})")
            elif r.route != "truth":
                text += "; segmentation error not measured (no hand-labelled slices): significance not stated"
            if r.error_vs_truth is not None and r.route != "truth":
                verdict = "within" if abs(r.error_vs_truth) <= self.tolerance else "outside"
                text += (f"; {'as segmented, ' if r.corrected_error_vs_truth is not None else ''}differs "
                         f"from the true drop by {r.error_vs_truth:+.3f} ({verdict} ±{self.tolerance})")
                if r.corrected_error_vs_truth is not None:
                    verdict = "within" if abs(r.corrected_error_vs_truth) <= self.tolerance else "outside"
                    text += f"; corrected, by {r.corrected_error_vs_truth:+.3f} ({verdict} ±{self.tolerance})"
            out.append(text)
        return out

    def to_dict(self) -> dict:
        """The content of cycling.json."""
        return {"lines": self.lines(), "tolerance": self.tolerance,
                "routes": {r.route: r.to_dict() for r in self.routes},
                "recovers_truth": {r.route: self.recovers_truth(r.route) for r in self.routes
                                   if r.route != "truth"}}

    def as_table(self):
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.routes])


def _metrics(run: Path, route: str) -> dict | None:
    path = Path(run) / "analysis" / route / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _route_drop(route: str, pristine: dict, cycled: dict, n_boot: int, seed: int) -> RouteDrop:
    from electroseg.analysis.sample_comparison import compare_samples

    a, b = pristine["pba"]["pooled"], cycled["pba"]["pooled"]
    low = high = None
    if (pristine.get("uncertainty") or {}).get("blocks") and (cycled.get("uncertainty") or {}).get("blocks"):
        result = compare_samples(pristine["uncertainty"], cycled["uncertainty"], n_boot=n_boot,
                                 seed=seed)
        if result.pba_pooled is not None and math.isfinite(result.pba_pooled[3]):
            low, high = float(result.pba_pooled[3]), float(result.pba_pooled[4])
    if a is None or b is None:
        return RouteDrop(route, a, b, None, None, None, None)
    total = difference_interval(*(((m.get("uncertainty") or {}).get("total") or {}).get("pba_pooled")
                            for m in (pristine, cycled)))
    corrected = {} if total is None else dict(zip(("corrected_drop", "total_low", "total_high"), total))
    return RouteDrop(route, a, b, float(b - a), low, high, None, **corrected)


def cycling_study(runs: Mapping[str, str | Path], *,
                  routes: Sequence[str] = ("classical", "learned", "truth"),
                  tolerance: float = 0.03, n_boot: int = 2000, seed: int = 0) -> CyclingStudy:
    """PBA drop of every route between the pristine and the cycled run folders.

    Parameters
    ----------
    runs : mapping with keys "pristine" and "cycled"
        Run folders of `electroseg.pipeline.run_pipeline` (``<run>/analysis/<route>/metrics.json``).
    routes : sequence of str
        Segmentations to compare; those missing from either run are skipped.
    tolerance : float
        Largest acceptable difference between a route's drop and the truth's drop.
    n_boot, seed
        Bootstrap of `compare_samples` (sub-blocks of each sample resampled independently).
    """
    if set(runs) != {"pristine", "cycled"}:
        raise InputError(f"runs: expected keys 'pristine' and 'cycled', got {sorted(runs)}")
    found, per_depth = [], {}
    for route in routes:
        pristine, cycled = _metrics(runs["pristine"], route), _metrics(runs["cycled"], route)
        if pristine is None or cycled is None or not pristine.get("pba"):
            continue
        found.append(_route_drop(route, pristine, cycled, n_boot, seed))
        per_depth[f"{route} pristine"] = pristine["pba"]["per_depth"]
        per_depth[f"{route} cycled"] = cycled["pba"]["per_depth"]
    if not found:
        raise InputError(f"runs {dict(runs)}: no analysis/<route>/metrics.json with PBA in both")
    truth = next((r.drop for r in found if r.route == "truth"), None)
    found = [r if truth is None or r.drop is None else
             replace(r, error_vs_truth=r.drop - truth,
                     corrected_error_vs_truth=None if r.corrected_drop is None else r.corrected_drop - truth)
             for r in found]
    return CyclingStudy(tuple(found), float(tolerance), per_depth)


def write_cycling(study: CyclingStudy, out_dir: str | Path, *,
                  depth_step_um: float | None = None) -> list[Path]:
    """Write ``cycling.json`` and ``pba_depth_cycling.png`` (every route, both samples)."""
    from electroseg.evaluation.figures import pba_depth_figure, save_figure
    from electroseg.io import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = pba_depth_figure(study.per_depth, depth_step_um=depth_step_um)
    return [write_json(out / "cycling.json", study.to_dict()),
            save_figure(figure, out / "pba_depth_cycling.png")]
