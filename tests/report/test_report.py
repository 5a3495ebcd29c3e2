"""The report builder: every section present, figures embedded as valid PNG, Markdown beside it."""

import base64
import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from electroseg.errors import InputError
from electroseg.report import build_report, collect_report, sha256_file
from electroseg.report.content import flatten, format_value

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _figure(path):
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [0, 1])
    fig.savefig(path, format="png")


@pytest.fixture()
def run_dir(tmp_path):
    for name, am in (("classical", 0.40), ("learned", 0.42)):
        folder = tmp_path / "analysis" / name
        folder.mkdir(parents=True)
        metrics = {"volume_fraction": {"pore": 0.3, "cbd": 0.7 - am, "am": am},
                   "pba": {"pooled": 0.5, "per_depth": [0.5] * 10}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    cmp_dir = tmp_path / "compare"
    cmp_dir.mkdir()
    comparison = {"names": ["classical", "learned"],
                  "agreement": {"learned_vs_classical": {"mean_iou": 0.8125}},
                  "differences": [{"pair": "learned − classical", "metric": "pba.pooled", "a": 0.5, "b": 0.45,
                                   "difference": -0.05, "variability": 0.01,
                                   "exceeds_variability": True}]}
    (cmp_dir / "comparison.json").write_text(json.dumps(comparison))
    _figure(cmp_dir / "confusion.png")
    (tmp_path / "config.yaml").write_text("data: tiny\nseed: 0\n")
    (tmp_path / "summary.json").write_text(json.dumps({"lines": ["PBA drop 0.05"],
                                                       "values": {"pba_drop": 0.05}}))
    (tmp_path / "provenance.json").write_text(json.dumps(
        {"versions": {"numpy": "9.9"}, "inputs": {"image": {"path": "x.tif", "sha256": "ab12"}}}))
    return tmp_path


def test_report_has_every_section(run_dir):
    titles = [s.title for s in collect_report(run_dir).sections]
    assert titles == ["Summary", "Metrics", "Comparison: classical vs learned (compare)",
                      "Configuration", "Provenance"]


def test_html_embeds_decodable_png_and_values(run_dir):
    files = build_report(run_dir)
    text = files.html.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 1
    assert base64.b64decode(images[0]).startswith(PNG_SIGNATURE)
    for expected in ("0.8125", "PBA drop 0.05", "ab12", "9.9", "seed: 0", "0.42", "yes"):
        assert expected in text
    assert "<img" in text and 'src="confusion.png"' not in text  # self-contained


def test_markdown_links_figures_relative(run_dir):
    md = build_report(run_dir).markdown.read_text()
    assert "![confusion](compare/confusion.png)" in md
    assert "| volume_fraction.am | 0.4 | 0.42 |" in md
    assert "## Provenance" in md


def test_empty_or_missing_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no metrics.json"):
        build_report(tmp_path)
    with pytest.raises(InputError, match="expected an existing run folder"):
        build_report(tmp_path / "missing")


def test_flatten_and_format():
    assert flatten({"a": {"b": 1.0, "c": [1, 2]}, "d": list(range(9))}) == {"a.b": 1.0, "a.c": [1, 2]}
    assert format_value(float("nan")) == "—"
    assert format_value(0.123456) == "0.1235"


def test_sha256_known_value(tmp_path):
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    # FIPS 180-2 test vector for "abc"
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_report_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, electroseg.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cycling_section_and_summary(tmp_path):
    from electroseg.report.summary import summarize_run

    folder = tmp_path / "cycling"
    folder.mkdir()
    (folder / "cycling.json").write_text(json.dumps(
        {"lines": ["PBA truth: pristine 0.550 → cycled 0.450, drop -0.100"], "tolerance": 0.03,
         "routes": {"learned": {"pristine": 0.52, "cycled": 0.44, "drop": -0.08, "ci_low": -0.12,
                                "ci_high": -0.04, "error_vs_truth": 0.02},
                    "truth": {"pristine": 0.55, "cycled": 0.45, "drop": -0.1, "ci_low": -0.15,
                              "ci_high": -0.05, "error_vs_truth": 0.0}},
         "recovers_truth": {"learned": True}}))
    _figure(folder / "pba_depth_cycling.png")
    metrics = tmp_path / "analysis" / "learned"
    metrics.mkdir(parents=True)
    (metrics / "metrics.json").write_text(json.dumps(
        {"pba": {"pooled": 0.5}, "volume_fraction": {"am": 0.6},
         "uncertainty": {"pba_pooled_from_counts": {"ci_low": 0.45, "ci_high": 0.55}}}))
    summary = summarize_run(tmp_path)
    assert summary["lines"] == [
        "PBA truth: pristine 0.550 → cycled 0.450, drop -0.100",
        "analysis/learned: pooled PBA 0.5 (95% interval 0.45–0.55), AM fraction 0.6"]
    assert summary["values"] == {"analysis/learned.pba_pooled": 0.5,
                                 "analysis/learned.am_fraction": 0.6}
    sections = {s.title: s for s in collect_report(tmp_path).sections}
    assert sections["Cycling study"].figures == (folder / "pba_depth_cycling.png",)
    (table,) = sections["Cycling study"].tables
    assert table.columns[-1] == "as segmented, within ±0.03 of the true drop"
    assert [row[0] for row in table.rows] == ["learned", "truth"]
    assert table.rows[0][3] == "-0.08" and table.rows[0][-1] == "yes" and table.rows[1][-1] == ""


def test_report_command_rebuilds_from_products(run_dir, capsys):
    from electroseg.cli import main

    assert main(["report", f"dir={run_dir}"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.md").is_file()
    assert "electroseg report:" in (run_dir / "report.html").read_text()
    assert main(["report", f"dir={run_dir / 'missing'}"]) == 2


def test_report_command_on_empty_folder_writes_nothing(tmp_path, capsys):
    from electroseg.cli import main

    assert main(["report", f"dir={tmp_path}"]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_experiment_or_preset_is_an_error(tmp_path, capsys):
    from electroseg.cli import main

    for override in ("experiment=nope", "preset=nope"):
        assert main(["run", override, f"out={tmp_path / 'o'}"]) == 2
        assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_report_states_the_pba_axis_and_keeps_hashes_short(tmp_path):
    import json

    from electroseg.report import build_report

    run = tmp_path / "run"
    (run / "analysis" / "learned").mkdir(parents=True)
    (run / "analysis" / "learned" / "metrics.json").write_text(json.dumps(
        {"phases": ["pore", "cbd", "am"], "depth_axis": 1, "volume_fraction": {"am": 0.5},
         "pba": {"method": "face", "pooled": 0.5, "depth_mean": 0.5, "per_depth": [0.5]}}))
    digest = "ab" * 32
    (run / "provenance.json").write_text(json.dumps(
        {"versions": {"numpy": "2"}, "inputs": {"scan": {"path": "/very/long/folder/tree/of/scans/cell1.tif",
                                                          "sha256": digest}}}))
    files = build_report(run)
    text = files.markdown.read_text()
    assert "Depth is array axis 1" in text and "pooled PBA of the same labels changes with depth_axis" in text
    assert "scans/cell1.tif" in text and "/very/long" not in text
    assert digest[:16] + "…" in text and digest not in text


def test_report_opens_with_how_far_to_trust_it(tmp_path):
    import json

    from electroseg.report import build_report

    run = tmp_path / "run"
    (run / "analysis" / "learned").mkdir(parents=True)
    (run / "compare").mkdir()
    (run / "predict" / "scan").mkdir(parents=True)
    (run / "analysis" / "learned" / "metrics.json").write_text(json.dumps({
        "phases": ["pore", "cbd", "am"], "depth_axis": 1, "volume_fraction": {"am": 0.5},
        "pba": {"method": "face", "pooled": 0.5, "depth_mean": 0.5, "per_depth": [0.5]},
        "uncertainty": {"metrics": {"pba_pooled": {"n": 4, "mean": 0.5, "ci_low": 0.45, "ci_high": 0.55}}},
        "representative_volume": {"imaged_volume_um3": 100.0, "metrics": {
            "volume_fraction_am": {"half_width": 0.03, "target_half_width": 0.01, "sufficient": False,
                                   "volume_needed_um3": 900.0}}}}))
    (run / "compare" / "comparison.json").write_text(json.dumps({"agreement": {
        "learned vs hand labels": {"mean_iou": 0.8}, "learned vs classical": {"mean_iou": 0.7}}}))
    (run / "predict" / "scan" / "prediction.json").write_text(json.dumps(
        {"qa": {"low_confidence": {"threshold": 0.6, "all": 0.125}, "tiling_agreement": 0.995,
                "hand_labels": {"agreement": 0.93}}}))
    text = build_report(run).markdown.read_text()
    first = text.index("## ", text.index("\n"))  # the first section heading after the title
    assert text[first:].startswith("## How far to trust this")
    for fragment in ("PBA 0.5 (sub-block 95 % interval of the mean [0.45, 0.55], 4 blocks)",
                     "too small for: am (±0.03 against ±0.01)", "learned vs hand labels: mean IoU 0.8",
                     "12.5 % of the voxels are low-confidence", "agrees on 99.5 %", "reproduces 93 % of its hand labels",
                     "not the segmentation's own error"):
        assert fragment in text, fragment
    assert "learned vs classical: mean IoU" not in text[first:text.index("## ", first + 3)]
    assert "mostly poor" not in text  # no warning level recorded
    (run / "predict" / "scan" / "prediction.json").write_text(json.dumps(
        {"qa": {"low_confidence": {"threshold": 0.6, "all": 0.3, "warning_from": 0.25}}}))
    assert ("30 % of the voxels are low-confidence (normalised entropy ≥ 0.6), at or above the 25 % from which "
            "this model's predictions were mostly poor") in build_report(run).markdown.read_text()


def test_two_sample_analysis_shows_the_differences(tmp_path):
    # `electroseg analyze inputs={a:.., b:..}` writes a comparison.json of sample differences; the
    # report showed an empty "Comparison: a vs b (.)" section instead of them
    from electroseg.cli import main
    from electroseg.io import write_tiff

    rng = np.random.default_rng(0)
    for name, share in (("pristine", 0.3), ("cycled", 0.5)):
        labels = np.where(rng.random((6, 24, 24)) < share, 1, 2).astype(np.uint8)
        write_tiff(tmp_path / f"{name}.tif", labels, voxel_size=(0.1, 0.1, 0.1))
    out = tmp_path / "out"
    assert main(["analyze", f"inputs={{pristine: {tmp_path / 'pristine.tif'}, cycled: {tmp_path / 'cycled.tif'}}}",
                 f"out={out}", "split=none", "figures=false"]) == 0
    build_report(out)
    markdown = (out / "report.md").read_text()
    assert "## Two samples: cycled against pristine\n" in markdown
    section = markdown.split("## Two samples: cycled against pristine\n", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| volume_fraction_cbd |"))
    assert row.endswith("| yes |")  # 0.3 -> 0.5 of cbd in 6 x 24 x 24 voxels is beyond the variability
    assert "a vs b" not in markdown and "(.)" not in markdown
    assert "corrected difference" not in markdown  # no hand labels: no corrected table


def test_two_sample_report_shows_the_corrected_difference(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "comparison.json").write_text(json.dumps(
        {"samples": ["pristine", "cycled"], "difference": "cycled - pristine", "n_blocks": {"pristine": 4, "cycled": 4},
         "metrics": {"pba_pooled": {"pristine": 0.55, "cycled": 0.45, "difference": -0.1, "ci_low": -0.12,
                                    "ci_high": -0.08, "excludes_zero": True}},
         "total": {"pba_pooled": {"difference": -0.09, "ci_low": -0.14, "ci_high": -0.04, "excludes_zero": True}}}))
    build_report(folder)
    section = (folder / "report.md").read_text().split("## Two samples: cycled against pristine\n", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| pba_pooled |") and "-0.09" in line)
    assert "-0.09 [-0.14, -0.04]" in row and row.endswith("| yes |")
    text = (folder / "report.md").read_text()
    assert text.index("## How far to trust this") < text.index(
        "cycled − pristine, pooled PBA corrected for both segmentations' errors: -0.09 [-0.14, -0.04]: significant")


def test_trust_line_says_prediction_interval_and_caution():
    from electroseg.report.collect import _segmentation_line

    entry = {"estimate": 0.5, "ci_low": 0.4, "ci_high": 0.6, "reported": 0.55}
    tree = {"uncertainty": {"segmentation": {"pba_pooled": entry}, "total": {"pba_pooled": entry},
                            "segmentation_check": {"source": "the checkpoint's held-out slices", "transfer": True,
                                                   "labelled": {"slices": [3]}, "through_slice": "not measured",
                                                   "caution": "the error was measured at 1 labelled position(s) only"}}}
    line = _segmentation_line(tree, "learned")
    assert "measured on other volumes: prediction intervals" in line
    assert "PBA 0.5 [0.4, 0.6] (as segmented 0.55)" in line
    assert line.endswith("Caution: the error was measured at 1 labelled position(s) only.")
    tree["uncertainty"]["segmentation_check"].update(transfer=False, caution=None)
    line = _segmentation_line(tree, "classical")
    assert "prediction" not in line and "Caution" not in line
