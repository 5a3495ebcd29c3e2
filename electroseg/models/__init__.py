"""Segmentation networks (torch/MONAI only): planned 3D U-Net and multi-channel 2D/2.5D U-Net.

This package opens no files but checkpoints (:func:`read_checkpoint`) and never imports
Lightning or Hydra. The checkpoint contract
shared with :mod:`electroseg.inference` is documented in :mod:`electroseg.models.spec`.
"""

from electroseg.models.layout import ChannelsLastInstanceNorm, channels_last_network
from electroseg.models.networks import MultiChannel2D, UNet3D, count_parameters
from electroseg.models.normalization import normalize_intensity, stack_context
from electroseg.models.planning import UNetPlan, plan_unet
from electroseg.models.spec import (
    FORMAT_VERSION,
    MODEL_REGISTRY,
    LoadedModel,
    LogitBias,
    ModelSpec,
    build_model,
    model_from_checkpoint,
    network_from_checkpoint,
    read_checkpoint,
    spec_from_checkpoint,
    with_logit_bias,
)

__all__ = [
    "ChannelsLastInstanceNorm",
    "FORMAT_VERSION",
    "MODEL_REGISTRY",
    "LoadedModel",
    "LogitBias",
    "ModelSpec",
    "MultiChannel2D",
    "UNet3D",
    "UNetPlan",
    "build_model",
    "channels_last_network",
    "count_parameters",
    "model_from_checkpoint",
    "network_from_checkpoint",
    "normalize_intensity",
    "plan_unet",
    "read_checkpoint",
    "spec_from_checkpoint",
    "stack_context",
    "with_logit_bias",
]
