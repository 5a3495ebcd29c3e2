"""The built-in configs and their Hydra composition for the command layer.

The YAML files live in the ``electroseg.configs`` package folder (:func:`builtin_config_dir`);
this module locates them, reads one without composing it (:func:`builtin_config`), and composes
a command's config with a user's ``--config-dir`` and overrides (:func:`compose_command`). It is
the only place besides `training` that uses Hydra.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf, open_dict

from electroseg.errors import InputError
from electroseg.io import atomic_output

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"

#: Environment variable naming the folder that holds third-party data (``segmentpy/``,
#: ``nrel_expertsegmentation/``, ...): the built-in configs of such data say
#: ``root: ${data_dir:segmentpy}``.
DATA_ENV = "ELECTROSEG_DATA"


def builtin_config_dir() -> Path:
    """Return the folder holding the built-in ``configs/`` (editable or installed)."""
    return Path(str(resources.files("electroseg.configs")))


def builtin_config(name: str) -> dict[str, Any]:
    """One built-in config file (``name`` relative to :func:`builtin_config_dir`, e.g.
    ``"model/unet3d.yaml"``) as a plain dict, without composing it."""
    return OmegaConf.to_container(OmegaConf.load(builtin_config_dir() / name))


def data_dir(subfolder: str = "") -> str:
    """``$ELECTROSEG_DATA/<subfolder>``; one clear InputError when the variable is not set."""
    base = os.environ.get(DATA_ENV)
    if not base:
        raise InputError(f"data: {DATA_ENV} is not set; this built-in dataset reads its files from "
                         f"${DATA_ENV}/{subfolder}: set {DATA_ENV} to the folder that holds {subfolder}/, "
                         f"or give data.root=FOLDER")
    return str(Path(base).expanduser() / subfolder)


OmegaConf.register_new_resolver("data_dir", data_dir, replace=True)


def compose_command(command: str, overrides: Sequence[str], *, config_dir: Path | None = None) -> DictConfig:
    """Compose ``configs/<command>.yaml`` with ``overrides``; ``config_dir`` is searched first."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    _check_group_options(overrides, config_dir=config_dir)
    GlobalHydra.instance().clear()
    with _user_config_dir(config_dir), initialize_config_dir(
            config_dir=str(builtin_config_dir()), version_base=None, job_name="electroseg"):
        cfg = compose(config_name=command, overrides=list(overrides), return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    given = any(o.lstrip("+~").split("=", 1)[0] == "data.root" for o in overrides)
    if not given:
        _resolve_dataset_root(cfg, choices.get("data"), config_dir)
    return cfg


class _UserConfigSearchPath(SearchPathPlugin):
    """Prepends ``folder`` (a ``--config-dir``) to Hydra's search path; nothing when it is None."""

    folder: str | None = None

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if self.folder is not None:
            search_path.prepend(provider="electroseg-config-dir", path=f"file://{self.folder}")


@contextmanager
def _user_config_dir(config_dir: Path | None) -> Iterator[None]:
    """Put ``config_dir`` first in Hydra's config search path while composing.

    Hydra's ``initialize_*`` functions search their own folder first, and a ``hydra.searchpath``
    override comes after it, so a user's file could not replace a built-in one of the same name.
    A search-path plugin, registered through Hydra's public ``Plugins.register``, prepends the
    folder instead (Hydra calls every registered plugin when it builds the search path).
    """
    Plugins.instance().register(_UserConfigSearchPath)
    _UserConfigSearchPath.folder = None if config_dir is None else str(Path(config_dir).resolve())
    try:
        yield
    finally:
        _UserConfigSearchPath.folder = None


def _resolve_dataset_root(cfg: DictConfig, choice: str | None, config_dir: Path | None) -> None:
    """One rule for every dataset config: a relative ``root`` is relative to the config file's folder.

    ``root: null`` on a dataset that is not synthetic means the file's own folder. The folder is
    the ``--config-dir``'s ``data/`` when the choice comes from there, else the built-in one. A
    root given on the command line (``data.root=...``) counts from the working folder, as any
    command-line path does (the caller skips this function then). Built-in configs of third-party data say ``root: ${data_dir:...}``
    (:func:`data_dir`), so a copied config still finds them.
    """
    if not choice or "data" not in cfg or not OmegaConf.is_dict(cfg.data):
        return
    user = None if config_dir is None else (Path(config_dir) / "data").resolve()
    folder = user if user is not None and (user / f"{choice}.yaml").is_file() else builtin_config_dir() / "data"
    if not (folder / f"{choice}.yaml").is_file():
        return
    if "root" in cfg.data and OmegaConf.is_interpolation(cfg.data, "root"):
        return  # ${data_dir:...} and other interpolations resolve to absolute paths
    root = cfg.data.get("root")
    with open_dict(cfg):
        if root is None and not cfg.data.get("synthetic"):
            cfg.data.root = str(folder)
        elif root is not None and not Path(str(root)).expanduser().is_absolute():
            cfg.data.root = str(folder / str(root))


def plain(value: Any) -> Any:
    """A config node as plain Python (dicts, lists), resolved; anything else unchanged."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _check_group_options(overrides: Sequence[str], *, config_dir: Path | None) -> None:
    """Refuse ``group=option`` naming no config file (Hydra ignores it silently for optional groups)."""
    groups = config_groups(config_dir=config_dir)
    for override in overrides:
        key, sep, value = override.lstrip("~+").partition("=")
        if not sep or key not in groups or value in ("null", ""):
            continue
        if value not in groups[key]:
            raise InputError(f"{key}={value}: no such {key} config; available: {', '.join(groups[key])}")


def config_groups(*, config_dir: Path | None = None) -> dict[str, list[str]]:
    """Config group → available options, from the built-in configs and ``config_dir``."""
    groups: dict[str, set[str]] = {}
    for root in [builtin_config_dir(), *([Path(config_dir)] if config_dir else [])]:
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            groups.setdefault(sub.name, set()).update(f.stem for f in sub.glob("*.yaml"))
    return {k: sorted(v) for k, v in sorted(groups.items())}


def command_help(command: str, module: ModuleType, *, config_dir: Path | None = None) -> str:
    """The ``--help`` text of a command: purpose, usage, options with defaults, config groups."""
    cfg = compose_command(command, [], config_dir=config_dir)
    lines = [f"electroseg {command}: {module.HELP}", "",
             f"usage: electroseg {command} [--config-dir DIR] [key=value ...]", "",
             "options (defaults; ??? = required):"]
    notes = _key_comments(_primary_config(command, config_dir))
    lines += ["  " + line for line in _annotated(OmegaConf.to_yaml(cfg).splitlines(), notes)]
    extra = getattr(module, "help_extra", None)
    if extra is not None:
        lines += ["", extra(cfg)]
    lines += ["", "config groups (group=option):"]
    lines += [f"  {name}: {', '.join(options)}" for name, options in config_groups(config_dir=config_dir).items()]
    return "\n".join(lines)


def _primary_config(command: str, config_dir: Path | None) -> Path:
    """The ``<command>.yaml`` that composition starts from (``config_dir`` first)."""
    user = Path(config_dir) / f"{command}.yaml" if config_dir else None
    return user if user is not None and user.is_file() else builtin_config_dir() / f"{command}.yaml"


def _key_comments(path: Path) -> dict[tuple[str, ...], str]:
    """``key path -> trailing comment`` of a block-style YAML file's ``key: value  # comment`` lines."""
    import re

    notes: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return notes
    last, column = None, -1  # the key that took the previous line's comment, and where its # stood
    for line in text.splitlines():
        match = re.match(r"^( *)([A-Za-z_][\w.-]*):(.*)$", line)
        if not match:
            if last is not None and line.strip().startswith("#") and line.index("#") == column:
                notes[last] += " " + line.strip()[1:].strip()  # the comment goes on below
            else:
                last = None
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        comment = re.search(r"\s#\s?(.*)$", rest)
        last = None
        if comment and not set("'\"") & set(rest[:comment.start()]):  # a # after a quote may be quoted
            last = tuple(k for _, k in stack)
            notes[last] = comment[1].strip()
            column = len(line) - len(rest) + comment.start() + 1
    return notes


def _annotated(lines: list[str], notes: dict[tuple[str, ...], str]) -> list[str]:
    """YAML lines from ``OmegaConf.to_yaml`` with each key's comment from the config file appended."""
    out, stack = [], []
    for line in lines:
        stripped = line.lstrip(" ")
        key, sep, _ = stripped.partition(":")
        if not sep or stripped.startswith("- "):
            out.append(line)
            continue
        indent = len(line) - len(stripped)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        note = notes.get(tuple(k for _, k in stack))
        out.append(f"{line:<34} # {note}" if note else line)
    return out


def save_composed(cfg: DictConfig) -> Path | None:
    """Write the composed config to ``<cfg.out>/config.yaml`` when the run has an output folder."""
    out = cfg.get("out") if isinstance(cfg, DictConfig) else None
    if not out or not Path(out).is_dir():
        return None
    path = Path(out) / CONFIG_NAME
    with atomic_output(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg, resolve=False))
    return path
