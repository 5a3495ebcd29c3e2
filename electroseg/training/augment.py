"""Augmentations that respect FIB-SEM anisotropy (MONAI dictionary transforms)."""

from __future__ import annotations

from typing import Any, Mapping

from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
)

from electroseg.errors import InputError

__all__ = ["build_augmentation", "AUGMENT_KEYS"]

AUGMENT_KEYS = {"flip", "rotate90", "scale", "shift", "noise_std", "blur_sigma", "contrast_gamma", "prob"}
_ALL = ("image", "label", "weight")


def build_augmentation(options: Mapping[str, Any], *, spatial_dims: int, seed: int = 0) -> Compose | None:
    """Random flips and 90° turns in the image plane, and intensity changes.

    Parameters
    ----------
    options : mapping
        ``flip`` (bool), ``rotate90`` (bool), ``scale`` and ``shift`` (intensity factor/offset
        ranges), ``noise_std``, ``blur_sigma`` (in-plane pixels), ``contrast_gamma`` ([lo, hi])
        and ``prob`` (probability of each intensity change). Empty mapping: no augmentation.
    spatial_dims : int
        3 for (C, Z, Y, X) patches, 2 for (C, Y, X).
    seed : int

    Notes
    -----
    Only the Y and X axes are flipped or turned: the milling axis Z is never flipped, because
    shine-through shows the wall *behind* a pore (at larger z) and slices are thicker than
    pixels. Blur acts in-plane only.
    """
    unknown = set(options) - AUGMENT_KEYS
    if unknown:
        raise InputError(f"augment: unknown options {sorted(unknown)}; expected among {sorted(AUGMENT_KEYS)}")
    if not options:
        return None
    in_plane = (1, 2) if spatial_dims == 3 else (0, 1)
    p = float(options.get("prob", 0.2))
    steps: list = []
    if options.get("flip", True):
        steps += [RandFlipd(_ALL, prob=0.5, spatial_axis=a) for a in in_plane]
    if options.get("rotate90", True):
        steps.append(RandRotate90d(_ALL, prob=0.5, max_k=3, spatial_axes=in_plane))
    if options.get("scale"):
        steps.append(RandScaleIntensityd("image", factors=float(options["scale"]), prob=p))
    if options.get("shift"):
        steps.append(RandShiftIntensityd("image", offsets=float(options["shift"]), prob=p))
    if options.get("noise_std"):
        steps.append(RandGaussianNoised("image", std=float(options["noise_std"]), prob=p))
    if options.get("blur_sigma"):
        steps.append(_smooth((0.25, float(options["blur_sigma"])), spatial_dims, p))
    if options.get("contrast_gamma"):
        steps.append(RandAdjustContrastd("image", gamma=tuple(options["contrast_gamma"]), prob=p))
    compose = Compose(steps)
    compose.set_random_state(seed=seed)
    return compose


def _smooth(sigma: tuple[float, float], spatial_dims: int, prob: float) -> RandGaussianSmoothd:
    # MONAI names sigma by array axis order x, y, z = first, second, third spatial axis.
    if spatial_dims == 3:
        return RandGaussianSmoothd("image", sigma_x=(0.0, 0.0), sigma_y=sigma, sigma_z=sigma, prob=prob)
    return RandGaussianSmoothd("image", sigma_x=sigma, sigma_y=sigma, prob=prob)
