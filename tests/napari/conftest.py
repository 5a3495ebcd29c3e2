"""The napari tests run a real viewer on an offscreen Qt.

napari's canvas needs an OpenGL context. Qt's offscreen platform gets one through GLX when an X
display is there, so without ``DISPLAY`` these tests start Xvfb (Debian's ``xvfb``; ``.ci/run``
installs it when it can). Without Xvfb the viewer is napari's ``ViewerModel`` (the same layers,
dims and readers, no canvas) and every test still runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is first imported
os.environ.setdefault("MPLBACKEND", "Agg")  # a DISPLAY must not turn other tests' figures into Qt windows

pytest.importorskip("napari", reason="the napari extra is not installed (make test installs it)")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed (make test installs it)")


def _start_xvfb() -> str | None:
    """Start Xvfb on a free display; its name (":N"), or None when Xvfb is not installed."""
    binary = shutil.which("Xvfb")
    if binary is None:
        return None
    read, write = os.pipe()
    # Xvfb ends when this process does (the kernel sends it SIGTERM): killing it from an atexit
    # hook while Qt still holds its connection makes Xlib exit the process with status 1.
    process = subprocess.Popen([binary, "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                               pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=_end_with_parent)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        process.kill()
        return None
    return f":{number}"


def _end_with_parent() -> None:
    """In the child: SIGTERM when the parent process ends (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


if not os.environ.get("DISPLAY"):
    _display = _start_xvfb()
    if _display is not None:
        os.environ["DISPLAY"] = _display

HAS_DISPLAY = bool(os.environ.get("DISPLAY"))
_GL: list[bool] = []  # whether OpenGL answered, asked once


def _gl_answers() -> bool:
    """Ask napari's cached OpenGL queries once, in a canvas of their own, before any viewer.

    Asked first from a viewer whose canvas context is not yet current, ``glGetString`` returns
    nothing and napari fails with "'NoneType' object has no attribute 'decode'"; under Xvfb
    that happened now and then, and every napari test after it failed. Answered here, the
    answers are cached for every viewer; without an answer the tests use a ViewerModel.
    """
    if not _GL:
        try:
            from napari._vispy.utils.gl import get_gl_extensions, get_max_texture_sizes

            _GL.append(bool(get_gl_extensions()) and all(get_max_texture_sizes()))
        except Exception:  # noqa: BLE001 - no usable OpenGL: the ViewerModel route
            _GL.append(False)
    return _GL[0]


@pytest.fixture
def viewer(request):
    """A napari Viewer (real window, offscreen) when a display with OpenGL exists, else a ViewerModel."""
    if HAS_DISPLAY and _gl_answers():
        return request.getfixturevalue("make_napari_viewer")()
    from napari.components import ViewerModel
    from npe2 import PluginManager

    PluginManager.instance().discover()  # napari.Viewer does this when it opens
    return ViewerModel()


@pytest.fixture(scope="module")
def tiny_electrode():
    """(image, truth) of the tiny synthetic preset: 16 x 64 x 64 voxels, 3 phases."""
    from electroseg.synthetic import load_preset, make_sample

    sample = make_sample(load_preset("tiny"), seed=0)
    return np.asarray(sample.images["sem"]), np.asarray(sample.labels)
