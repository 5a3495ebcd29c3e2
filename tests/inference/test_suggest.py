"""``electroseg suggest``: the slices to label next, from the model's uncertainty, spread out."""

import json

import numpy as np
import pytest

from electroseg.cli import main
from electroseg.errors import InputError
from electroseg.inference.suggest import suggest_slices
from electroseg.io import write_tiff


def test_picks_the_most_uncertain_slices_at_least_a_gap_apart():
    scores = [0.1, 0.2, 0.95, 0.9, 0.3, 0.1, 0.8, 0.85, 0.2, 0.6]
    assert suggest_slices(scores, 3, min_gap=2, spread="gap") == [2, 7, 9]
    assert suggest_slices(scores, 3, min_gap=3, spread="gap") == [2, 7]  # nothing else lies 3 away from both
    assert suggest_slices(scores, 2, min_gap=2, labelled=[2], spread="gap") == [7, 9]
    assert suggest_slices(scores, 20, min_gap=4, spread="gap") == [2, 7]  # no room for more
    with pytest.raises(InputError, match="n: expected a positive"):
        suggest_slices(scores, 0)
    with pytest.raises(InputError, match="spread: expected one of"):
        suggest_slices(scores, 1, spread="random")


def test_coverage_fills_unlabelled_stretches_and_lets_uncertainty_choose_within_them():
    from functools import partial

    suggest = partial(suggest_slices, spread="coverage")
    flat = np.full(30, 0.5)
    # equal scores: evenly spaced picks, as far from the labelled slice and the ends as they can be
    assert sorted(suggest(flat, 3)) == [7, 15, 22]
    picks = suggest(flat, 2, labelled=[10])
    assert all(abs(z - 10) >= 7 for z in picks) and len(set(picks)) == 2
    # a hard stretch wins, but its neighbours do not: the second pick goes elsewhere
    hard = flat.copy()
    hard[20:23] = 0.9
    first, second = suggest(hard, 2)
    assert first in (20, 21, 22) and abs(second - first) >= 7
    # min_gap stays a hard limit; a slice never comes back twice
    assert len(suggest(flat, 40)) == 30
    assert len(suggest(flat, 40, min_gap=5)) < 10


def test_command_prints_the_suggestions_and_refuses_slices_outside_the_stack(tmp_path, kit, capsys):
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    write_tiff(tmp_path / "stack.tif", kit.grains((12, 20, 18), seed=2), voxel_size=(0.1, 0.05, 0.05))
    assert main(["suggest", f"checkpoint={ckpt}", f"input={tmp_path / 'stack.tif'}", "n=3", "min_gap=3",
                 "labelled=[0]", "json=true", "precision=fp32", "spread=gap"]) == 0
    out = json.loads(capsys.readouterr().out)
    picked = [row["slice"] for row in out["suggested"]]
    assert len(out["per_slice"]) == 12 and 1 <= len(picked) <= 3
    assert all(abs(a - b) >= 3 for i, a in enumerate(picked + [0]) for b in (picked + [0])[i + 1:])
    best = [s for z, s in enumerate(out["per_slice"]) if z >= 3]
    assert out["suggested"][0]["uncertainty"] == pytest.approx(max(best), abs=1e-4)
    assert main(["suggest", f"checkpoint={ckpt}", f"input={tmp_path / 'stack.tif'}", "labelled=[40]"]) != 0
    err = capsys.readouterr().err
    assert "outside" in err and "stack.tif" in err and "Traceback" not in err
