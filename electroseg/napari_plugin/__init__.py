"""electroseg in napari: open its outputs, label slices, train, predict, suggest, analyse, save.

Installed with the ``napari`` extra (``pip install 'electroseg[napari]'``); napari finds it by
its npe2 manifest (``napari.yaml``, entry point ``napari.manifest``). The pieces:

- :mod:`~electroseg.napari_plugin.layers`: phase colours and label conventions (no napari, no Qt);
- :mod:`~electroseg.napari_plugin.session`: what the buttons do, as plain functions (write the
  dataset config, train, predict, suggest, analyse; no Qt, testable without a viewer);
- :mod:`~electroseg.napari_plugin.reader`: the reader of electroseg outputs;
- :mod:`~electroseg.napari_plugin.widget`: the dock widget.

docs/napari.md walks through it.
"""
