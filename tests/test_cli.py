"""The command line's shape: help, version, usage errors and one-line bad-input errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from electroseg import __version__
from electroseg.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"  {command}" in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"electroseg {__version__}"


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["segmnet"]) == 2
    assert "unknown command 'segmnet'" in capsys.readouterr().err


def test_unknown_flag_is_not_swallowed(capsys):
    assert main(["analyze", "--inptu=x"]) == 2
    assert "unknown option '--inptu=x'" in capsys.readouterr().err


def test_missing_config_dir(capsys, tmp_path):
    assert main(["analyze", "--config-dir", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_options_and_groups(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"electroseg {command}: ")
    assert "options (defaults" in out and "config groups" in out


def test_help_shows_each_option_comment_from_the_config_file(capsys):
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out.splitlines()
    line = next(x for x in out if x.strip().startswith("precision:"))
    assert line.split("#", 1)[1].strip() == "auto (bf16 on a CPU with bf16 instructions, else fp32) | bf16 | fp16 (CUDA) | fp32"
    nested = next(x for x in out if x.strip().startswith("memory_limit:"))  # dask.memory_limit
    assert nested.startswith("    ") and nested.endswith("# per worker")
    assert not any("#" in x for x in out if x.strip().startswith(("checkpoint:", "n_workers:")))


def test_help_comments_follow_nesting_continuations_and_quotes(tmp_path, capsys):
    (tmp_path / "analyze.yaml").write_text(
        "# header\n"
        "out: mine          # where it goes\n"
        "                   # (and it goes on)\n"
        "input: x.tif\n"
        "# a free-standing comment\n"
        "block:             # outer\n"
        "  out: 1           # inner, not the top-level out\n"
        "label: 'a # b'\n"
        "name: \"q\"         # quoted value, real comment? left out\n")
    assert main(["analyze", "--config-dir", str(tmp_path), "--help"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert next(x for x in out if x.startswith("  out:")).endswith("# where it goes (and it goes on)")
    assert next(x for x in out if x.startswith("  block:")).endswith("# outer")
    assert next(x for x in out if x.startswith("    out:")).endswith("# inner, not the top-level out")
    assert "#" not in next(x for x in out if x.startswith("  input:"))
    assert next(x for x in out if x.startswith("  label:")).count("#") == 1  # the one inside the quotes


def test_unknown_override_key_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "electroseg.cli", "analyze", "no_such_key=1"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "no_such_key" in result.stderr and "Traceback" not in result.stderr


def test_user_config_dir_is_searched_first(tmp_path, capsys):
    (tmp_path / "analyze.yaml").write_text("# a user's own primary config\nout: mine\ninput: x.tif\n")
    assert main(["analyze", "--config-dir", str(tmp_path), "--help"]) == 0
    assert "out: mine" in capsys.readouterr().out


def test_report_takes_its_folder_as_a_bare_word(tmp_path, capsys):
    missing = tmp_path / "no_run_here"
    assert main(["report", str(missing)]) == 2
    assert f"dir: expected an existing run folder, got {str(missing)!r}" in capsys.readouterr().err


def test_a_bare_word_is_still_an_error_where_a_command_takes_none(capsys):
    assert main(["analyze", "labels.tif"]) == 2
    assert "labels.tif" in capsys.readouterr().err


def test_glob_with_brackets_reaches_the_command_as_a_path():
    from electroseg.cli import _quote_path

    # Hydra would read '[' as a list: path keys with brackets are quoted; lists and mappings are not
    assert _quote_path("inputs=scans/[ab]*.tif") == "inputs='scans/[ab]*.tif'"
    assert _quote_path("input=it's[1].tif") == "input='it\\'s[1].tif'"
    for untouched in ("inputs=[a.tif,b.tif]", "inputs={x: a.tif}", "inputs=scans/*.tif",
                      "voxel_size=[1,1,1]", "inputs='scans/[ab].tif'"):
        assert _quote_path(untouched) == untouched
    from electroseg.config import compose_command

    cfg = compose_command("predict", ["checkpoint=m.ckpt", _quote_path("inputs=scans/[ab]*.tif"), "out=o"])
    assert cfg.inputs == "scans/[ab]*.tif"


def test_builtin_third_party_data_names_the_missing_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ELECTROSEG_DATA", raising=False)
    assert main(["train", "data=segmentpy", "model=multichannel2d", f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ELECTROSEG_DATA is not set" in err[0] and "data.root=FOLDER" in err[0]
    assert not (tmp_path / "run").exists()


def test_root_is_relative_to_the_config_file_wherever_the_config_lives(tmp_path, monkeypatch):
    from electroseg.config import compose_command

    monkeypatch.setenv("ELECTROSEG_DATA", str(tmp_path / "third_party"))
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "cell.yaml").write_text(
        "name: cell\nroot: scans\nphases: [pore, am]\nchannels: [bse]\nvolumes: []\n")
    monkeypatch.chdir(tmp_path)
    cfg = compose_command("train", ["data=cell", "out=x"], config_dir=tmp_path / "mine")
    assert cfg.data.root == str((tmp_path / "mine" / "data" / "scans").resolve())
    # a shipped config copied elsewhere still finds its data through ELECTROSEG_DATA
    cfg = compose_command("train", ["data=segmentpy", "out=x"])
    assert cfg.data.root == str(tmp_path / "third_party" / "segmentpy")
    # a root given on the command line counts from the working folder, as every command-line path does
    cfg = compose_command("train", ["data=cell", "data.root=elsewhere", "out=x"], config_dir=tmp_path / "mine")
    assert cfg.data.root == "elsewhere"
