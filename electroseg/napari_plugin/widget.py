"""The dock widget: label a few slices, train or fine-tune, predict, suggest, analyse, save.

Every long step (train, predict, suggest, analyse) runs in a background thread (napari's
``create_worker``); the viewer stays usable and the buttons come back when it ends. Training
reports one line per epoch and moves the progress bar; **Cancel** stops it after the current
step (the best model so far is kept). Errors appear as napari notifications with the same one
line the command line prints.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                            QLabel, QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit, QProgressBar,
                            QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from electroseg.napari_plugin import session
from electroseg.napari_plugin.layers import labelled_slices, labels_layer_kwargs
from electroseg.napari_plugin.reader import label_colormap

__all__ = ["ElectrosegWidget"]

logger = logging.getLogger(__name__)

SCRATCH = "from scratch (multichannel2d)"
TRAINED = "this session's model"
PREDICTION, UNCERTAINTY = "prediction", "uncertainty"


class _Signals(QObject):
    """Carries the training thread's per-epoch lines into the GUI thread (queued connection)."""

    epoch = Signal(int, int, str)


def error_message(err: BaseException) -> str:
    """The one line the command line would print for ``err`` (its type and text otherwise)."""
    from electroseg.cli import user_error_message

    message = user_error_message(err)
    if message is None:
        message = f"{type(err).__name__}: {' '.join(str(err).split())}"
    return message


def _button(text: str, slot: Callable) -> QPushButton:
    button = QPushButton(text)
    button.clicked.connect(slot)
    return button


