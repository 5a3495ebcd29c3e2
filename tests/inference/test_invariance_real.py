"""Learned labels do not depend on how an input is cut, tiled or stored (real and synthetic images).

Each model is trained briefly with `electroseg train`'s defaults (batch-norm U-Net, intensity
window from the training data where the images share their units) and predicted with the
engine `electroseg predict` uses:

- a crop agrees with the whole input's labels on >= 99 % of the crop's interior (32-pixel margin);
- ``overlap=0.5`` changes <= 1 % of the labels against the default 0.25;
- the same image stored in other units (an affine map to 16-bit counts) changes <= 1 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from electroseg.config import compose_command
from electroseg.inference import load_checkpoint, predict_volume
from electroseg.training import train

pytestmark = pytest.mark.slow

QUIET = ["trainer.max_time=null", "trainer.enable_progress_bar=false", "++trainer.enable_model_summary=false",
         "loader.samples_per_epoch=64", "loader.val_patches=4"]


def _train(out: Path, overrides: list[str], config_dir: Path | None = None):
    cfg = compose_command("train", [*overrides, *QUIET, f"out={out}", f"cache_dir={out / 'cache'}"],
                          config_dir=config_dir)
    metrics = train(cfg)
    return load_checkpoint(out / "checkpoints" / "best.ckpt"), metrics


def _check(model, image: np.ndarray, crop: tuple[slice, ...], margin: int = 32) -> dict:
    whole = predict_volume(model, image).labels
    cropped = predict_volume(model, image[crop]).labels
    inner = (slice(None),) * (cropped.ndim - 2) + (slice(margin, -margin),) * 2
    lo, hi = np.percentile(image, [0.1, 99.9])
    counts = np.clip((image - lo) / (hi - lo) * 50000 + 5000, 0, 65535).round().astype(np.uint16)
    return {"crop": float((whole[crop][inner] == cropped[inner]).mean()),
            "overlap": float((predict_volume(model, image, overlap=0.5).labels != whole).mean()),
            "units": float((predict_volume(model, counts).labels != whole).mean())}


def _assert_invariant(found: dict, crop: float = 0.99) -> None:
    assert found["crop"] >= crop, found
    assert found["overlap"] <= 0.01, found
    assert found["units"] <= 0.01, found


def test_segmentpy_slices(shared_data, tmp_path):
    root = shared_data / "segmentpy"
    model, metrics = _train(tmp_path / "run", ["data=segmentpy", f"data.root={root}", "model=multichannel2d",
                                               "model.context_slices=0", "trainer.max_epochs=4"])
    # SegmentPy's slices each come at their own contrast: every image is normalised by its own
    # window, so other units change nothing, but a crop's window is not the whole slice's: its
    # 0.5 % percentile moves by 1.6 % of the range, and 1-2 % of the labels with it (98.3 % measured;
    # normalization.method=dataset keeps 99.8 % of them but then other units change 4 %: README)
    assert model.spec.normalization["bounds"] is None
    assert metrics["validation"].startswith("held-out labels: ")
    image = tifffile.imread(root / "470.tif")
    found = _check(model, image, (slice(100, 400), slice(100, 400)))
    _assert_invariant(found, crop=0.975)
    # the crop predicted in its parent's window (intensity_window): the window no longer moves,
    # and what is left is where the windows fall (99.7 % here; 99.1 % after 40 epochs: real_data.py)
    whole = predict_volume(model, image)
    window = [whole.intensity[0]["lo"], whole.intensity[0]["hi"]]
    crop = predict_volume(model, image[100:400, 100:400], intensity_window=window)
    assert [b["route"] for b in crop.intensity] == ["given"]
    given = float((whole.labels[100:400, 100:400][32:-32, 32:-32] == crop.labels[32:-32, 32:-32]).mean())
    print("crop agreement: own window", found["crop"], "parent's window", given)
    assert given >= 0.99 and given > found["crop"], (given, found)


def _samba_config(shared_data: Path, folder: Path) -> Path:
    image = tifffile.imread(shared_data / "samba_kintsugi" / "4_phase.tif")
    labels = np.full(image.shape, 255, np.uint8)
    for (x, y, w, h), phase in (((241, 199, 102, 174), 2), ((710, 346, 207, 200), 0), ((4, 460, 145, 52), 1),
                                ((344, 524, 24, 44), 0)):
        labels[y:y + h, x:x + w] = phase
    (folder / "data").mkdir(parents=True)
    tifffile.imwrite(folder / "rois.tif", labels)
    (folder / "data" / "samba.yaml").write_text(
        f"name: samba\nroot: {shared_data / 'samba_kintsugi'}\nphases: [pore, cbd, am]\nchannels: [sem]\n"
        f"volumes:\n  - images: {{sem: 4_phase.tif}}\n    hand_labels: {folder / 'rois.tif'}\n    split: train\n"
        "pseudo_labels: false\n")
    return folder


def test_samba_sem(shared_data, tmp_path):
    config_dir = _samba_config(shared_data, tmp_path / "configs")
    model, metrics = _train(tmp_path / "run", ["data=samba", "model=multichannel2d", "model.context_slices=0",
                                               "trainer.max_epochs=4"], config_dir=config_dir)
    assert model.spec.normalization["bounds"] == [[38.0, 255.0]]
    # one image: the far strip of every labelled rectangle was held out, and scored
    assert set(metrics["held_out"]["iou"]) == {"pore", "cbd", "am"}
    image = tifffile.imread(shared_data / "samba_kintsugi" / "4_phase.tif")
    _assert_invariant(_check(model, image, (slice(150, 450), slice(200, 600))))
    # the crop is read in the training window; the same image as 16-bit counts in its own
    crop = predict_volume(model, image[150:450, 200:600]).intensity
    assert [(b["route"], b["lo"], b["hi"]) for b in crop] == [("dataset", 38.0, 255.0)]
    counts = predict_volume(model, image.astype(np.uint16) * 200).intensity
    assert [b["route"] for b in counts] == ["own"]


def test_nrel_volume(shared_data, tmp_path):
    root = shared_data / "nrel_expertsegmentation"
    model, metrics = _train(tmp_path / "run", ["data=nrel_nmc1cal", f"data.root={root}", "model=multichannel2d",
                                               "model.patch_size=[64,64]", "trainer.max_epochs=4"])
    # the middle labelled slice is held out; every labelled slice is scored in train_metrics.json
    assert [(r["slice"], r["held_out"]) for r in metrics["labelled_slices"]] == [(0, "no"), (33, "all"), (74, "no")]
    volume = tifffile.imread(root / "nmc1cal.tif")
    _assert_invariant(_check(model, volume, (slice(None), slice(0, 70), slice(5, 75)), margin=16))


@pytest.mark.parametrize("model, overlap", [
    (["model=multichannel2d"], 0.01),
    # the 3-D windows are 16 slices deep: each window sees the stack's Z context cut differently,
    # so a briefly trained network moves 1.06 % of the labels with overlap (measured) where the
    # 2.5-D one moves well under 1 %
    (["model=unet3d", "model.patch_size=[16,64,64]"], 0.015),
])
def test_synthetic_fibsem(tmp_path, model, overlap):
    from electroseg.synthetic.samples import prepare_synthetic

    cfg = compose_command("train", ["data=nmc_fibsem", "+data.synthetic.shape=[32,128,128]", *model,
                                    "trainer.max_epochs=8", "data.preprocess=[]",
                                    *QUIET, f"out={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"])
    prepare_synthetic(cfg)
    train(cfg)
    model = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")
    image = tifffile.imread(next((tmp_path / "cache" / "synthetic").rglob("seed0/image.tif")))
    found = _check(model, image, (slice(None), slice(20, 120), slice(10, 110)), margin=16)
    assert found["crop"] >= 0.99 and found["overlap"] <= overlap and found["units"] <= 0.01, found
