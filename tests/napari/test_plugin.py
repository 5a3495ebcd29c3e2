"""The napari plugin in a real viewer: open outputs, paint, train, predict, suggest, analyse, save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from electroseg.napari_plugin import layers as plugin_layers
from electroseg.napari_plugin import session

PHASES = ["pore", "cbd", "am"]
FAST = ["loader.samples_per_epoch=16", "+trainer.limit_val_batches=2"]


def test_the_manifest_names_reader_and_widget():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("electroseg")
    assert [w.command for w in manifest.contributions.widgets] == ["electroseg.widget"]
    assert [r.command for r in manifest.contributions.readers] == ["electroseg.read_output"]
    for command in manifest.contributions.commands:  # every command names an importable object
        module, _, name = command.python_name.partition(":")
        assert hasattr(__import__(module, fromlist=[name]), name)


def test_painted_and_file_conventions_round_trip():
    painted = np.array([[0, 1, 2], [3, 0, 1]], np.uint8)
    hand = plugin_layers.to_hand_labels(painted, PHASES)
    assert hand.tolist() == [[255, 0, 1], [2, 255, 0]]
    assert plugin_layers.to_painted(hand).tolist() == painted.tolist()
    with pytest.raises(Exception, match="painted values must be 0"):
        plugin_layers.to_hand_labels(np.array([4]), PHASES)


def test_reader_opens_two_phase_outputs_and_a_run_with_stored_label_values(tmp_path):
    # every label file was read as pore/cbd/am: a two-phase segment folder, label file or run
    # (NREL: pore/am, scribbles stored 2 = pore, 1 = am, 0 = unlabelled) failed to open
    from electroseg.io import write_json, write_tiff

    labels = (np.arange(4 * 6 * 6).reshape(4, 6, 6) % 2).astype(np.uint8)
    seg = tmp_path / "seg"
    seg.mkdir()
    write_tiff(seg / "labels.tif", labels, voxel_size=(1, 1, 1), phases=("pore", "am"))
    (seg / "thresholds.json").write_text("{}")
    (layer,) = plugin_layers.output_layers(seg)
    assert layer[1]["metadata"]["phases"] == ["pore", "am"] and np.array_equal(layer[0], labels)
    assert plugin_layers.output_layers(seg / "labels.tif")[0][1]["metadata"]["phases"] == ["pore", "am"]
    run = tmp_path / "run"
    (run / "classical").mkdir(parents=True)
    write_tiff(run / "classical" / "labels.tif", labels, voxel_size=(1, 1, 1), phases=("pore", "am"))
    scribbles = np.zeros_like(labels)
    scribbles[1] = np.where(labels[1] == 0, 2, 1)
    write_tiff(tmp_path / "scribbles.tif", scribbles, voxel_size=(1, 1, 1))
    scan = {"images": {}, "hand_labels": str(tmp_path / "scribbles.tif"), "truth": None, "phases": ["pore", "am"],
            "voxel_size": None, "depth_axis": 1, "ignore_value": 0, "label_values": [2, 1]}
    write_json(run / "classical" / "stage.json", {"stage": "classical", "settings": {"scan": scan}})
    found = {kwargs["name"]: data for data, kwargs, _ in plugin_layers.output_layers(run)}
    assert np.array_equal(found["run hand labels"][1], labels[1] + 1)  # painted: phase i is i + 1
    assert not found["run hand labels"][0].any() and np.array_equal(found["run classical"], labels)


def test_reader_opens_predict_outputs_with_phase_names_and_colours(viewer, tiny_electrode, tmp_path):
    from electroseg.inference import Predictor
    from electroseg.io import write_tiff

    image, _ = tiny_electrode
    write_tiff(tmp_path / "stack.tif", image, voxel_size=(0.1, 0.05, 0.05))
    Predictor("pretrained:electrode-3phase").predict_many([str(tmp_path / "stack.tif")], tmp_path / "out",
                                                          save_probabilities=True)
    added = viewer.open(str(tmp_path / "out" / "stack"), plugin="electroseg")
    names = [layer.name for layer in added]
    assert "stack" in names and "stack labels" in names and "stack uncertainty" in names
    assert {"p(pore)", "p(cbd)", "p(am)"} <= set(names)
    labels = viewer.layers["stack labels"]
    assert labels.metadata["phases"] == PHASES
    assert list(labels.features["phase"]) == PHASES
    assert labels.scale.tolist() == [0.1, 0.05, 0.05]
    # fixed colours: pore (value 0) is drawn, not transparent
    assert labels.get_color(0)[3] == 1.0
    assert np.allclose(labels.get_color(2)[:3], [0x7f / 255, 0xb8 / 255, 0xe6 / 255])
    # a hand-label file (255 = unlabelled) opens as painted labels (0 = unlabelled, phase i = i + 1)
    hand = np.full(image.shape, 255, np.uint8)
    hand[3, :8, :8] = 2
    write_tiff(tmp_path / "hand.tif", hand, phases=tuple(PHASES))
    (painted,) = viewer.open(str(tmp_path / "hand.tif"), plugin="electroseg")
    assert painted.metadata["painted"] and int(painted.data[3, 0, 0]) == 3 and int(painted.data[0, 0, 0]) == 0
    # not ours: left to other readers
    from electroseg.napari_plugin.reader import napari_get_reader

    assert napari_get_reader(str(tmp_path / "stack.tif")) is None


def test_reader_opens_a_run_folder(viewer, tiny_electrode, tmp_path):
    """`napari RUN`: the scan, truth, hand labels, classical and learned labels of `electroseg run`."""
    from electroseg.io import write_tiff

    image, truth = tiny_electrode
    run = tmp_path / "run"
    voxel = (0.1, 0.05, 0.05)
    write_tiff(run / "preprocess" / "scan" / "image.tif", image, voxel_size=voxel)
    write_tiff(run / "data" / "labels.tif", truth, voxel_size=voxel, phases=tuple(PHASES))
    hand = np.full(truth.shape, 255, np.uint8)
    hand[4] = truth[4]
    write_tiff(run / "data" / "sparse_labels.tif", hand, voxel_size=voxel, phases=tuple(PHASES))
    write_tiff(run / "classical" / "labels.tif", truth, voxel_size=voxel, phases=tuple(PHASES))
    write_tiff(run / "predict" / "labels.tif", truth, voxel_size=voxel, phases=tuple(PHASES))
    scan = {"images": {"bse": str(run / "preprocess" / "scan" / "image.tif")}, "phases": PHASES,
            "truth": str(run / "data" / "labels.tif"), "hand_labels": str(run / "data" / "sparse_labels.tif")}
    (run / "classical" / "stage.json").write_text(json.dumps({"stage": "classical", "settings": {"scan": scan}}))
    added = viewer.open(str(run), plugin="electroseg")
    assert [layer.name for layer in added] == ["run bse", "run truth", "run hand labels", "run classical",
                                                "run learned"]
    hand_layer = viewer.layers["run hand labels"]
    assert hand_layer.metadata["painted"] and int(hand_layer.data[4].min()) >= 1 and int(hand_layer.data[0].max()) == 0
    assert viewer.layers["run learned"].visible and not viewer.layers["run classical"].visible
    assert viewer.layers["run truth"].metadata["phases"] == PHASES


def _widget(viewer, qtbot, image, tmp_path):
    from electroseg.napari_plugin.widget import ElectrosegWidget

    viewer.add_image(image, name="sem", scale=(0.1, 0.05, 0.05)[-image.ndim:])
    widget = ElectrosegWidget(viewer, folder=tmp_path / "work")
    qtbot.addWidget(widget)
    widget.train_overrides = list(FAST)
    return widget


def _paint(layer, truth, slices):
    """Paint like a user: whole slices from the truth, and one brush stroke with the paint tool."""
    for z in slices:
        layer.data[z] = truth[z] + 1
    layer.paint((slices[0], 5, 5), 2, refresh=True)  # a brush dab of cbd on the first slice
    layer.refresh()


def test_the_whole_loop_in_one_window(viewer, qtbot, tiny_electrode, tmp_path, monkeypatch):
    image, truth = tiny_electrode
    widget = _widget(viewer, qtbot, image, tmp_path)
    assert widget.image_names() == ["sem"]
    layer = widget.new_labels_layer()
    assert layer is not None and layer.data.shape == image.shape and layer.metadata["painted"]
    assert widget.labels_combo.currentText() == "hand labels"
    _paint(layer, truth, [3, 12])

    widget.epochs_spin.setValue(2)
    widget.train()  # fine-tunes pretrained:electrode-3phase in a background thread
    assert widget.busy and not widget.predict_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.busy, timeout=180_000)
    assert widget.checkpoint is not None and widget.last_metrics["cancelled"] is False
    log = widget.log.toPlainText()
    assert "epoch 1/2" in log and "epoch 2/2" in log, log
    assert widget.progress.value() == 2 and widget.model_combo.currentText() == "this session's model"

    widget.predict()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    prediction = viewer.layers["prediction"]
    assert prediction.data.shape == truth.shape and prediction.metadata["phases"] == PHASES
    assert (prediction.data == truth).mean() > 0.5
    uncertainty = viewer.layers["uncertainty"].data
    assert uncertainty.shape == truth.shape and 0.0 <= uncertainty.min() and uncertainty.max() <= 1.0

    widget.suggest_spin.setValue(2)
    widget.suggest()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    from qtpy.QtCore import Qt

    picked = [widget.suggestions.item(i).data(Qt.UserRole) for i in range(widget.suggestions.count())]
    assert len(picked) == 2 and not {3, 12} & set(picked)
    assert viewer.dims.current_step[0] == picked[0]

    widget.analyse()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    metrics = [widget.table.item(r, 0).text() for r in range(widget.table.rowCount())]
    assert "volume fraction pore" in metrics and "PBA (AM/CBD contact), pooled" in metrics
    values = {widget.table.item(r, 0).text(): widget.table.item(r, 1).text() for r in range(widget.table.rowCount())}
    assert abs(float(values["volume fraction am"]) - (prediction.data == 2).mean()) < 1e-3

    saved = widget.save()
    assert saved is not None and saved.config.is_file() and saved.labelled_slices == (3, 12)


def test_saved_dataset_trains_from_the_command_line(viewer, qtbot, tiny_electrode, tmp_path):
    from electroseg.cli import main
    from electroseg.io import read_labels

    image, truth = tiny_electrode
    widget = _widget(viewer, qtbot, image, tmp_path)
    widget.name_edit.setText("tiny cathode")
    layer = widget.new_labels_layer()
    _paint(layer, truth, [2, 9])
    saved = widget.save()
    assert saved.name == "tiny_cathode"
    hand = read_labels(saved.hand_labels, phases=tuple(PHASES)).numpy()
    assert (hand[9] == truth[9]).all() and (hand[0] == 255).all()
    out = tmp_path / "cli_run"
    code = main(["train", "--config-dir", str(saved.config_dir), f"data={saved.name}", "model=multichannel2d",
                 f"out={out}", "trainer=fast", "trainer.max_epochs=1", "loader.samples_per_epoch=8",
                 f"cache_dir={tmp_path / 'cache'}", "trainer.enable_progress_bar=false"])
    assert code == 0 and (out / "checkpoints" / "best.ckpt").is_file()
    record = json.loads((out / "train_metrics.json").read_text())
    assert "held-out" in record["validation"] or "held out" in record["validation"]


def test_cancel_stops_training_and_the_gui_stays_responsive(viewer, qtbot, tiny_electrode, tmp_path):
    image, truth = tiny_electrode
    widget = _widget(viewer, qtbot, image, tmp_path)
    _paint(widget.new_labels_layer(), truth, [3, 12])
    widget.model_combo.setCurrentText("from scratch (multichannel2d)")
    widget.epochs_spin.setValue(200)
    widget.train()
    qtbot.waitUntil(lambda: "epoch 1/200" in widget.log.toPlainText(), timeout=120_000)
    viewer.dims.set_current_step(0, 5)  # the viewer answers while training runs
    assert viewer.dims.current_step[0] == 5
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert widget.last_metrics["cancelled"] is True and widget.last_metrics["epochs"] < 199
    assert widget.checkpoint is not None and widget.train_button.isEnabled()


def test_errors_are_one_line_notifications(viewer, qtbot, tiny_electrode, tmp_path, monkeypatch):
    import electroseg.napari_plugin.widget as widget_module

    shown = []
    monkeypatch.setattr(widget_module, "show_error", shown.append)
    image, _ = tiny_electrode
    widget = _widget(viewer, qtbot, image, tmp_path)
    widget.save()  # no labels layer yet
    widget.new_labels_layer()
    widget.save()  # nothing painted
    widget.model_combo.setCurrentText("from scratch (multichannel2d)")
    widget.predict()  # nothing trained
    widget.analyse()  # nothing predicted
    assert len(shown) == 4 and all("\n" not in m for m in shown), shown
    assert "none to paint on" in shown[0] and "nothing is painted" in shown[1]
    assert "nothing trained yet" in shown[2] and "press Predict first" in shown[3]
    assert not widget.busy and widget.train_button.isEnabled()
    assert not (tmp_path / "work" / "data").exists()  # nothing half-written


def test_train_config_takes_folders_with_spaces_and_brackets(tmp_path, tiny_electrode):
    image, truth = tiny_electrode
    painted = truth + 1
    folder = tmp_path / "my work (v2) [test]"
    saved = session.save_dataset(folder, "cathode", {"bse": image}, painted, PHASES)
    out = folder / "runs" / "it's here"
    cfg = session.train_config(saved, out, init="pretrained:electrode-3phase", epochs=3)
    assert cfg.out == str(out) and cfg.cache_dir == str(out / "cache") and cfg.trainer.max_epochs == 3
    assert cfg.data.name == "cathode" and Path(cfg.data.root).resolve() == folder.resolve()
    assert cfg.init == "pretrained:electrode-3phase" and cfg.model.name == "multichannel2d"


def test_session_checks_shapes_before_writing(tmp_path):
    from electroseg.errors import InputError

    with pytest.raises(InputError, match="shape"):
        session.save_dataset(tmp_path, "x", {"bse": np.zeros((4, 8, 8))}, np.zeros((4, 8, 9), np.uint8), PHASES)
    painted = np.zeros((4, 8, 8), np.uint8)
    painted[1, :2] = 1
    with pytest.raises(InputError, match=r"no voxel is painted as \['cbd', 'am'\]"):
        session.save_dataset(tmp_path, "x", {"bse": np.zeros((4, 8, 8))}, painted, PHASES)
    assert not any(tmp_path.iterdir())
    with pytest.raises(InputError, match=r"expected phase indices 0..2 .* got uint8 values \[5\]"):
        session.analyse(np.array([[0, 5], [255, 1]], np.uint8), PHASES, voxel_size=(1.0, 1.0))
    assert session.default_start(["pore", "solid"], 1) == "pretrained:electrode-2phase"
    assert session.default_start(PHASES, 2) is None  # the shipped models read one detector


def test_the_widget_docks_from_the_plugin_menu(viewer, qtbot, tiny_electrode):
    """napari finds the widget by the manifest and docks it (a real window when a display exists)."""
    import os

    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display (Xvfb not installed): napari's window cannot open")
    from electroseg.napari_plugin.widget import ElectrosegWidget

    viewer.add_image(tiny_electrode[0], name="sem")
    dock, widget = viewer.window.add_plugin_dock_widget("electroseg", "Label, train, predict, analyse")
    assert isinstance(widget, ElectrosegWidget) and widget.image_names() == ["sem"]
    viewer.window.remove_dock_widget(dock)  # closed: the viewer goes on without it
    qtbot.wait(50)
    viewer.add_image(tiny_electrode[0], name="another")
    assert "another" in viewer.layers


def test_two_detectors_in_2d_start_from_scratch_and_run_end_to_end(viewer, qtbot, tiny_electrode, tmp_path):
    """An SEM cross-section seen by two detectors: two image layers, a 2-D labels layer; the
    shipped (one-detector) models are not offered as the start, training, predict and analyse work."""
    image, truth = tiny_electrode
    widget = _widget(viewer, qtbot, image[5], tmp_path)
    viewer.add_image(image[5][::-1].copy(), name="inlens", scale=(0.05, 0.05))
    from qtpy.QtCore import Qt

    widget.image_list.item(1).setCheckState(Qt.Checked)
    assert widget.image_names() == ["sem", "inlens"]
    assert widget.model_combo.currentText() == "from scratch (multichannel2d)"
    widget.phases_edit.setText("pore, solid")
    layer = widget.new_labels_layer()
    assert layer.data.shape == image.shape[1:]
    layer.data[::3, ::3] = (truth[5][::3, ::3] > 0) + 1
    widget.epochs_spin.setValue(1)
    widget.train()
    qtbot.waitUntil(lambda: not widget.busy, timeout=180_000)
    assert widget.checkpoint is not None
    from electroseg.inference import load_checkpoint

    spec = load_checkpoint(widget.checkpoint).spec
    assert spec.phases == ("pore", "solid") and spec.channels == ("sem", "inlens")
    widget.predict()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert viewer.layers["prediction"].data.shape == image.shape[1:]
    widget.analyse()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert widget.table.rowCount() >= 2
