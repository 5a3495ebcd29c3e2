"""Reading and writing images and label volumes with their physical voxel size.

See `read_volume` for the supported formats. Writers are atomic.
"""

from electroseg.io.labels import UNLABELLED, labelled_slices, read_labels, recorded_phases, to_phase_indices
from electroseg.io.readers import read_channels, read_volume
from electroseg.io.volume import Volume
from electroseg.io.writers import BigTiffSlabs, atomic_output, label_phases, write_json, write_tiff, write_zarr

__all__ = [
    "UNLABELLED",
    "Volume",
    "BigTiffSlabs",
    "atomic_output",
    "label_phases",
    "labelled_slices",
    "read_channels",
    "read_labels",
    "read_volume",
    "recorded_phases",
    "to_phase_indices",
    "write_json",
    "write_tiff",
    "write_zarr",
]
