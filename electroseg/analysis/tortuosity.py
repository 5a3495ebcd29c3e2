"""Tortuosity factor of one phase through TauFactor (optional extra ``electroseg[tortuosity]``).

TauFactor (Kench et al., SoftwareX 2023; tldr-group/taufactor) solves steady-state diffusion
through the phase with a Dirichlet drop across the volume along one axis and no-flux walls on the
other faces, and reports ``tau = eps / D_rel``. It imports torch, so it is imported here only
inside the function: `electroseg.analysis` itself never imports torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cc3d
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import (
    check_depth_axis,
    check_labels,
    check_voxel_size,
    phase_index,
)
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["Tortuosity", "check_tortuosity_phases", "estimate_seconds", "tortuosity_factor"]

#: CPU seconds of one TauFactor solve of a 96³ volume along one axis on 2 cores (measured, see
#: :func:`estimate_seconds`).
SECONDS_96 = 30.0

INSTALL_HINT = "pip install 'electroseg[tortuosity]'"


def check_tortuosity_phases(wanted: Sequence[str], phases: Sequence[str]) -> tuple[str, ...]:
    """``wanted`` as a tuple when every name is one of ``phases``, else an InputError."""
    wanted = tuple(wanted)
    unknown = [p for p in wanted if p not in phases]
    if unknown:
        raise InputError(f"tortuosity: expected phases among {list(phases)}, got {unknown}")
    return wanted


def estimate_seconds(shape: Sequence[int], axis: int) -> float | None:
    """Rough CPU time of one solve: about 30 s for 96³ on 2 cores, scaling with the number of
    voxels times the length along ``axis`` (the iterations grow with it). None when torch sees a
    GPU (TauFactor then runs there, in seconds).

    >>> round(estimate_seconds((96, 96, 96), 0) or 0)
    30
    """
    try:
        import torch

        if torch.cuda.is_available():
            return None
    except ImportError:  # the tortuosity extra is missing: the solve itself says so
        pass
    voxels = float(np.prod([int(s) for s in shape]))
    return SECONDS_96 * voxels / 96.0 ** 3 * int(shape[axis]) / 96.0


@dataclass(frozen=True)
class Tortuosity:
    """Result of a TauFactor solve.

    Attributes
    ----------
    phase : str
    axis : int
        Array axis of the imposed gradient.
    tau : float
        Tortuosity factor ``volume_fraction / relative_diffusivity``; inf when the phase does
        not span the volume along ``axis``.
    relative_diffusivity : float
        ``D_eff / D_0``, the effective diffusivity of the phase-filled volume relative to the
        bulk diffusivity of the phase (0 when it does not percolate).
    volume_fraction : float
        Share of all voxels in the phase (ignored voxels count as non-conducting).
    converged : bool
        Whether TauFactor met its convergence criterion within ``iter_limit``.
    iterations : int
    """

    phase: str
    axis: int
    tau: float
    relative_diffusivity: float
    volume_fraction: float
    converged: bool
    iterations: int

    def to_dict(self) -> dict:
        """JSON-ready dict; inf/NaN become None."""
        return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for key, value in self.__dict__.items()}


def tortuosity_factor(labels: np.ndarray, *, phase: str = "pore", axis: int = 0,
                      phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255,
                      voxel_size: Sequence[float] | None = None, device: str = "auto",
                      iter_limit: int = 10000, conv_crit: float = 1e-2) -> Tortuosity:
    """Tortuosity factor of ``phase`` along ``axis`` with TauFactor.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices.
    phase : str
        Conducting phase (the others, and ignored voxels, are insulating).
    axis : int
        Array axis along which the concentration drop is imposed (``depth_axis`` for transport
        from separator to current collector).
    phases : sequence of str
    ignore_value : int
    voxel_size : sequence of float, optional
        µm per axis; when given and not isotropic, TauFactor's ``AnisotropicSolver`` weighs the
        neighbours by ``(d_axis / d_other)²``. Without it voxels are taken as cubes.
    device : str
        ``"auto"`` (CUDA when torch sees a GPU, else CPU), ``"cpu"`` or ``"cuda"``.
    iter_limit : int
        Most iterations of the over-relaxation solver.
    conv_crit : float
        TauFactor's convergence criterion (relative spread of the flux between planes).

    Returns
    -------
    Tortuosity

    Raises
    ------
    ModuleNotFoundError
        If TauFactor is not installed; the message gives the install command.

    Notes
    -----
    ``tau = eps / D_rel`` with ``eps`` the phase volume fraction and ``D_rel`` the flux through
    the volume relative to a fully open volume (Cooper et al., SoftwareX 5 (2016) 203, TauFactor).
    A straight channel has ``tau = 1``. TauFactor's console messages go to the debug log.
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(axis, labels.ndim)
    target = phase_index(phases, phase)
    spacing = None
    if voxel_size is not None:
        spacing = check_voxel_size(voxel_size, labels.ndim, what="tortuosity")
    mask = np.moveaxis(labels == target, axis, 0).astype(np.uint8)
    if labels.ndim == 2:
        mask = mask[..., None]  # TauFactor works on (X, Y, Z) volumes
    if not mask.any():
        raise InputError(f"phase: {phase!r} has no voxel in labels; its tortuosity is undefined")
    if not _spans(mask):
        logger.warning("phase %r does not span the volume along axis %d: tau is infinite",
                       phase, axis)
        return Tortuosity(phase=phase, axis=axis, tau=math.inf, relative_diffusivity=0.0,
                          volume_fraction=float(mask.mean()), converged=True, iterations=0)
    solver = _make_solver(mask, _spacing(spacing, axis, labels.ndim), device)
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs), np.errstate(divide="ignore", invalid="ignore"):
        solver.solve(iter_limit=int(iter_limit), verbose=False, conv_crit=float(conv_crit))
    if logs.getvalue():
        logger.debug("taufactor: %s", logs.getvalue().strip())
    return _result(solver, phase, axis, float(mask.mean()))


