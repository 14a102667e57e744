"""Training and evaluation engine (SGD + poly schedule, deep supervision, OHEM and GDC
weighted cross-entropy, flip/multi-scale evaluation, boundary F-score, exact resumption,
DistributedDataParallel with synchronised batch norm). Training, evaluation and inference
run on the device :func:`resolve_device` picks (``"auto"``: the GPU when there is one).
"""

from repro.engine.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from repro.engine.config import LOSSES, OPTIMIZERS, TrainConfig
from repro.engine.device import resolve_device
from repro.engine.evaluate import evaluate, final_evaluation
from repro.engine.inference import MULTI_SCALE_EVAL_SCALES, predict_probabilities
from repro.engine.losses import (
    SegmentationLoss,
    build_loss,
    cross_entropy_loss,
    ohem_cross_entropy,
    pixel_share_class_weights,
    weighted_cross_entropy,
)
from repro.engine.metrics import ConfusionMatrix, boundary_counts, boundary_f_score
from repro.engine.optim import build_optimizer, parameter_groups
from repro.engine.sampling import EpochSeededSampler
from repro.engine.schedule import PolyLRScheduler, poly_lr_factor
from repro.engine.seeding import seed_everything
from repro.engine.sync_batchnorm import CpuSyncBatchNorm, convert_to_sync_batchnorm
from repro.engine.train import EpochRecord, TrainResult, train

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "MULTI_SCALE_EVAL_SCALES",
    "ConfusionMatrix",
    "CpuSyncBatchNorm",
    "EpochRecord",
    "EpochSeededSampler",
    "PolyLRScheduler",
    "SegmentationLoss",
    "TrainConfig",
    "TrainResult",
    "boundary_counts",
    "boundary_f_score",
    "build_loss",
    "build_optimizer",
    "checkpoint_path",
    "convert_to_sync_batchnorm",
    "cross_entropy_loss",
    "evaluate",
    "final_evaluation",
    "load_checkpoint",
    "ohem_cross_entropy",
    "parameter_groups",
    "pixel_share_class_weights",
    "poly_lr_factor",
    "predict_probabilities",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "train",
    "weighted_cross_entropy",
]
