"""Make docs/napari_widget.png: the electroseg widget in a real napari window after the whole loop.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1700x1050x24" .venv/bin/python docs/napari_screenshot.py

A generated FIB-SEM stack (the ``nmc_fibsem`` preset, cropped), a few brush strokes of each
phase on two slices, fine-tuning ``pretrained:electrode-3phase`` for a few epochs, Predict,
Suggest slices and Analyse, all through the widget's buttons; then a screenshot of the window.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
warnings.filterwarnings("ignore", message="System theme detection")  # PyQt5: no toast over the canvas


def strokes(truth: np.ndarray, z: int, rng: np.random.Generator, per_phase: int = 6, radius: int = 3) -> np.ndarray:
    """Brush dabs inside each phase on slice z (what a user paints), as painted values (phase + 1)."""
    from scipy import ndimage

    painted = np.zeros(truth.shape[1:], np.uint8)
    yy, xx = np.mgrid[: truth.shape[1], : truth.shape[2]]
    for phase in np.unique(truth[z]):
        inside = ndimage.binary_erosion(truth[z] == phase, iterations=radius)
        points = np.argwhere(inside)
        for y, x in points[rng.choice(len(points), min(per_phase, len(points)), replace=False)]:
            disk = (yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2
            painted[disk & (truth[z] == phase)] = phase + 1
    return painted


def main(out: Path) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from electroseg.synthetic import load_preset, make_sample

    sample = make_sample(load_preset("nmc_fibsem"), seed=3)
    name = next(iter(sample.images))
    image = np.asarray(sample.images[name])[:24, :160, :224]
    truth = np.asarray(sample.labels)[:24, :160, :224]
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1650, 1000)
    viewer.add_image(image, name=name, scale=sample.voxel_size)
    _, widget = viewer.window.add_plugin_dock_widget("electroseg", "Label, train, predict, analyse")
    work = Path(tempfile.mkdtemp(prefix="electroseg-napari-"))
    widget.folder_edit.setText(str(work))
    widget.name_edit.setText("my_cathode")
    layer = widget.new_labels_layer()
    rng = np.random.default_rng(0)
    for z in (4, 16):
        layer.data[z] = strokes(truth, z, rng)
    layer.refresh()
    widget.epochs_spin.setValue(4)

    def wait() -> None:
        while widget.busy:
            QApplication.processEvents()

    for step in (widget.train, widget.predict, widget.suggest, widget.analyse):
        step()
        wait()
    viewer.layers["hand labels"].visible = True
    viewer.layers.selection.active = viewer.layers["prediction"]
    viewer.dims.set_current_step(0, 4)
    QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    from PIL import Image

    Image.fromarray(shot).convert("RGB").quantize(colors=128).save(out, optimize=True)  # ~90 KB
    print(f"wrote {out}; work folder {work}")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("napari_widget.png"))
