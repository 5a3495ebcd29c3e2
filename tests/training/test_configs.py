import pathlib

import numpy as np
import pytest
import tifffile
from omegaconf import OmegaConf

from electroseg.cli import main
from electroseg.errors import InputError
from electroseg.config import builtin_config, builtin_config_dir
from electroseg.models import build_model
from electroseg.training import make_spec, parse_dataset_config
from electroseg.training.volumes import LabelOptions, load_split

DATA = sorted((builtin_config_dir() / "data").glob("*.yaml"))
MODELS = sorted(p for p in (builtin_config_dir() / "model").glob("*.yaml") if p.stem != "auto")  # auto: chosen in train
NORM = {"method": "percentile", "lower": 0.5, "upper": 99.5}
OPTIONS = LabelOptions(weights={"dense": 1, "hand": 1, "pseudo": 1})


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.stem)
def test_shipped_dataset_configs_parse(path, tmp_path):
    data = OmegaConf.to_container(OmegaConf.load(path))
    cfg = parse_dataset_config(data, root=tmp_path, name=path.name)
    assert cfg.split("train") and all(str(p).startswith(str(tmp_path)) for v in cfg.volumes for p in v.images.values())


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_shipped_model_configs_build(path, tmp_path):
    dataset = parse_dataset_config({"channels": ["cbs", "tld"], "volumes": [
        {"images": {"cbs": "a", "tld": "b"}}]}, root=tmp_path)
    spec = make_spec(OmegaConf.to_container(OmegaConf.load(path)), dataset,
                     voxel_size=(0.05, 0.025, 0.025), normalization=NORM)
    assert spec.kwargs["in_channels"] == 2 * (2 * spec.context_slices + 1)
    net = build_model(spec)
    divisible = all(p % d == 0 for p, d in zip(spec.patch_size, net.divisor))
    assert divisible, f"patch {spec.patch_size} not a multiple of {net.divisor}"


def test_help_lists_models_without_building_them(capsys):
    import subprocess
    import sys

    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "model=unet3d_tiny: features [4, 8], patch [16, 16, 16]" in text
    assert "model=unet3d:" in text and "model=multichannel2d:" in text
    assert "model=auto (the default): multichannel2d for 2-D images" in text
    # every command's --help imports neither torch nor Lightning (it took 7-10 s when it built networks)
    code = ("import sys, contextlib, io; from electroseg.cli import main, COMMANDS\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    codes = [main([c, '--help']) for c in COMMANDS]\n"
            "print(codes, 'torch' in sys.modules, 'lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False") and set(eval(out.split("]")[0] + "]")) == {0}


def test_segmentpy_label_values_map_to_our_phases(shared_data):
    data = builtin_config("data/segmentpy.yaml")
    data["volumes"] = data["volumes"][:1]
    dataset = parse_dataset_config(data, root=shared_data / "segmentpy")
    (volume,), _, _ = load_split(dataset, "train", normalization=NORM, label_options=OPTIONS, use_pseudo=False)
    stored = tifffile.imread(shared_data / "segmentpy" / "1_label.tif")
    assert volume.image.shape == (1, 1, *stored.shape)
    # upstream 0 = NMC -> am (2), 1 = CBD -> cbd (1), 2 = pore -> pore (0)
    for upstream, ours in ((0, 2), (1, 1), (2, 0)):
        assert np.array_equal(stored == upstream, volume.target.labels[0] == ours)


def test_nrel_scribbles_zero_is_unlabelled(shared_data):
    data = builtin_config("data/nrel_nmc1cal.yaml")
    dataset = parse_dataset_config(data, root=shared_data / "nrel_expertsegmentation")
    (volume,), _, _ = load_split(dataset, "train", normalization=NORM, label_options=OPTIONS, use_pseudo=False)
    stored = tifffile.imread(shared_data / "nrel_expertsegmentation" / "nmc1cal_labels.tiff")
    assert np.count_nonzero(volume.target.weight) == np.count_nonzero(stored)
    assert np.array_equal(volume.target.labels == 1, stored.reshape(volume.target.labels.shape) == 1)
    assert 0.0 <= volume.image.min() and volume.image.max() <= 1.0


def test_synthetic_samples_of_another_shape_are_not_reused(tmp_path):
    from electroseg.synthetic.samples import prepare_synthetic
    from electroseg.config import compose_command

    roots = []
    for shape in ("[8,32,32]", "[8,32,48]", "[8,32,32]"):
        cfg = compose_command("train", ["data=nmc_fibsem", "data.synthetic.preset=tiny",
                                        f"+data.synthetic.shape={shape}", "out=unused", f"cache_dir={tmp_path}"])
        prepare_synthetic(cfg)
        roots.append(pathlib.Path(cfg.data.root))
    assert roots[0] != roots[1] and roots[0] == roots[2]
    assert roots[1].name.startswith("8x32x48-")
    assert tifffile.imread(roots[1] / "seed0" / "image.tif").shape == (8, 32, 48)


def test_markers_dataset_registers_on_the_band_and_crops_it_to_the_labels(tmp_path):
    from electroseg.synthetic.samples import prepare_synthetic
    from electroseg.config import compose_command

    cfg = compose_command("train", ["data=nmc_fibsem_markers", "+data.synthetic.shape=[6,48,64]",
                                    "out=unused", f"cache_dir={tmp_path}"])
    prepare_synthetic(cfg)
    root = pathlib.Path(cfg.data.root)
    assert tifffile.imread(root / "seed0" / "image.tif").shape == (6, 80, 64)  # 32 rows of cap on top
    dataset = parse_dataset_config(OmegaConf.to_container(cfg.data, resolve=True), root=root)
    (volume,), _, _ = load_split(dataset, "train", normalization=NORM, label_options=OPTIONS, use_pseudo=False)
    assert volume.image.shape == (1, 6, 48, 64)
    sparse = tifffile.imread(root / "seed0" / "sparse_labels.tif")
    assert np.array_equal(volume.target.labels[sparse != 255], sparse[sparse != 255])


def test_a_config_dir_file_replaces_the_built_in_of_its_name_and_only_while_given(tmp_path):
    from electroseg.config import compose_command

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "unet3d.yaml").write_text((builtin_config_dir() / "model" / "unet3d.yaml").read_text()
                                                     .replace("batch_size: 2 ", "batch_size: 5 "))
    (tmp_path / "segment.yaml").write_text("defaults:\n  - _self_\nmarker: from the user folder\n")
    assert compose_command("train", ["out=unused", "model=unet3d"], config_dir=tmp_path).model.batch_size == 5
    assert compose_command("segment", [], config_dir=tmp_path).marker == "from the user folder"
    # the folder is searched only for the call that names it
    assert compose_command("train", ["out=unused", "model=unet3d"]).model.batch_size == 2
    assert "marker" not in compose_command("segment", [])