def _spacing(spacing, axis: int, ndim: int) -> tuple[float, float, float] | None:
    """Voxel size in the solver's (gradient, other, other) order, or None if isotropic."""
    if spacing is None or len(set(spacing)) == 1:
        return None
    ordered = [spacing[axis]] + [s for i, s in enumerate(spacing) if i != axis]
    if ndim == 2:
        ordered.append(ordered[1])  # the added singleton axis has no neighbours in the volume
    return tuple(float(s) for s in ordered)


def _spans(mask: np.ndarray) -> bool:
    """True if one face-connected component of ``mask`` touches both planes 0 and -1 of axis 0."""
    components = cc3d.connected_components(mask, connectivity=6)
    first, last = np.unique(components[0]), np.unique(components[-1])
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


def _make_solver(mask: np.ndarray, spacing, device: str):
    try:
        import taufactor
        import torch
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"tortuosity_factor needs the optional package taufactor ({err.name} is missing); "
            f"install it with: {INSTALL_HINT}", name=err.name) from err
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    logger.info("taufactor: solving a %s volume on %s", "x".join(map(str, mask.shape)), device)
    if spacing is None:
        return taufactor.Solver(mask, device=device)
    return _anisotropic_solver_class(taufactor, torch)(mask, spacing=spacing, device=device)


def _anisotropic_solver_class(taufactor, torch):
    """TauFactor's AnisotropicSolver with its insulating-voxel test fixed.

    TauFactor 1.2 marks a voxel insulating when its weighted neighbour count exceeds 8, the
    isotropic maximum; with weights ``(d_axis / d_other)² > 1.5`` conducting voxels exceed it and
    their flux is dropped (a straight channel then reads tau = inf). Insulating voxels are the
    ones whose count is set to inf, so test for that.
    """

    class FixedAnisotropicSolver(taufactor.AnisotropicSolver):
        def vertical_flux(self):
            flux = self.field[:, 2:-1, 1:-1, 1:-1] - self.field[:, 1:-2, 1:-1, 1:-1]
            flux[torch.isinf(self.factor[:, :-1])] = 0
            flux[torch.isinf(self.factor[:, 1:])] = 0
            return flux

    return FixedAnisotropicSolver


def _result(solver, phase: str, axis: int, volume_fraction: float) -> Tortuosity:
    tau = float(np.asarray(solver.tau).reshape(-1)[0])
    relative = float(np.asarray(solver.D_rel).reshape(-1)[0])
    if not solver.converged:
        logger.warning("taufactor: not converged after %d iterations (tau %.4f)",
                       solver.iter, tau)
    if relative <= 0 or tau == 0:
        logger.warning("phase %r does not span the volume along axis %d: tau is infinite",
                       phase, axis)
        tau, relative = math.inf, 0.0
    return Tortuosity(phase=phase, axis=axis, tau=tau, relative_diffusivity=relative,
                      volume_fraction=volume_fraction, converged=bool(solver.converged),
                      iterations=int(solver.iter))
