"""``electroseg suggest checkpoint=CK input=IMG n=K``: the slices to label next."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from electroseg.config import plain as _plain
from electroseg.errors import InputError

HELP = "the Z slices to label next, best first, from the model's uncertainty (spread, not neighbours)"


def run(cfg: DictConfig) -> int:
    from electroseg.inference import load_checkpoint
    from electroseg.inference.suggest import slice_uncertainty, suggest_slices
    from electroseg.io import labelled_slices, read_labels, read_volume
    from electroseg.io.labels import label_file_spec

    model = load_checkpoint(str(cfg.checkpoint))
    image = read_volume(str(cfg.input))
    labelled = [int(z) for z in (_plain(cfg.labelled) or [])]
    given = _plain(cfg.get("hand_labels"))
    if given:
        spec = label_file_spec(given)
        hand = read_labels(spec["path"], phases=model.spec.phases, label_values=spec["label_values"],
                           ignore_value=spec["ignore_value"])
        labelled += labelled_slices(hand.numpy())
    n_slices = image.spatial_shape[0] if image.ndim_spatial == 3 else 1
    bad = [z for z in labelled if not 0 <= z < n_slices]
    if bad:
        raise InputError(f"labelled: slices {bad} are outside {cfg.input}'s 0..{n_slices - 1}")
    scores = slice_uncertainty(model, image, precision=str(cfg.precision))
    picked = suggest_slices(scores, int(cfg.n), min_gap=cfg.min_gap, labelled=labelled, spread=str(cfg.spread))
    rows = [{"slice": z, "uncertainty": round(float(scores[z]), 4)} for z in picked]
    if cfg.json:
        print(json.dumps({"suggested": rows, "labelled": sorted(set(labelled)),
                          "per_slice": [round(float(s), 4) for s in scores]}, indent=2))
    else:
        print(f"label next ({cfg.input}, {len(scores)} slices; mean normalised entropy, best first):")
        if n_slices == 1:
            print("  (a 2-D image is one slice: label regions of it where the model's uncertainty map, from "
                  "electroseg predict, is high)")
        for row in rows:
            print(f"  slice {row['slice']:>5}   uncertainty {row['uncertainty']:.4f}")
    return 0
