"""The command line: ``electroseg <command> [--config-dir DIR] [key=value ...]``.

Thin by design: parse argv, compose ``configs/<command>.yaml`` with Hydra, call the command's
adapter in `electroseg.commands`, report. Bad input (`InputError`, missing files, Hydra override
errors) becomes one line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from electroseg import __version__
from electroseg.errors import InputError

COMMANDS = {
    "synth": "make a synthetic electrode sample with ground truth",
    "segment": "classical segmentation (preprocess, thresholds, gradient analysis)",
    "train": "train a learned segmentation model",
    "predict": "batch inference with a trained checkpoint",
    "analyze": "metrics of a label volume (fractions, PBA, particles, surfaces)",
    "compare": "agreement of two segmentations and of their metrics",
    "run": "the whole chain on one dataset, with a report",
    "report": "rebuild the report of a run folder",
    "inspect": "what a checkpoint is, was trained on and scored",
    "export": "a checkpoint as a bioimage.io package, or without optimizer state",
    "models": "the pretrained electrode models shipped with electroseg",
    "suggest": "the slices to label next, from a model's uncertainty",
}

USAGE = """usage: electroseg <command> [--config-dir DIR] [key=value ...]
       electroseg <command> --help
       electroseg --version

commands:
{commands}

Options are Hydra overrides (key=value, group=option, +new_key=value). --config-dir DIR adds a
folder of your own configs (e.g. DIR/data/my_cathode.yaml), searched before the built-in ones."""


class UsageError(Exception):
    """A malformed command line (unknown command or flag)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``electroseg`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    try:
        return _main(argv)
    except UsageError as err:
        print(f"electroseg: {err}\n(see electroseg --help)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("electroseg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - classified below; bugs are re-raised
        message = user_error_message(err)
        if message is None:
            raise
        print(f"electroseg: error: {message}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE.format(commands="\n".join(f"  {k:<9} {v}" for k, v in COMMANDS.items())))
        return 0
    if argv[0] == "--version":
        print(f"electroseg {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    module = importlib.import_module(f"electroseg.commands.{command}")
    config_dir, show_help, overrides = _parse_options(rest, positional=getattr(module, "POSITIONAL", None))
    from electroseg import config

    if show_help:
        print(config.command_help(command, module, config_dir=config_dir))
        return 0
    cfg = config.compose_command(command, overrides, config_dir=config_dir)
    status = int(module.run(cfg) or 0)
    if getattr(module, "SAVE_CONFIG", True):
        config.save_composed(cfg)
    return status


PATH_KEYS = ("input", "inputs", "out", "checkpoint", "a", "b", "reference")


def _quote_path(override: str) -> str:
    """``key=value`` with a file path or glob as value quoted for Hydra when it holds brackets.

    ``inputs=scans/[ab]*.tif`` is a glob, but Hydra's grammar reads ``[`` as the start of a list
    and stops with a parse error. A value of a path key that holds ``[`` or ``]`` but does not
    start a list, a mapping or a quoted string is passed as a quoted string instead.
    """
    key, sep, value = override.partition("=")
    if not sep or key.lstrip("+~") not in PATH_KEYS or not value or value[0] in "[{'\"":
        return override
    if "[" not in value and "]" not in value:
        return override
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"{key}='{escaped}'"


def _parse_options(args: list[str], *, positional: str | None = None) -> tuple[Path | None, bool, list[str]]:
    """Split argv into (--config-dir, --help, overrides); a bare first word fills ``positional``."""
    config_dir, show_help, overrides = None, False, []
    it = iter(args)
    for arg in it:
        if arg in ("-h", "--help"):
            show_help = True
        elif arg == "--config-dir":
            config_dir = Path(next(it, ""))
        elif arg.startswith("--config-dir="):
            config_dir = Path(arg.split("=", 1)[1])
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg!r}; options are key=value overrides, --config-dir, --help")
        elif positional is not None and "=" not in arg and not overrides:
            overrides.append(_quote_path(f"{positional}={arg}"))
        else:
            overrides.append(_quote_path(arg))
    if config_dir is not None and not config_dir.is_dir():
        raise InputError(f"--config-dir {config_dir}: no such folder")
    return config_dir, show_help, overrides


def user_error_message(err: BaseException) -> str | None:
    """One-line message for an error caused by the user's input or environment, else None."""
    inner = _input_error_inside(err)  # itself, or raised inside a config interpolation (${data_dir:...})
    if inner is not None:
        return str(inner)
    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return f"{err.filename}: {err.strerror}" if err.filename else str(err)
    if isinstance(err, OSError) and err.errno is not None:
        return f"{err.filename or 'output'}: {err.strerror}"
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(err, (HydraException, OmegaConfBaseException)):
        return _first_line(str(err))
    return None


def _input_error_inside(err: BaseException) -> InputError | None:
    """An InputError that ``err`` was raised while handling (OmegaConf wraps resolver errors)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, InputError):
            return err
        err = err.__cause__ or err.__context__
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "invalid configuration"


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for chatty in ("distributed", "lightning.pytorch.utilities.rank_zero", "PIL", "matplotlib"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # tifffile logs a warning before the reader's own one-line error for a corrupt file
    logging.getLogger("tifffile").setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
