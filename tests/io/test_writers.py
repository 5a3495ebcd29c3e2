"""Label TIFFs record their phases (value i = phase i) where Fiji shows them."""


def test_label_tiffs_say_which_value_is_which_phase(tmp_path):
    from electroseg.cli import main
    from electroseg.io import label_phases

    assert main(["synth", "preset=tiny", "seed=0", f"out={tmp_path / 's'}"]) == 0
    assert label_phases(tmp_path / "s" / "labels.tif") == ("pore", "cbd", "am")
    assert main(["segment", f"input={tmp_path / 's' / 'image.tif'}", f"out={tmp_path / 'seg'}",
                 "phases=[pore,cbd,am]", "phase_order=[pore,cbd,am]"]) == 0
    assert label_phases(tmp_path / "seg" / "labels.tif") == ("pore", "cbd", "am")
    assert label_phases(tmp_path / "seg" / "confidence.tif") is None
