"""Training of learned segmentation models (Lightning + Hydra).

``train(cfg)`` is the entry point used by ``electroseg train``; the pieces (dataset configs,
label sources, patch sampling, augmentation, losses, LightningModule/DataModule) are usable on
their own.
"""

from electroseg.training.checkpoint import check_compatible, read_checkpoint
from electroseg.training.dataset_config import DatasetConfig, VolumeEntry, parse_dataset_config, read_dataset_config
from electroseg.training.datamodule import ElectrodeDataModule
from electroseg.training.targets import TrainingTarget, boundary_band, combine_label_sources
from electroseg.training.losses import masked_cross_entropy, masked_soft_dice, segmentation_loss
from electroseg.training.module import SegmentationModule, iou_from_confusion
from electroseg.training.train import make_spec, train

__all__ = [
    "DatasetConfig", "ElectrodeDataModule", "SegmentationModule", "TrainingTarget", "VolumeEntry",
    "boundary_band", "check_compatible", "combine_label_sources", "iou_from_confusion", "make_spec",
    "masked_cross_entropy", "masked_soft_dice", "parse_dataset_config", "read_checkpoint",
    "read_dataset_config", "segmentation_loss", "train",
]
