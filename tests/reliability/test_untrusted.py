"""Untrusted files: checkpoints never run code, configs create only allow-listed objects, huge
headers are refused before allocating, and paths never pass through a shell."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
import tifffile
import torch

from electroseg.errors import InputError
from electroseg.io import read_volume, write_tiff


class _Bomb:
    """Runs code when unpickled: writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _bombed_checkpoint(path, marker, rel):
    rel.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["callbacks"] = {"evil": _Bomb(marker)}
    torch.save(checkpoint, path)
    return path


def test_the_bomb_is_live(tmp_path, rel):
    """Control: unpickling the file without weights_only does run the payload."""
    marker = tmp_path / "control"
    ckpt = _bombed_checkpoint(tmp_path / "bomb.ckpt", marker, rel)
    torch.load(ckpt, weights_only=False)
    assert marker.read_text() == "pwned"


def test_pickle_bombed_checkpoint_refused_by_predict(tmp_path, rel, capsys):
    marker = tmp_path / "marker"
    ckpt = _bombed_checkpoint(tmp_path / "bomb.ckpt", marker, rel)
    scan = tmp_path / "scan.tif"
    write_tiff(scan, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    status, err = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={tmp_path / 'out'}",
                          "progress=false")
    rel.assert_one_line_error(status, err, "bomb.ckpt")
    assert not marker.exists()
    assert not (tmp_path / "out" / "scan").exists()


def test_pickle_bombed_checkpoint_refused_by_train_resume(tmp_path, tiny_cache, rel, capsys):
    marker = tmp_path / "marker"
    ckpt = _bombed_checkpoint(tmp_path / "bomb.ckpt", marker, rel)
    status, err = rel.cli(capsys, "train", "model=unet3d_tiny", "trainer=fast", "data.synthetic.preset=tiny",
                          f"cache_dir={tiny_cache}", f"ckpt_path={ckpt}", f"out={tmp_path / 'run'}")
    rel.assert_one_line_error(status, err, "bomb.ckpt")
    assert not marker.exists()


def test_library_loaders_refuse_the_bomb(tmp_path, rel):
    from electroseg.inference.checkpoint import load_checkpoint
    from electroseg.training.checkpoint import read_checkpoint

    marker = tmp_path / "marker"
    ckpt = _bombed_checkpoint(tmp_path / "bomb.ckpt", marker, rel)
    for loader in (load_checkpoint, read_checkpoint):
        with pytest.raises(InputError, match="bomb.ckpt"):
            loader(ckpt)
    assert not marker.exists()


@pytest.mark.parametrize("field, value, needle", [
    ("name", "os.system", "os.system"),
    ("name", "torchvision.models.resnet50", "resnet50"),
    ("name", "UNet3D; rm -rf /", "rm -rf"),
    ("kwargs", {"_target_": "os.system", "command": "touch MARKER"}, "_target_"),
])
def test_checkpoint_spec_cannot_name_arbitrary_objects(field, value, needle, tmp_path, rel, capsys):
    marker = tmp_path / "MARKER"
    spec = rel.tiny_spec().to_dict()
    spec[field] = {**spec["kwargs"], **value} if field == "kwargs" else value
    if field == "kwargs":
        spec["kwargs"]["command"] = f"touch {marker}"
    ckpt = rel.save_checkpoint(tmp_path / "evil.ckpt", spec_dict=spec)
    scan = tmp_path / "scan.tif"
    write_tiff(scan, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    status, err = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={tmp_path / 'out'}",
                          "progress=false")
    rel.assert_one_line_error(status, err, "evil.ckpt", needle)
    assert not marker.exists()


def test_build_model_allow_list(rel):
    from electroseg.models import ModelSpec, build_model

    spec = rel.tiny_spec().to_dict()
    spec["name"] = "subprocess.Popen"
    with pytest.raises(InputError, match="subprocess.Popen"):
        build_model(ModelSpec.from_dict(spec, source="test"))


def _huge_tiff(path):
    """A 140 kB TIFF whose header declares a 1e6 x 1e6 uint16 image (2 TB)."""
    tifffile.imwrite(path, np.zeros((1, 70000), np.uint16))
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        offsets = [tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
        assert tags["ImageWidth"].dtype == 4  # LONG: room for the big value
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset:offset + 4] = (1_000_000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].shape == (1_000_000, 1_000_000)
    return path


