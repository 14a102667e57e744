"""What every supervised training table of a chapter shares: backbone, data, recipe and seeds,
read from one notebook's parameter cell.

:class:`TableSetting` holds them. ``repro.experiments.dsnet.DSNetTableSetting`` (the same
fields less DSNet's ``width``, the same :meth:`~TableSetting.table_spec`), so that a chapter
adds only its network's own fields (a subclass) and its rows. Note for the merge: the DSNet
setting can become ``DSNetTableSetting(TableSetting)`` with ``width`` and its ``recorded``;
its table specs are then unchanged (same fields, same metrics by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

from repro.engine import TrainConfig
from repro.experiments.supervised import DataSpec
from repro.experiments.table import Row, TableSpec

DEFAULT_METRICS: tuple[str, ...] = ("miou", "pixel_acc", "boundary_f")
"""mIoU (what the papers report), pixel accuracy and boundary F (where a difference comes from)."""


@dataclass(frozen=True, kw_only=True)
class TableSetting:
    """The shared part of a training table (one parameter cell's worth; rows are the table's).

    The fields are parameter names of the table notebooks, so :meth:`from_parameters` reads
    them from the notebook's namespace (``globals()``). A subclass adds its network's fields.
    """

    dataset: str
    backbone: str
    weights: str
    output_stride: int
    image_size: int
    train_scale_range: Sequence[float]
    num_train: int
    num_val: int
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    head_lr_mult: float
    deep_supervision: bool
    eval_flip: bool
    eval_scales: Sequence[float]
    seeds: Sequence[int]
    device: str
    train_labels: str = "full"

    @classmethod
    def from_parameters(cls, namespace: Mapping[str, Any]) -> Self:
        """The setting from a notebook's parameters (e.g. ``globals()``), by field name; fields
        with a default (``train_labels``) may be left out."""
        required = [f.name for f in fields(cls) if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in namespace]
        if missing:
            raise ValueError(f"the notebook's parameter cell lacks {missing}")
        return cls(**{f.name: namespace[f.name] for f in fields(cls) if f.name in namespace})

    def model_options(self) -> dict[str, Any]:
        """Options every row's model shares (the backbone and deep supervision)."""
        return {
            "backbone": self.backbone,
            "output_stride": self.output_stride,
            "weights": None if self.weights == "none" else self.weights,
            "deep_supervision": self.deep_supervision,
        }

    def data(self) -> DataSpec:
        """The data every row trains and is evaluated on (unless a row has its own)."""
        return DataSpec(
            dataset=self.dataset,
            crop_size=self.image_size,
            scale_range=tuple(self.train_scale_range),
            train_labels=self.train_labels,
            offline={
                "image_size": self.image_size,
                "num_train": self.num_train,
                "num_val": self.num_val,
            },
        )

    def table_spec(
        self,
        prefix: str,
        rows: Sequence[Row],
        metrics: Sequence[str] = DEFAULT_METRICS,
        keep_weights: bool | Sequence[str] = False,
    ) -> TableSpec:
        """The table of ``rows`` on this data and recipe, recording ``metrics``; ``keep_weights``
        as :class:`~repro.experiments.table.TableSpec`'s (for figures drawn from trained
        models)."""
        return TableSpec(
            prefix=prefix,
            rows=rows,
            seeds=self.seeds,
            data=self.data(),
            train=TrainConfig(
                epochs=self.epochs,
                batch_size=self.batch_size,
                optimizer=self.optimizer,
                lr=self.lr,
                head_lr_mult=self.head_lr_mult,
                eval_every=0,
                eval_flip=self.eval_flip,
                eval_scales=tuple(self.eval_scales),
                device=self.device,
            ),
            metrics=tuple(metrics),
            keep_weights=keep_weights if isinstance(keep_weights, bool) else tuple(keep_weights),
        )
