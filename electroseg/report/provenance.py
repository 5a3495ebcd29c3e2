"""What a result depends on: package versions and input file hashes (sha256)."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Iterable, Mapping

# The packages whose versions change numbers in a report.
REPORTED_PACKAGES = ("electroseg", "numpy", "scipy", "scikit-image", "torch", "monai",
                     "lightning", "hydra-core", "tifffile", "connected-components-3d",
                     "pandas", "matplotlib")


def package_versions(packages: Iterable[str] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed version of each package ("not installed" when missing), plus Python's.

    Reads distribution metadata only: nothing is imported (so torch is never loaded here).
    """
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file (of every file inside it, in sorted order, for a folder/Zarr store).

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "x"); _ = open(p, "wb").write(b"abc"); sha256_file(p)[:8]
    'ba7816bf'
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(chunk_bytes), b""):
                digest.update(block)
    return digest.hexdigest()


def input_hashes(inputs: Mapping[str, str | Path]) -> dict[str, dict[str, str]]:
    """``{name: {"path": str, "sha256": hex}}`` for each named input that exists."""
    return {name: {"path": str(path), "sha256": sha256_file(path)}
            for name, path in inputs.items() if Path(path).exists()}