def test_huge_header_refused_before_allocating(tmp_path):
    path = _huge_tiff(tmp_path / "huge.tif")
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="huge.tif.*memory limit"):
            read_volume(path)
        with pytest.raises(InputError, match="memory limit"):
            read_volume(path, max_bytes=10**6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6


def test_max_bytes_is_configurable(tmp_path):
    path = tmp_path / "small.tif"
    write_tiff(path, np.zeros((4, 64, 64), np.uint8), voxel_size=(1, 1, 1))
    assert read_volume(path, max_bytes=4 * 64 * 64).shape == (4, 64, 64)
    with pytest.raises(InputError, match="memory limit"):
        read_volume(path, max_bytes=4 * 64 * 64 - 1)


@pytest.mark.parametrize("command", ["segment", "analyze"])
def test_huge_header_refused_by_the_cli(command, tmp_path, rel, capsys):
    path = _huge_tiff(tmp_path / "huge.tif")
    status, err = rel.cli(capsys, command, f"input={path}", f"out={tmp_path / 'out'}", "voxel_size=[1,1,1]")
    rel.assert_one_line_error(status, err, "huge.tif", "memory limit")


def test_huge_header_refused_by_predict(tmp_path, rel):
    """In a subprocess capped at 16 GB of address space, so a missing check cannot exhaust the machine."""
    import resource
    import subprocess
    import sys

    path = _huge_tiff(tmp_path / "huge.tif")
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt")

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    proc = subprocess.run([sys.executable, "-m", "electroseg.cli", "predict", f"checkpoint={ckpt}",
                           f"inputs=[{path}]", f"out={tmp_path / 'out'}", "progress=false", "chunked=false"],
                          capture_output=True, text=True, timeout=120, preexec_fn=cap, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # refused from the header: the declared data lie past the end of the 140 kB file
    assert "truncated TIFF" in proc.stderr or "memory limit" in proc.stderr


def test_huge_lazy_input_refused_by_in_memory_predict(tmp_path, rel, capsys, caplog):
    """A Zarr input declaring 1 TB (no chunk written) is refused before predict allocates it."""
    import zarr

    zarr.open_array(str(tmp_path / "huge.zarr"), mode="w", shape=(10_000, 10_000, 10_000), dtype="uint8",
                    chunks=(64, 1024, 1024))
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt")
    status, _ = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{tmp_path / 'huge.zarr'}]",
                        f"out={tmp_path / 'out'}", "progress=false", "chunked=false", "voxel_size=[1,1,1]")
    assert status == 1
    assert "memory limit; use chunked=true" in caplog.text


INJECTIONS = ["$(touch {m}1)", "`touch {m}2`", "x; touch {m}3", "x && touch {m}4 #", "x | touch {m}5"]


@pytest.mark.parametrize("template", INJECTIONS)
@pytest.mark.parametrize("command", ["segment", "analyze"])
def test_paths_never_reach_a_shell(command, template, tmp_path, rel, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    name = template.format(m=marker)
    status, err = rel.cli(capsys, command, f"input='{name}.tif'", f"out={tmp_path / 'out'}")
    rel.assert_one_line_error(status, err, f"{name}.tif")  # the literal name reached the reader
    assert not list(tmp_path.glob("pwned*"))


def _user_data_config(tmp_path, root: str, image: str, hand: str = "scans/a_labels.tif"):
    conf = tmp_path / "conf" / "data"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text(
        f"name: mine\nroot: {root!r}\nphases: [pore, cbd, am]\nvoxel_size: [0.05, 0.02, 0.02]\n"
        f"depth_axis: 1\nchannels: [bse]\nvolumes:\n"
        f"  - {{images: {{bse: {image!r}}}, labels: {hand!r}, split: train}}\n"
        f"  - {{images: {{bse: {image!r}}}, labels: {hand!r}, split: val}}\n"
        "ignore_value: 255\nlabel_values: null\npseudo_labels: false\nclassical: {}\npreprocess: []\n")
    return tmp_path / "conf"


@pytest.mark.parametrize("template", INJECTIONS)
def test_dataset_config_paths_never_reach_a_shell(template, tmp_path, rel, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    evil = template.format(m=marker)
    conf = _user_data_config(tmp_path, root=str(tmp_path / evil), image=f"{evil}.tif", hand=f"{evil}_l.tif")
    status, err = rel.cli(capsys, "train", "--config-dir", conf, "data=mine", "model=unet3d_tiny", "trainer=fast",
                          f"out={tmp_path / 'run'}")
    rel.assert_one_line_error(status, err, evil)  # the literal path reached the reader
    assert not list(tmp_path.glob("pwned*"))


def test_dataset_config_paths_resolve_relative_to_the_file(tmp_path):
    from electroseg.training.dataset_config import read_dataset_config

    conf = _user_data_config(tmp_path, root="..", image="scans/a.tif")
    dataset = read_dataset_config(conf / "data" / "mine.yaml")
    assert dataset.volumes[0].images["bse"] == (conf / "scans" / "a.tif").resolve()


def test_cli_dataset_config_paths_resolve_relative_to_the_file(tmp_path, rel, capsys, monkeypatch):
    conf = _user_data_config(tmp_path, root="..", image="scans/a.tif")
    (conf / "scans").mkdir()
    write_tiff(conf / "scans" / "a.tif", rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    write_tiff(conf / "scans" / "a_labels.tif", rel.labels((8, 16, 16)), voxel_size=rel.VOXEL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # the volumes are read before the resume checkpoint: an error naming the checkpoint proves they were found
    status, err = rel.cli(capsys, "train", "--config-dir", conf, "data=mine", "model=unet3d_tiny", "trainer=fast",
                          f"out={tmp_path / 'run'}", f"ckpt_path={tmp_path / 'absent.ckpt'}")
    rel.assert_one_line_error(status, err, "absent.ckpt")
