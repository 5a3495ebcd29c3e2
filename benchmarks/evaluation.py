"""Speed of voxel agreement (IoU/Dice/confusion) against MONAI's metrics, same volumes, same run.

    .venv/bin/python benchmarks/evaluation.py [--quick]

Peer: ``monai.metrics.compute_iou`` + ``compute_dice`` on one-hot tensors (what a MONAI user
would call). electroseg's ``confusion_matrix`` gives both from one bincount; ``agreement`` adds
boundary F1. Also times ``compare_segmentations`` (metric differences + sub-block variability).
Prints a table and the speed ratio peer / electroseg; checks that the IoU values agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _labels(shape, seed):
    from electroseg.synthetic import load_preset, make_labels

    labels, _ = make_labels(load_preset("nmc_fibsem"), seed=seed, shape=shape)
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    flip = rng.random(labels.shape) < 0.05
    noisy[flip] = rng.integers(0, 3, int(flip.sum()))
    return labels, noisy


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def _monai_iou(labels, reference):
    import torch
    from monai.metrics import compute_dice, compute_iou

    def onehot(a):
        t = torch.from_numpy(a.astype(np.int64))[None]
        return torch.nn.functional.one_hot(t, 3).movedim(-1, 1).float()

    y_pred, y = onehot(labels), onehot(reference)
    iou = compute_iou(y_pred, y, include_background=True, ignore_empty=False)
    compute_dice(y_pred, y, include_background=True, ignore_empty=False)
    return iou.numpy().ravel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="32 x 128 x 128 instead of 64 x 256 x 256")
    args = parser.parse_args()
    shape = (32, 128, 128) if args.quick else (64, 256, 256)
    repeats = 2 if args.quick else 3
    from electroseg.evaluation import agreement, compare_segmentations, confusion_matrix

    reference, labels = _labels(shape, 0)
    t_conf, conf = _best(lambda: confusion_matrix(labels, reference, n_phases=3), repeats)
    t_agree, found = _best(lambda: agreement(labels, reference), repeats)
    t_monai, iou = _best(lambda: _monai_iou(labels, reference), repeats)
    t_cmp, _ = _best(lambda: compare_segmentations(labels, reference, voxel_size=(0.1, 0.05, 0.05)), 1)
    ours = np.array([found.iou[p] for p in found.phases])
    assert np.allclose(ours, iou, atol=1e-5), (ours, iou)
    rows = [("electroseg confusion_matrix (IoU+Dice)", t_conf),
            ("electroseg agreement (+ boundary F1)", t_agree),
            ("MONAI compute_iou + compute_dice", t_monai),
            ("electroseg compare_segmentations", t_cmp)]
    print(f"volume {shape}, {int(np.prod(shape)):,} voxels; best of {repeats} (s); 2 shared CPU cores")
    print(f"{'method':42s} {'seconds':>9s}")
    for name, seconds in rows:
        print(f"{name:42s} {seconds:9.3f}")
    print(f"IoU per phase (equal in both): {np.round(ours, 4).tolist()}")
    print(f"ratio MONAI / electroseg confusion_matrix: {t_monai / t_conf:.2f}x")
    print(f"ratio MONAI / electroseg agreement (incl. boundary F1): {t_monai / t_agree:.2f}x")


if __name__ == "__main__":
    main()
