import pytest

from electroseg.errors import InputError
from electroseg.training import parse_dataset_config, read_dataset_config

BASE = {
    "name": "cell", "phases": ["pore", "am"], "channels": ["cbs", "tld"],
    "volumes": [
        {"images": {"cbs": "a_cbs.tif", "tld": "a_tld.tif"}, "hand_labels": "a_lab.tif", "split": "train"},
        {"images": {"cbs": "b_cbs.tif", "tld": "b_tld.tif"}, "split": "val"},
    ],
}


def test_paths_resolve_against_root(tmp_path):
    cfg = parse_dataset_config(BASE, root=tmp_path / "scans")
    train, = cfg.split("train")
    assert train.images["tld"] == (tmp_path / "scans" / "a_tld.tif").resolve()
    assert train.hand_labels == (tmp_path / "scans" / "a_lab.tif").resolve()
    assert cfg.split("val")[0].hand_labels is None and cfg.split("test") == ()


def test_read_dataset_config_relative_to_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "cell.yaml"
    path.write_text("name: cell\nchannels: [bse]\nvolumes:\n  - images: {bse: ../data/x.tif}\n")
    cfg = read_dataset_config(path)
    assert cfg.volumes[0].images["bse"] == (tmp_path / "data" / "x.tif").resolve()
    assert cfg.phases == ("pore", "cbd", "am")


@pytest.mark.parametrize("change, message", [
    ({"volumes": [{"images": {"cbs": "a.tif"}, "split": "train"}]}, r"one file per channel \['cbs', 'tld'\]"),
    ({"volumes": [{**BASE["volumes"][0], "split": "training"}]}, "split must be one of"),
    ({"volumes": [BASE["volumes"][1]]}, "no volume has split: train"),
    ({"colour": "red"}, r"unknown keys \['colour'\]"),
    ({"label_values": [1, 2, 3]}, "needs one value per phase"),
])
def test_invalid_configs_name_the_problem(tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        parse_dataset_config({**BASE, **change}, root=tmp_path)
