"""The pristine-versus-cycled study on hand-made run folders."""

import json

import numpy as np
import pytest

from electroseg.analysis.metrics import analyze_labels
from electroseg.errors import InputError
from electroseg.evaluation.cycling import cycling_study, write_cycling


def _write_metrics(run, route, pooled, per_depth=(0.5, 0.5), uncertainty=None):
    folder = run / "analysis" / route
    folder.mkdir(parents=True)
    metrics = {"pba": {"pooled": pooled, "per_depth": list(per_depth)}}
    if uncertainty is not None:
        metrics["uncertainty"] = uncertainty
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_drops_and_errors_against_truth(tmp_path):
    runs = {"pristine": tmp_path / "p", "cycled": tmp_path / "c"}
    for route, before, after in (("truth", 0.55, 0.45), ("classical", 0.60, 0.55),
                                 ("learned", 0.56, 0.47)):
        _write_metrics(runs["pristine"], route, before)
        _write_metrics(runs["cycled"], route, after)
    study = cycling_study(runs)
    drops = {r.route: r for r in study.routes}
    assert drops["truth"].drop == pytest.approx(-0.10)
    assert drops["classical"].error_vs_truth == pytest.approx(0.05)   # -0.05 - (-0.10)
    assert drops["learned"].error_vs_truth == pytest.approx(0.01)     # -0.09 - (-0.10)
    assert study.recovers_truth("learned") is True
    assert study.recovers_truth("classical") is False
    assert drops["learned"].ci_low is None  # no sub-block uncertainty recorded
    assert any("within ±0.03" in line for line in study.lines())
    assert drops["learned"].corrected_error_vs_truth is None  # no total interval: nothing corrected


def test_the_corrected_drop_is_scored_against_the_true_drop_too(tmp_path):
    runs = {"pristine": tmp_path / "p", "cycled": tmp_path / "c"}
    for run, pooled, estimate in ((runs["pristine"], 0.60, 0.55), (runs["cycled"], 0.57, 0.46)):
        _write_metrics(run, "classical", pooled, uncertainty={"total": {"pba_pooled": {
            "estimate": estimate, "ci_low": estimate - 0.03, "ci_high": estimate + 0.04}}})
    _write_metrics(runs["pristine"], "truth", 0.55)
    _write_metrics(runs["cycled"], "truth", 0.45)
    route = next(r for r in cycling_study(runs).routes if r.route == "classical")
    assert route.error_vs_truth == pytest.approx(0.07)                 # -0.03 - (-0.10)
    assert route.corrected_drop == pytest.approx(-0.09)                # 0.46 - 0.55
    assert route.corrected_error_vs_truth == pytest.approx(0.01)
    assert route.total_low == pytest.approx(-0.09 - 0.05)   # cycled 0.03 down, pristine 0.04 up: 3-4-5
    assert route.significant is True
    line = next(line for line in cycling_study(runs).lines() if line.startswith("PBA classical"))
    assert "as segmented, differs from the true drop by +0.070 (outside ±0.03)" in line
    assert "corrected, by +0.010 (within ±0.03)" in line


def test_interval_from_sub_blocks_brackets_the_drop(tmp_path):
    # In-plane X runs (depth is Y). Pristine X = [am am cbd cbd] * 4: all 7 AM-surface pairs
    # touch CBD, PBA 1. Cycled X = [am am cbd cbd am am pore pore] * 2: 7 AM-surface pairs, 4 with
    # CBD, PBA 4/7. Sub-blocks halve X: each cycled block has 3 surface pairs, 2 with CBD (2/3),
    # each pristine block 3 of 3; all blocks alike, so the bootstrap interval is the point -1/3.
    pristine = np.tile(np.array([2, 2, 1, 1], np.uint8), (4, 4, 4))
    cycled = np.tile(np.array([2, 2, 1, 1, 2, 2, 0, 0], np.uint8), (4, 4, 2))
    runs = {"pristine": tmp_path / "p", "cycled": tmp_path / "c"}
    for name, labels in (("pristine", pristine), ("cycled", cycled)):
        result = analyze_labels(labels, voxel_size=(1.0, 1.0, 1.0), depth_axis=1, n_blocks=2)
        d = result.to_dict()
        _write_metrics(runs[name], "truth", d["pba"]["pooled"], d["pba"]["per_depth"],
                       d["uncertainty"])
    route = cycling_study(runs, routes=("truth",)).routes[0]
    assert route.pristine == 1.0 and route.cycled == pytest.approx(4 / 7)
    assert route.drop == pytest.approx(4 / 7 - 1)
    assert route.ci_low == pytest.approx(-1 / 3) and route.ci_high == pytest.approx(-1 / 3)
    written = write_cycling(cycling_study(runs, routes=("truth",)), tmp_path / "out")
    assert [p.name for p in written] == ["cycling.json", "pba_depth_cycling.png"]
    assert written[1].read_bytes().startswith(b"\x89PNG")


def test_missing_runs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="pristine"):
        cycling_study({"before": tmp_path, "after": tmp_path})
    with pytest.raises(InputError, match="no analysis"):
        cycling_study({"pristine": tmp_path / "p", "cycled": tmp_path / "c"})


def test_route_without_pba_is_reported_undefined(tmp_path):
    runs = {"pristine": tmp_path / "p", "cycled": tmp_path / "c"}
    for name, pooled in (("pristine", None), ("cycled", 0.4)):
        _write_metrics(runs[name], "learned", pooled)
    study = cycling_study(runs, routes=("learned",))
    assert study.routes[0].drop is None and study.routes[0].ci_low is None
    assert study.lines() == ["PBA learned: undefined on at least one sample (no AM surface, "
                             "or a phase missing from the segmentation)"]


def test_significance_comes_from_the_total_intervals(tmp_path):
    """The drop between corrected estimates, with both samples' total half widths in quadrature."""
    runs = {"pristine": tmp_path / "p", "cycled": tmp_path / "c"}
    totals = {"classical": ((0.60, 0.57, 0.64), (0.50, 0.47, 0.54)),   # -0.10 [-0.15, -0.05]
              "learned": ((0.55, 0.45, 0.65), (0.52, 0.42, 0.62))}     # -0.03 [-0.17, +0.11]
    for route, (before, after) in totals.items():
        for run, (estimate, low, high) in ((runs["pristine"], before), (runs["cycled"], after)):
            total = {"pba_pooled": {"estimate": estimate, "ci_low": low, "ci_high": high}}
            _write_metrics(run, route, estimate + 0.05, uncertainty={"total": total})
    _write_metrics(runs["pristine"], "truth", 0.58)
    _write_metrics(runs["cycled"], "truth", 0.49)
    drops = {r.route: r for r in cycling_study(runs).routes}
    classical, learned = drops["classical"], drops["learned"]
    assert classical.corrected_drop == pytest.approx(-0.10)
    assert classical.total_low == pytest.approx(-0.15) and classical.total_high == pytest.approx(-0.05)
    assert classical.significant is True and learned.significant is False
    assert drops["truth"].significant is None  # no segmentation error to measure
    lines = cycling_study(runs).lines()
    assert any("classical" in line and ": significant)" in line for line in lines)
    assert any("learned" in line and "not significant" in line for line in lines)
    assert cycling_study(runs).to_dict()["routes"]["classical"]["significant"] is True