class ElectrosegWidget(QWidget):
    """Label, train, predict, suggest, analyse and save from one napari dock widget.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    folder : str or Path, optional
        Work folder for saved datasets (``data/``, ``images/``, ``labels/``) and training runs
        (``runs/``); default ``./electroseg-napari``.

    Attributes
    ----------
    checkpoint : str or None
        The model this session trained (best.ckpt), once training has ended.
    train_overrides : list of str
        Extra ``electroseg train`` overrides (e.g. ``loader.samples_per_epoch=64``).
    last_metrics : dict or None
        The last training's metrics (train_metrics.json content, plus ``cancelled``).
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None, *, folder: str | Path | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.checkpoint: str | None = None
        self.train_overrides: list[str] = []
        self.last_metrics: dict | None = None
        self.saved: session.SavedDataset | None = None
        self._worker: Any = None
        self._worker_is_training = False
        self._cancel = threading.Event()
        self._signals = _Signals()
        self._signals.epoch.connect(self._on_epoch)
        self._build(Path(folder) if folder is not None else Path.cwd() / "electroseg-napari")
        for event in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, event).connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------------ layout
    def _build(self, folder: Path) -> None:
        layout = QVBoxLayout(self)

        data = QGroupBox("Data")
        form = QFormLayout(data)
        self.image_list = QListWidget()
        self.image_list.setMaximumHeight(80)
        self.image_list.setToolTip("Image layers to use, one per detector (in this order)")
        form.addRow("Images", self.image_list)
        self.phases_edit = QLineEdit("pore, cbd, am")
        self.phases_edit.setToolTip("Phase names in order; paint phase i with label i + 1 (0 erases)")
        form.addRow("Phases", self.phases_edit)
        row = QHBoxLayout()
        self.labels_combo = QComboBox()
        self.labels_combo.setToolTip("The labels layer you paint on (0 = unlabelled, phase i = i + 1)")
        self.new_labels_button = QPushButton("New")
        self.new_labels_button.clicked.connect(self.new_labels_layer)
        row.addWidget(self.labels_combo, 1)
        row.addWidget(self.new_labels_button)
        form.addRow("Paint on", row)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        form.addRow("", self.legend)
        self.phases_edit.textChanged.connect(self._update_legend)
        self._update_legend()
        layout.addWidget(data)

        model = QGroupBox("Model")
        form = QFormLayout(model)
        self.model_combo = QComboBox()
        from electroseg.models.pretrained import PREFIX, available

        self.model_combo.addItems([*(PREFIX + name for name in available()), SCRATCH])
        self.model_combo.setToolTip("Train: start from it (fine-tune) or from scratch. Predict/Suggest: use it.")
        form.addRow("Start from", self.model_combo)
        self.phases_edit.textChanged.connect(self._default_start)
        self.image_list.itemChanged.connect(self._default_start)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(20)
        form.addRow("Epochs", self.epochs_spin)
        self.name_edit = QLineEdit("my_electrode")
        form.addRow("Dataset name", self.name_edit)
        self.folder_edit = QLineEdit(str(folder))
        form.addRow("Work folder", self.folder_edit)
        layout.addWidget(model)

        self.train_button = _button("Train / fine-tune", self.train)
        self.cancel_button = _button("Cancel", self.cancel)
        self.cancel_button.setEnabled(False)
        self.predict_button = _button("Predict", self.predict)
        self.suggest_button = _button("Suggest slices", self.suggest)
        self.suggest_spin = QSpinBox()
        self.suggest_spin.setRange(1, 50)
        self.suggest_spin.setValue(3)
        self.analyse_button = _button("Analyse", self.analyse)
        self.save_button = _button("Save dataset", self.save)
        for row in ((self.train_button, self.cancel_button), (self.predict_button, self.suggest_button,
                                                               self.suggest_spin),
                    (self.analyse_button, self.save_button)):
            buttons = QHBoxLayout()
            for widget in row:
                buttons.addWidget(widget)
            layout.addLayout(buttons)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setMinimumHeight(90)
        layout.addWidget(self.log)
        self.suggestions = QListWidget()
        self.suggestions.setMaximumHeight(70)
        self.suggestions.itemClicked.connect(self._jump)
        layout.addWidget(self.suggestions)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["metric", "value", "95 % interval"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        layout.addWidget(self.table)
        self._action_buttons = [self.train_button, self.predict_button, self.suggest_button, self.analyse_button,
                                self.save_button, self.new_labels_button]

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        """True while a background step runs."""
        return self._worker is not None

    def phases(self) -> list[str]:
        return [p.strip() for p in self.phases_edit.text().split(",") if p.strip()]

    def _update_legend(self) -> None:
        from electroseg.napari_plugin.layers import phase_colours

        phases = self.phases()
        self.legend.setText("  ".join(f'<span style="color:{c}">■</span> {i + 1} = {p}'
                                      for i, (p, c) in enumerate(zip(phases, phase_colours(phases)))))

    def _default_start(self, *_: Any) -> None:
        """Follow the phases and detectors with the start model, unless this session's model is
        chosen: the shipped models read one detector (two detectors start from scratch)."""
        if self.model_combo.currentText() == TRAINED:
            return
        start = session.default_start(self.phases(), max(1, len(self.image_names())))
        self.model_combo.setCurrentText(start or SCRATCH)

    def _refresh_layers(self, *_: Any) -> None:
        from napari.layers import Image, Labels

        try:
            self.image_list.count()
        except RuntimeError:  # the Qt side was deleted (dock closed): stop listening to the viewer
            for event in ("inserted", "removed", "reordered"):
                getattr(self.viewer.layers.events, event).disconnect(self._refresh_layers)
            return
        checked = set(self.image_names()) if self.image_list.count() else None
        self.image_list.clear()
        for layer in self.viewer.layers:
            if isinstance(layer, Image) and not layer.metadata.get("electroseg_output"):
                item = QListWidgetItem(layer.name)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                wanted = layer.name in checked if checked else self.image_list.count() == 0
                item.setCheckState(Qt.Checked if wanted else Qt.Unchecked)
                self.image_list.addItem(item)
        current = self.labels_combo.currentText()
        self.labels_combo.clear()
        names = [layer.name for layer in self.viewer.layers
                 if isinstance(layer, Labels) and layer.metadata.get("painted")]
        self.labels_combo.addItems(names)
        if current in names:
            self.labels_combo.setCurrentText(current)
        self._default_start()

    def image_names(self) -> list[str]:
        """The checked image layers, in list order (one per detector)."""
        return [self.image_list.item(i).text() for i in range(self.image_list.count())
                if self.image_list.item(i).checkState() == Qt.Checked]

    def _images(self) -> tuple[dict[str, np.ndarray], tuple[float, ...]]:
        """{layer name: data (copied)} of the chosen image layers and the first one's scale."""
        from electroseg.errors import InputError

        names = self.image_names()
        if not names:
            raise InputError("images: no image layer chosen; open an image and tick it under Images")
        layers = [self.viewer.layers[n] for n in names]
        for layer in layers:
            if layer.rgb or layer.data.ndim not in (2, 3):
                raise InputError(f"image layer {layer.name!r}: expected a grey (Y, X) image or (Z, Y, X) stack, "
                                 f"got shape {tuple(layer.data.shape)}{' (RGB)' if layer.rgb else ''}")
        return {layer.name: np.array(layer.data) for layer in layers}, tuple(float(s) for s in layers[0].scale)

    def _painted(self) -> Any:
        from electroseg.errors import InputError

        name = self.labels_combo.currentText()
        if not name or name not in self.viewer.layers:
            raise InputError("labels layer: none to paint on; press New beside 'Paint on' and paint a few slices")
        return self.viewer.layers[name]

    def _model_choice(self, *, for_training: bool) -> str | None:
        """The checkpoint to start from (training) or to predict with."""
        from electroseg.errors import InputError

        choice = self.model_combo.currentText()
        if choice == TRAINED:
            return self.checkpoint
        if choice == SCRATCH:
            if for_training:
                return None
            if self.checkpoint is None:
                raise InputError("model: nothing trained yet; train first, or choose a pretrained model")
            return self.checkpoint
        return choice

    # ------------------------------------------------------------------ actions
    def new_labels_layer(self) -> Any:
        """An empty labels layer the shape of the first chosen image, in the phase colours."""
        try:
            images, scale = self._images()
            phases = self.phases()
            shape = next(iter(images.values())).shape
            kwargs = labels_layer_kwargs(phases, painted=True, name="hand labels")
            kwargs["colormap"] = label_colormap(kwargs["metadata"]["colours"])
            layer = self.viewer.add_labels(np.zeros(shape, np.uint8), scale=scale, **kwargs)
            layer.selected_label = 1
            layer.mode = "paint"
            self.labels_combo.setCurrentText(layer.name)
            return layer
        except Exception as err:  # noqa: BLE001 - every error becomes a notification
            self._error(err)
            return None

    def save(self) -> session.SavedDataset | None:
        """Write the dataset config, images and hand labels (``electroseg train --config-dir``)."""
        try:
            self.saved = self._save()
        except Exception as err:  # noqa: BLE001
            self._error(err)
            return None
        self._say(f"saved {self.saved.config}; train from the shell: {self.saved.train_command()}")
        return self.saved

    def _save(self) -> session.SavedDataset:
        images, scale = self._images()
        painted = np.array(self._painted().data)
        voxel = None if all(s == 1.0 for s in scale) else scale
        return session.save_dataset(self.folder_edit.text(), self.name_edit.text(), images, painted, self.phases(),
                                    voxel_size=voxel)

    def train(self) -> None:
        """Save the dataset, then train (or fine-tune) in the background."""
        if self.busy:
            return
        try:
            self.saved = self._save()
            init = self._model_choice(for_training=True)
            out = Path(self.folder_edit.text()) / "runs" / self.saved.name
            cfg = session.train_config(self.saved, out, init=init, epochs=self.epochs_spin.value(),
                                       overrides=self.train_overrides)
        except Exception as err:  # noqa: BLE001
            self._error(err)
            return
        self._cancel.clear()
        self.progress.setRange(0, self.epochs_spin.value())
        self.progress.setValue(0)
        self._say(f"training on slices {list(self.saved.labelled_slices)} from {init or 'scratch'} -> {out}")
        self._start(session.train_model, self._trained, cfg, on_epoch=self._signals.epoch.emit, cancel=self._cancel)

    def predict(self) -> None:
        """Labels and uncertainty layers from the chosen model."""
        if self.busy:
            return
        try:
            checkpoint = self._model_choice(for_training=False)
            images, scale = self._images()
        except Exception as err:  # noqa: BLE001
            self._error(err)
            return
        self._say(f"predicting with {checkpoint}")
        self._busy_bar()
        self._start(session.predict, lambda r: self._predicted(r, scale), checkpoint, list(images.values()))

    def suggest(self) -> None:
        """The slices to label next (best first); the viewer jumps to the first."""
        if self.busy:
            return
        try:
            checkpoint = self._model_choice(for_training=False)
            images, _ = self._images()
            labelled = labelled_slices(self._painted().data) if self.labels_combo.currentText() else []
        except Exception as err:  # noqa: BLE001
            self._error(err)
            return
        self._busy_bar()
        self._start(session.suggest, self._suggested, checkpoint, list(images.values()), self.suggest_spin.value(),
                    labelled=labelled)

    def analyse(self) -> None:
        """Headline metrics of the prediction layer, in the table."""
        if self.busy:
            return
        from electroseg.errors import InputError

        try:
            if PREDICTION not in self.viewer.layers:
                raise InputError("analyse: no prediction layer yet; press Predict first")
            layer = self.viewer.layers[PREDICTION]
            phases = layer.metadata.get("phases") or self.phases()
            scale = tuple(float(s) for s in layer.scale)
        except Exception as err:  # noqa: BLE001
            self._error(err)
            return
        if all(s == 1.0 for s in scale):
            self._say("voxel size unknown (layer scale 1): lengths and areas are in voxels")
        self._busy_bar()
        self._start(session.analyse, self._analysed, np.array(layer.data), phases, voxel_size=scale)

    def cancel(self) -> None:
        """Stop training after the current step (other steps finish; their result is dropped)."""
        self._cancel.set()
        self._say("cancelling...")
        if self._worker is not None and not self._worker_is_training:
            self._worker.quit()

    # ------------------------------------------------------------------ worker plumbing
    def _start(self, function: Callable, on_done: Callable, *args: Any, **kwargs: Any) -> None:
        self._worker_is_training = function is session.train_model
        worker = create_worker(function, *args, _start_thread=False, **kwargs)
        worker.returned.connect(lambda result: None if self._cancel.is_set() and not self._worker_is_training
                                else on_done(result))
        worker.errored.connect(self._error)
        worker.finished.connect(self._finished)
        self._worker = worker
        self._set_enabled(False)
        worker.start()

    def _finished(self) -> None:
        self._worker = None
        self._set_enabled(True)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _set_enabled(self, enabled: bool) -> None:
        for button in self._action_buttons:
            button.setEnabled(enabled)
        self.cancel_button.setEnabled(not enabled)

    def _busy_bar(self) -> None:
        self._cancel.clear()
        self.progress.setRange(0, 0)  # indeterminate

    def _on_epoch(self, epoch: int, total: int, line: str) -> None:
        if total:
            self.progress.setRange(0, total)
        self.progress.setValue(epoch)
        self._say(line)

    def _trained(self, metrics: dict) -> None:
        self.last_metrics = metrics
        self.checkpoint = metrics.get("best_checkpoint")
        if self.checkpoint and self.model_combo.findText(TRAINED) < 0:
            self.model_combo.insertItem(0, TRAINED)
        self.model_combo.setCurrentText(TRAINED)
        held = (metrics.get("held_out") or {}).get("mean_iou")
        state = "cancelled" if metrics.get("cancelled") else f"stopped by {metrics.get('stopped_by')}"
        self._say(f"training {state} at step {metrics.get('global_step')}; model {self.checkpoint}"
                  + (f"; held-out mean IoU {held:.3f}" if held is not None else ""))

    def _predicted(self, result: session.PredictResult, scale: tuple[float, ...]) -> None:
        kwargs = labels_layer_kwargs(result.phases, painted=False, name=PREDICTION)
        colormap = label_colormap(kwargs["metadata"]["colours"])
        if PREDICTION in self.viewer.layers:
            layer = self.viewer.layers[PREDICTION]
            layer.data = result.labels
            layer.metadata.update(kwargs["metadata"])
            layer.features = kwargs["features"]  # another model may have other phases
            layer.colormap = colormap
        else:
            self.viewer.add_labels(result.labels, scale=scale, colormap=colormap, **kwargs)
        entropy = result.uncertainty.astype(np.float32)
        if UNCERTAINTY in self.viewer.layers:
            self.viewer.layers[UNCERTAINTY].data = entropy
        else:
            self.viewer.add_image(entropy, name=UNCERTAINTY, colormap="magma", contrast_limits=(0.0, 1.0),
                                  scale=scale, visible=False, metadata={"electroseg_output": "uncertainty"})
        fractions = {p: float((result.labels == i).mean()) for i, p in enumerate(result.phases)}
        self._say("predicted: " + ", ".join(f"{p} {v:.3f}" for p, v in fractions.items())
                  + f"; mean uncertainty {float(entropy.mean()):.3f}")

    def _suggested(self, picks: list[tuple[int, float]]) -> None:
        self.suggestions.clear()
        for z, score in picks:
            item = QListWidgetItem(f"slice {z}   uncertainty {score:.3f}")
            item.setData(Qt.UserRole, z)
            self.suggestions.addItem(item)
        self._say("label next: " + ", ".join(str(z) for z, _ in picks))
        if picks:
            self._jump_to(picks[0][0])

    def _jump(self, item: QListWidgetItem) -> None:
        self._jump_to(int(item.data(Qt.UserRole)))

    def _jump_to(self, z: int) -> None:
        if self.viewer.dims.ndim >= 3:
            self.viewer.dims.set_current_step(self.viewer.dims.ndim - 3, z)

    def _analysed(self, result: tuple[list, dict]) -> None:
        rows, _ = result
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self._say(f"analysed: {len(rows)} metrics")

    def _say(self, line: str) -> None:
        self.log.appendPlainText(line)
        logger.info("napari: %s", line)

    def _error(self, err: BaseException) -> None:
        message = error_message(err)
        self._say(f"error: {message}")
        show_error(message)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self._cancel.set()
        super().closeEvent(event)

