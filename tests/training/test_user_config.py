"""`electroseg train --config-dir` with a user's own dataset config (no synthetic generator)."""

import numpy as np
import torch

from electroseg.cli import main
from electroseg.io import write_tiff
from electroseg.models import model_from_checkpoint


def _scan(folder, rng):
    """Two detectors over a box of three phases; labels on slices 2 and 5 only (255 elsewhere)."""
    truth = np.zeros((8, 32, 32), np.uint8)
    truth[:, 8:24, 8:24] = 2
    truth[:, 4:8, :] = 1
    bse = (truth * 80 + rng.normal(0, 10, truth.shape)).clip(0, 255).astype(np.uint8)
    tld = (255 - truth * 60 + rng.normal(0, 10, truth.shape)).clip(0, 255).astype(np.uint8)
    sparse = np.full_like(truth, 255)
    sparse[[2, 5]] = truth[[2, 5]]
    folder.mkdir(parents=True)
    write_tiff(folder / "bse.tif", bse, voxel_size=(0.05, 0.025, 0.025))
    write_tiff(folder / "tld.tif", tld, voxel_size=(0.05, 0.025, 0.025))
    write_tiff(folder / "slices.tif", np.where(sparse == 255, 0, sparse + 1).astype(np.uint8))


def test_user_dataset_config_with_two_detectors_and_napari_labels(tmp_path):
    rng = np.random.default_rng(0)
    _scan(tmp_path / "scans" / "a", rng)
    _scan(tmp_path / "scans" / "b", rng)
    (tmp_path / "configs" / "data").mkdir(parents=True)
    (tmp_path / "configs" / "data" / "my_cathode.yaml").write_text(f"""
name: my_cathode
root: {tmp_path / 'scans'}
phases: [pore, cbd, am]
voxel_size: null
channels: [bse, tld]
volumes:
  - images: {{bse: a/bse.tif, tld: a/tld.tif}}
    hand_labels: a/slices.tif
    split: train
  - images: {{bse: b/bse.tif, tld: b/tld.tif}}
    hand_labels: b/slices.tif
    split: val
ignore_value: 0
label_values: [1, 2, 3]   # napari: 0 = unlabelled, 1..3 = phases
pseudo_labels: false
""")
    out = tmp_path / "run"
    status = main(["train", "--config-dir", str(tmp_path / "configs"), "data=my_cathode",
                   "model=multichannel2d_tiny", "trainer=fast", "trainer.max_epochs=1",
                   "trainer.enable_progress_bar=false", "loader.samples_per_epoch=8", "loader.val_patches=4",
                   f"out={out}"])
    assert status == 0
    assert (out / "config.yaml").is_file()
    loaded = model_from_checkpoint(torch.load(out / "checkpoints" / "last.ckpt", weights_only=True))
    spec = loaded.spec
    assert spec.channels == ("bse", "tld") and spec.context_slices == 1
    assert spec.kwargs["in_channels"] == 6  # 2 detectors x 3 slices
    assert spec.voxel_size == (0.05, 0.025, 0.025)  # read from the TIFFs
    assert loaded.network(torch.rand(2, 6, 32, 32)).shape == (2, 3, 32, 32)
