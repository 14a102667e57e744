"""A table of a paper as data: rows of (model, configuration), seeds, and one call to run them.

A training notebook describes its table as a :class:`TableSpec` and calls :func:`run_table`,
which trains every (row, seed) side by side (:func:`repro.experiments.supervised.
train_and_evaluate_many`, resumable through the run cache) and records what every table of
this book records:

* per row and seed, each metric of ``spec.metrics`` under ``<prefix>/<row>/<metric>`` (the
  keys ``results/reported/claims.yaml`` tests) and the throughput under the same row;
* the tables ``per_seed``, ``per_class_iou`` and ``configurations`` (every row's model,
  configuration and training overrides, so that nothing that shapes a number goes unrecorded);
* the background-only floor ``reference/background_only/miou`` and how many runs clear it
  (a comparison between runs at the floor says nothing; the audit applies this rule);
* the training recipe, epochs, seeds, device and threads in the result's setting.

The returned :class:`TableResult` holds the per-seed frame and draws the standard figure and
the paper-vs-here table; what is specific to one table (a gain between budgets, a verdict)
stays in its notebook.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from repro.audit.verdicts import FLOOR_KEY, FLOOR_MARGIN
from repro.engine import TrainConfig, resolve_device
from repro.experiments.supervised import (
    EVALUATION_FIELDS,
    DataSpec,
    RunJob,
    RunOutcome,
    constant_prediction_scores,
    evaluate_trained_many,
    load_trained,
    train_and_evaluate_many,
)
from repro.results import Recorder
from repro.results.recorder import Metric

METRICS: dict[str, tuple[str, str]] = {
    "miou": ("mIoU (%)", "val mIoU"),
    "pixel_acc": ("pixel acc (%)", "val pixel accuracy"),
    "boundary_f": ("boundary F (%)", "val boundary F-score"),
}
"""Metric key -> (per-seed column, description); values are recorded in percent. Besides
these, ``boundary_f_<t>px`` (the boundary F-score at a tolerance of ``t`` pixels) and
``trimap_iou_<w>px`` (the mIoU within ``w`` pixels of the label boundaries) are metrics for
any ``t``, ``w`` >= 0 (:func:`metric_info`, :mod:`repro.engine.boundary_metrics`)."""

_PATTERNED: dict[str, tuple[str, str]] = {
    "boundary_f_": ("boundary F@{n}px (%)", "val boundary F-score at a {n}-pixel tolerance"),
    "trimap_iou_": ("trimap IoU@{n}px (%)", "val mIoU within {n} pixels of label boundaries"),
}


def _patterned(metric: str) -> tuple[str, int] | None:
    """``("boundary_f_", 2)`` for ``"boundary_f_2px"``; ``None`` for other keys."""
    for stem in _PATTERNED:
        number = metric.removeprefix(stem).removesuffix("px")
        if metric.startswith(stem) and metric.endswith("px") and number.isdigit():
            return stem, int(number)
    return None


def metric_info(metric: str) -> tuple[str, str]:
    """(per-seed column, description) of a metric key; ``KeyError`` for an unknown one."""
    if metric in METRICS:
        return METRICS[metric]
    parsed = _patterned(metric)
    if parsed is None:
        raise KeyError(metric)
    column, words = _PATTERNED[parsed[0]]
    return column.format(n=parsed[1]), words.format(n=parsed[1])


def evaluation_widths(metrics: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """The :class:`~repro.engine.TrainConfig` evaluation fields that ``metrics`` need:
    ``eval_boundary_tolerances_px`` and ``eval_trimap_widths_px``, sorted."""
    parsed = [p for p in map(_patterned, metrics) if p is not None]
    return {
        "eval_boundary_tolerances_px": tuple(sorted(n for s, n in parsed if s == "boundary_f_")),
        "eval_trimap_widths_px": tuple(sorted(n for s, n in parsed if s == "trimap_iou_")),
    }


TIMINGS: dict[str, tuple[str, str]] = {
    "train_images_per_s": ("train img/s", "img/s"),
    "eval_images_per_s": ("eval img/s", "img/s"),
    "train_minutes": ("train min", "min"),
}
"""Timing key -> (per-seed column, unit); never part of a fingerprint."""


@dataclass(frozen=True)
class Row:
    """One configuration of a table.

    Args:
        key: the row's name in metric keys (``<prefix>/<key>/<metric>``); may contain ``/``
            (e.g. ``"gdpp/epochs50"`` for one row at one budget).
        model: registry name (:func:`repro.models.available`).
        config: the model's configuration (keyword arguments of :func:`repro.models.build`).
        train: :class:`~repro.engine.TrainConfig` fields this row changes (e.g. ``epochs``).
        data: this row's data, when it differs from the table's (e.g. other training labels).
        columns: extra columns of the per-seed table (e.g. ``{"budget": "epochs50"}``).
        reported: id in ``results/reported/numbers.csv`` of the paper's value of this row.
        label: the row's name in figures (default ``key``).
        init_from: key of a trained row whose model (same seed) this row starts from instead
            of its initialisation: fine-tuning (DSNet Table 2 "FT").
        evaluation_of: key of a trained row whose model (same seed) this row evaluates again,
            with its own evaluation fields in ``train`` (flip, scales: DSNet Table 2), without
            training; build such rows with :meth:`evaluated`.
    """

    key: str
    model: str
    config: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    data: DataSpec | None = None
    columns: Mapping[str, Any] = field(default_factory=dict)
    reported: str | None = None
    label: str | None = None
    init_from: str | None = None
    evaluation_of: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.key

    def evaluated(self, key: str, **evaluation: Any) -> Row:
        """A row that evaluates this row's trained models with other evaluation fields.

        ``evaluation`` holds :data:`~repro.experiments.supervised.EVALUATION_FIELDS` values
        and, by keyword, ``columns``, ``reported`` and ``label`` of the new row.
        """
        own = {k: evaluation.pop(k) for k in ("columns", "reported", "label") if k in evaluation}
        return dataclasses.replace(
            self,
            key=key,
            train={**self.train, **evaluation},
            columns=own.get("columns", self.columns),
            reported=own.get("reported"),
            label=own.get("label"),
            init_from=None,
            evaluation_of=self.key,
        )


@dataclass(frozen=True)
class TableSpec:
    """A table: its rows, seeds, data and shared training recipe.

    Args:
        prefix: first part of every metric key (``"table5"``); ``""`` for none.
        rows: the configurations, trained in this order.
        seeds: one run per row and seed; the seed sets weights, sample order, augmentation.
        data: the data of every row without its own.
        train: the shared recipe (its ``seed`` is replaced by each run's).
        metrics: keys of :data:`METRICS` (or :func:`metric_info`'s patterns) recorded per
            row and seed.
        keep_weights: ``True`` keeps every trained model in its run folder, a sequence of row
            keys keeps those rows' (for :meth:`TableResult.trained_model`); the rows other rows
            start from or evaluate keep theirs anyway.
    """

    prefix: str
    rows: Sequence[Row]
    seeds: Sequence[int]
    data: DataSpec
    train: TrainConfig
    metrics: Sequence[str] = ("miou",)
    keep_weights: bool | Sequence[str] = False

    def __post_init__(self) -> None:
        keys = [row.key for row in self.rows]
        if not keys:
            raise ValueError("a table needs at least one row")
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"row keys must be unique, repeated: {duplicates}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be non-empty and unique, got {list(self.seeds)}")
        unknown = [m for m in self.metrics if m not in METRICS and _patterned(m) is None]
        if unknown:
            raise ValueError(
                f"metrics {unknown} unknown; choose from {list(METRICS)}, boundary_f_<t>px "
                "or trimap_iou_<w>px"
            )
        kept = () if isinstance(self.keep_weights, bool) else self.keep_weights
        missing = sorted(set(kept) - set(keys))
        if missing:
            raise ValueError(f"keep_weights names rows not in the table: {missing}")
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        for row in self.rows:
            bad = sorted(set(row.train) - fields)
            if bad:
                raise ValueError(f"row {row.key!r}: {bad} are not TrainConfig fields")
        self._check_references()

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"no row {key!r} in the table (rows: {[r.key for r in self.rows]})")

    def _check_references(self) -> None:
        """``init_from`` and ``evaluation_of`` name trained rows of this table, without cycles,
        and an evaluation row differs from its trained row in evaluation fields only."""
        keys = {row.key for row in self.rows}
        for row in self.rows:
            if row.init_from is not None and row.evaluation_of is not None:
                raise ValueError(f"row {row.key!r}: init_from and evaluation_of exclude each other")
            for name in ("init_from", "evaluation_of"):
                target = getattr(row, name)
                if target is None:
                    continue
                if target not in keys or target == row.key:
                    raise ValueError(f"row {row.key!r}: {name} {target!r} is not another row")
                if self.row(target).evaluation_of is not None:
                    raise ValueError(
                        f"row {row.key!r}: {name} {target!r} is an evaluation row; name the "
                        f"row it evaluates"
                    )
            if row.evaluation_of is not None:
                trained = self.row(row.evaluation_of)
                changed = {k for k in set(row.train) | set(trained.train)
                           if row.train.get(k) != trained.train.get(k)}  # fmt: skip
                if (
                    row.model != trained.model
                    or dict(row.config) != dict(trained.config)
                    or row.data != trained.data
                    or changed - set(EVALUATION_FIELDS)
                ):
                    raise ValueError(
                        f"row {row.key!r} evaluates {trained.key!r}'s models, so it may change "
                        f"only {EVALUATION_FIELDS}; build it with Row.evaluated()"
                    )
        for row in self.rows:
            self.depth(row)  # raises on a cycle

    def depth(self, row: Row) -> int:
        """0 for a row trained from its initialisation, 1 + its parent's for ``init_from``."""
        seen = {row.key}
        depth = 0
        while row.init_from is not None:
            row = self.row(row.init_from)
            if row.key in seen:
                raise ValueError(f"init_from forms a cycle through {sorted(seen)}")
            seen.add(row.key)
            depth += 1
        return depth

    def _keeps_weights(self, key: str) -> bool:
        if self.keep_weights is True or (
            not isinstance(self.keep_weights, bool) and key in self.keep_weights
        ):
            return True
        return any(key in (row.init_from, row.evaluation_of) for row in self.rows)

    def key(self, row: str, metric: str) -> str:
        """The metric key of ``row``'s ``metric`` (``<prefix>/<row>/<metric>``)."""
        return "/".join(part for part in (self.prefix, row, metric) if part)

    def train_config(self, row: Row, seed: int) -> TrainConfig:
        needed = {k: v for k, v in evaluation_widths(self.metrics).items() if v}
        return dataclasses.replace(self.train, **{**needed, **row.train, "seed": seed})

    def job(self, row: Row, seed: int) -> RunJob:
        """The training run behind ``row`` at ``seed`` (an evaluation row's: its trained row's)."""
        if row.evaluation_of is not None:
            return self.job(self.row(row.evaluation_of), seed)
        return RunJob(
            row.model,
            dict(row.config),
            row.data or self.data,
            self.train_config(row, seed),
            init_from=None if row.init_from is None else self.job(self.row(row.init_from), seed),
            keep_weights=self._keeps_weights(row.key),
        )

    def evaluation(self, row: Row, seed: int) -> dict[str, Any]:
        """The evaluation fields of ``row``'s configuration at ``seed``."""
        config = self.train_config(row, seed)
        return {name: getattr(config, name) for name in EVALUATION_FIELDS}

    def jobs(self) -> list[tuple[Row, RunJob]]:
        """One job per row and seed, rows outermost (the order of the per-seed table)."""
        return [(row, self.job(row, seed)) for row in self.rows for seed in self.seeds]


def describe_recipe(config: TrainConfig) -> str:
    """The training recipe in one line: every field of ``config`` that shapes a result."""
    parts = [
        f"{config.optimizer}, lr {config.lr:g} (backbone), {config.head_lr_mult:g} x lr elsewhere"
    ]
    if config.optimizer == "sgd":
        parts.append(f"momentum {config.momentum:g}")
    parts += [
        f"weight decay {config.weight_decay:g}",
        f"poly power {config.poly_power:g}",
        f"batch {config.batch_size}",
        f"loss {config.loss}"
        + (
            f" (keep p < {config.ohem_thresh:g}, at least {config.ohem_min_kept})"
            if config.loss == "ohem"
            else ""
        ),
        f"aux loss weight {config.aux_weight:g} (models with deep supervision)",
        "evaluation at scale(s) "
        + "/".join(f"{s:g}" for s in config.eval_scales)
        + (" with flip" if config.eval_flip else ""),
    ]
    return "; ".join(parts)


@dataclass
class TableResult:
    """What :func:`run_table` measured, with the views every table notebook shows."""

    spec: TableSpec
    recorder: Recorder
    outcomes: list[tuple[Row, RunOutcome]]
    per_seed: pd.DataFrame
    per_class: pd.DataFrame
    floor: dict[str, float] | None
    val_set: Any
    threads: int = 1

    def runs(self, row: str) -> pd.DataFrame:
        """The per-seed lines of ``row``, ordered by seed."""
        return self.per_seed[self.per_seed["row"] == row].sort_values("seed")

    def values(self, row: str, column: str = "mIoU (%)") -> list[float]:
        return self.runs(row)[column].tolist()

    def metric(self, row: str, metric: str = "miou") -> Metric:
        return self.recorder.metrics[self.spec.key(row, metric)]

    def trained_model(self, row: str, seed: int) -> Any:
        """The model of ``row`` trained with ``seed`` (evaluation mode, CPU), from its run folder.

        Kept when the spec keeps the row's weights; a run that did not keep them is trained
        again (:func:`~repro.experiments.supervised.load_trained`).
        """
        if seed not in self.spec.seeds:
            raise ValueError(f"no run of row {row!r} with seed {seed} (seeds {self.spec.seeds})")
        model, _ = load_trained(self.spec.job(self.spec.row(row), seed), self.threads)
        return model

    def summary(self) -> pd.DataFrame:
        """Mean and std over seeds of every numeric column, per row."""
        numeric = self.per_seed.drop(columns=["seed"]).select_dtypes("number")
        return numeric.groupby(self.per_seed["row"], sort=False).agg(["mean", "std"]).round(2)

    def record_difference(
        self, key: str, row: str, minus: str, metric: str = "miou", description: str = ""
    ) -> Metric:
        """Record ``row``'s metric minus ``minus``'s for the same seed (a paired difference)."""
        column = metric_info(metric)[0]
        a, b = self.runs(row), self.runs(minus)
        if a["seed"].tolist() != b["seed"].tolist():
            raise ValueError(f"rows {row!r} and {minus!r} were not run on the same seeds")
        return self.recorder.add(
            key,
            (a[column].to_numpy() - b[column].to_numpy()).tolist(),
            seeds=a["seed"].tolist(),
            unit="points",
            description=description or f"{row} minus {minus}, same seed",
        )

    def versus_paper(self, reported: pd.DataFrame, metric: str = "miou") -> pd.DataFrame:
        """The paper's value of each row (by :attr:`Row.reported`) beside this project's.

        ``reported`` is :func:`repro.audit.reported.load_reported`'s frame. A row without a
        paper counterpart shows ``-``; a value the paper's text lost shows so.
        """
        by_id = reported.set_index("id")
        lines = []
        for row in self.spec.rows:
            paper = "-"
            if row.reported is not None:
                entry = by_id.loc[row.reported]
                paper = "lost in the text" if entry["missing"] else entry["value"]
            lines.append(
                {
                    "row": row.key,
                    **row.columns,
                    f"paper {metric_info(metric)[0]}": paper,
                    f"this project {metric_info(metric)[0]}": self.metric(row.key, metric).format(),
                }
            )
        return pd.DataFrame(lines)

    def figure(
        self, metrics: Sequence[str] | None = None, losses: bool = True, extra_panels: int = 0
    ) -> tuple[Any, list[Any]]:
        """The standard figure: mean ± std bars over seeds per metric, the training losses.

        ``extra_panels`` empty axes follow for the notebook's own panels.
        """
        import matplotlib.pyplot as plt

        from repro.viz.bars import plot_mean_std_bars

        shown = list(metrics or self.spec.metrics[:1])
        count = len(shown) + int(losses) + extra_panels
        fig, axes = plt.subplots(1, count, figsize=(5 * count, 4), squeeze=False)
        panels = list(axes[0])
        labels = [row.title for row in self.spec.rows]
        for ax, metric in zip(panels, shown, strict=False):
            column, words = metric_info(metric)
            values = [self.values(row.key, column) for row in self.spec.rows]
            plot_mean_std_bars(ax, labels, values, column, f"{words} over seeds")
        if losses:
            ax = panels[len(shown)]
            colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
            for index, row in enumerate(self.spec.rows):
                for number, (owner, outcome) in enumerate(
                    (r, o) for r, o in self.outcomes if r.key == row.key
                ):
                    curve = [h["loss"] for h in outcome.history]
                    ax.plot(
                        range(1, len(curve) + 1),
                        curve,
                        marker="o",
                        markersize=3,
                        alpha=0.7,
                        color=colours[index % len(colours)],
                        label=owner.title if number == 0 else None,
                    )
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss")
            ax.set_title("training loss per run")
            ax.legend(fontsize="small")
        fig.tight_layout()
        return fig, panels


def _per_seed_line(row: Row, outcome: RunOutcome, metrics: Sequence[str]) -> dict[str, Any]:
    return {
        "row": row.key,
        **row.columns,
        "seed": outcome.seed,
        **{metric_info(m)[0]: 100 * outcome.metrics[m] for m in metrics},
        "params": outcome.parameters,
        "train img/s": outcome.train_images_per_s,
        "eval img/s": outcome.eval_images_per_s,
        "train min": outcome.train_seconds / 60,
    }


def _status(outcome: RunOutcome) -> str:
    if outcome.reused:
        return " (finished earlier: reused)"
    if outcome.resumed_from_epoch:
        return f" (resumed after epoch {outcome.resumed_from_epoch})"
    return ""


def run_table(
    spec: TableSpec,
    recorder: Recorder,
    processes: int = 1,
    threads_per_process: int = 1,
    floor: bool = True,
) -> TableResult:
    """Train every row of ``spec`` with every seed and record the table (see the module doc).

    ``processes`` runs train side by side with ``threads_per_process`` threads each
    (:func:`~repro.experiments.supervised.train_and_evaluate_many`). Re-run with the same
    arguments after an interruption, finished runs are reused and the unfinished one resumes.
    """
    jobs = spec.jobs()
    trained = [row for row in spec.rows if row.evaluation_of is None]
    print(
        f"{len(trained) * len(spec.seeds)} runs ({len(trained)} trained rows x "
        f"{len(spec.seeds)} seeds), {processes} at a time, {threads_per_process} thread(s) each"
        + (
            f"; {len(spec.rows) - len(trained)} row(s) evaluate trained models again"
            if len(trained) < len(spec.rows)
            else ""
        )
    )
    by_run: dict[tuple[str, int], RunOutcome] = {}
    # Fine-tuning rows start from their parent's models: train depth by depth.
    for depth in sorted({spec.depth(row) for row in trained}):
        stage = [(r, j) for r, j in jobs if r.evaluation_of is None and spec.depth(r) == depth]
        finished = train_and_evaluate_many(
            [job for _, job in stage], processes=processes, threads_per_process=threads_per_process
        )
        for (row, job), outcome in zip(stage, finished, strict=True):
            by_run[(row.key, job.train_config.seed)] = outcome
    evaluations = [
        (row, seed) for row in spec.rows if row.evaluation_of is not None for seed in spec.seeds
    ]
    evaluated = evaluate_trained_many(
        [(spec.job(row, seed), spec.evaluation(row, seed)) for row, seed in evaluations],
        processes=processes,
        threads_per_process=threads_per_process,
    )
    by_run.update(
        {(row.key, seed): o for (row, seed), o in zip(evaluations, evaluated, strict=True)}
    )
    outcomes = [(row, by_run[(row.key, seed)]) for row in spec.rows for seed in spec.seeds]
    for row, outcome in outcomes:
        print(
            f"{row.key} seed {outcome.seed}: mIoU {100 * outcome.metrics['miou']:.2f}, "
            + (
                f"the models of {row.evaluation_of} evaluated again"
                if row.evaluation_of is not None
                else f"{outcome.train_seconds / 60:.1f} min, "
                f"{outcome.train_images_per_s:.1f} img/s" + _status(outcome)
            )
        )

    per_seed = pd.DataFrame([_per_seed_line(row, o, spec.metrics) for row, o in outcomes])
    recorder.save_table(per_seed, "per_seed")
    for row in spec.rows:
        runs = per_seed[per_seed["row"] == row.key].sort_values("seed")
        seeds = runs["seed"].tolist()
        for metric in spec.metrics:
            column, words = metric_info(metric)
            recorder.add(spec.key(row.key, metric), runs[column], seeds, "%", words)
        for timing, (column, unit) in TIMINGS.items():
            recorder.add(spec.key(row.key, timing), runs[column], seeds, unit)
    speeds = per_seed.groupby("row", sort=False)["train img/s"].mean()
    recorder.note(
        f"Measured training throughput (images/s, mean over seeds; {processes} run(s) side by "
        f"side, {threads_per_process} thread(s) each): "
        + ", ".join(f"{row} {speed:.1f}" for row, speed in speeds.items())
    )

    val_set = spec.data.build(spec.seeds[0])[1]
    per_class = pd.DataFrame(
        [
            {
                "row": row.key,
                "seed": o.seed,
                **{
                    name: 100 * (iou if iou is not None else float("nan"))
                    for name, iou in zip(
                        val_set.class_names, o.metrics["per_class_iou"], strict=True
                    )
                },
            }
            for row, o in outcomes
        ]
    )
    recorder.save_table(per_class, "per_class_iou")
    recorder.save_table(
        pd.DataFrame(
            [
                {
                    "row": row.key,
                    "model": row.model,
                    "config": json.dumps(dict(row.config), sort_keys=True, default=list),
                    "training overrides": json.dumps(dict(row.train), sort_keys=True),
                    "starts from": row.init_from or "",
                    "evaluates the models of": row.evaluation_of or "",
                }
                for row in spec.rows
            ]
        ),
        "configurations",
    )
    epochs = sorted({spec.train_config(row, spec.seeds[0]).epochs for row in spec.rows})
    for name, value in (
        *spec.data.setting().items(),
        ("training", describe_recipe(spec.train)),
        ("epochs", "/".join(map(str, epochs))),
        ("seeds", ", ".join(map(str, spec.seeds))),
        ("device", str(resolve_device(spec.train.device))),
        ("threads", f"{processes} run(s) side by side, {threads_per_process} thread(s) each"),
    ):
        recorder.setting.setdefault(name, value)

    floor_scores = None
    if floor:
        floor_scores = constant_prediction_scores(val_set, class_index=0)
        recorder.add(
            FLOOR_KEY,
            100 * floor_scores["miou"],
            unit="%",
            description="val mIoU of predicting background everywhere",
        )
        threshold = floor_scores["miou"] + FLOOR_MARGIN / 100
        above = sum(o.metrics["miou"] > threshold for _, o in outcomes)
        recorder.note(
            f"Predicting background everywhere scores {100 * floor_scores['miou']:.2f} mIoU on "
            f"this validation split; {above} of {len(per_seed)} runs score more than "
            f"{FLOOR_MARGIN} points above it."
        )
        print(recorder.notes[-1])
    return TableResult(
        spec, recorder, outcomes, per_seed, per_class, floor_scores, val_set, threads_per_process
    )
