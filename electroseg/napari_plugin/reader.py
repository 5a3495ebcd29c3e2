"""napari reader of electroseg outputs (:func:`electroseg.napari_plugin.layers.output_layers`):
predict and segment folders, and label files that record their phase names. Any other path is
left to other readers (the function returns None)."""

from __future__ import annotations

from typing import Any, Callable

from electroseg.napari_plugin.layers import output_kind, output_layers

__all__ = ["napari_get_reader", "read_output"]


def napari_get_reader(path: Any) -> Callable | None:
    """The reader for ``path`` when it is an electroseg output (a cheap check: folder markers,
    the label file's recorded phases), else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        kind = output_kind(path)
    except Exception:  # noqa: BLE001 - not ours (or unreadable): napari tries its other readers
        return None
    if kind is None:
        return None
    return lambda _path: read_output(output_layers(path))


def read_output(layers: list) -> list:
    """LayerData tuples with each Labels layer's fixed phase colours as a napari colormap."""
    from napari.utils.colormaps import DirectLabelColormap

    out = []
    for data, kwargs, kind in layers:
        kwargs = dict(kwargs)
        if kind == "labels":
            kwargs["colormap"] = label_colormap(kwargs["metadata"]["colours"], DirectLabelColormap)
        out.append((data, kwargs, kind))
    return out


def label_colormap(colours: dict, cls: Any = None) -> Any:
    """A napari ``DirectLabelColormap`` from ``{value: colour}``; the transparent value is its
    background (painted labels: 0, label files: 255)."""
    if cls is None:
        from napari.utils.colormaps import DirectLabelColormap as cls
    background = next(k for k, v in colours.items() if k is not None and v == "transparent")
    return cls(color_dict=dict(colours), background_value=background)
