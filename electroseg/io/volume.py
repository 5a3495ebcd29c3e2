"""The `Volume`: an image or label array with its physical voxel size."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from electroseg.errors import InputError


@dataclass(frozen=True)
class Volume:
    """An image, a multi-channel image or a label array with its voxel size.

    Parameters
    ----------
    data : array-like
        (Z, Y, X) volume, (Y, X) image, or (C, Z, Y, X) / (C, Y, X) when ``channels`` names
        more than one channel. A NumPy array, or a lazy array (zarr, h5py, dask) for large inputs.
    voxel_size : tuple of float or None
        Size of a voxel in micrometres, one value per spatial axis in array order: (z, y, x)
        for a volume, (y, x) for a 2D image. None when unknown.
    channels : tuple of str
        Channel (detector) names; empty for a single unnamed channel.
    source : str or None
        Where the data came from (file path), used in error messages.
    """

    data: Any
    voxel_size: tuple[float, ...] | None = None
    channels: tuple[str, ...] = ()
    source: str | None = None

    @property
    def is_multichannel(self) -> bool:
        """True when the first axis holds channels."""
        return len(self.channels) > 1

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape without the channel axis."""
        return self.shape[1:] if self.is_multichannel else self.shape

    @property
    def ndim_spatial(self) -> int:
        return len(self.spatial_shape)

    @property
    def name(self) -> str:
        """A short name for messages: the source file, else ``"<array>"``."""
        return self.source or "<array>"

    def numpy(self) -> np.ndarray:
        """The data as an in-memory NumPy array (loads a lazy array)."""
        return np.asarray(self.data[...] if not isinstance(self.data, np.ndarray) else self.data)

    def require_voxel_size(self, what: str = "a physical metric") -> tuple[float, ...]:
        """Return the voxel size, or raise `InputError` naming the source when it is unknown."""
        if self.voxel_size is None:
            raise InputError(
                f"{self.name}: {what} needs the voxel size, but the file has none; "
                f"give it as voxel_size={'[z,y,x]' if self.ndim_spatial == 3 else '[y,x]'} in micrometres"
            )
        return self.voxel_size

    def with_voxel_size(self, voxel_size: Any) -> Volume:
        """Return a copy whose voxel size is ``voxel_size`` (validated)."""
        from electroseg.io._validate import check_voxel_size

        return replace(self, voxel_size=check_voxel_size(voxel_size, self.ndim_spatial, self.name))
