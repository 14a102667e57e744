"""Probe: ASPP dilations scaled to the 8x8 feature map (feasibility recipe, seed 0).

``python rates.py TAG RATES MODELS [EPOCHS]``, e.g. ``rates.py r235 2,3,5 deeplabv3plus,dsnet``.
The rates replace DeepLabv3's (6, 12, 18) in every model built in this process and in the
spawned training processes (the patch runs at import, which spawn repeats in each child).
Like ``probe.py`` and ``m.py`` it leaves ``TrainConfig.head_lr_mult`` at its default 0.1, unlike
the notebooks of the same date (1.0); see ``notes/feasibility_recipe.md``.
"""

import json
import os
import sys
import time

import repro.models.segmentation as segmentation
from repro.engine import TrainConfig
from repro.experiments.supervised import DataSpec, RunJob, train_and_evaluate_many

RATES = tuple(int(r) for r in os.environ.get("PROBE_RATES", "6,12,18").split(","))
segmentation.default_aspp_rates = lambda output_stride: RATES


def main() -> None:
    tag, models = sys.argv[1], sys.argv[2].split(",")
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    w = 128
    cfgs = {
        "fcn": {},
        "deeplabv3plus": {"aspp_channels": w, "decoder_channels": w},
        "dsnet": {
            "aspp_channels": w,
            "modification_channels": w,
            "sampled_channels": w,
            "classifier_channels": w,
        },
    }
    common = {"backbone": "resnet18", "output_stride": 16, "weights": None, "deep_supervision": False}
    data = DataSpec(
        dataset="offline",
        crop_size=128,
        scale_range=(1.0, 1.0),
        offline={"image_size": 128, "num_train": 1000, "num_val": 100, "num_classes": 9},
    )
    config = TrainConfig(
        epochs=epochs, batch_size=8, optimizer="adamw", lr=1e-3, weight_decay=1e-4, seed=0,
        eval_every=0,
    )
    jobs = [RunJob(m, {**common, **cfgs[m]}, data, config) for m in models]
    started = time.time()
    out = train_and_evaluate_many(jobs, processes=2, threads_per_process=1)
    res = {
        "rates": RATES,
        "epochs": epochs,
        "runs": [
            {
                "model": o.model,
                "miou": o.metrics["miou"],
                "bf": o.metrics["boundary_f"],
                "per_class": o.metrics.get("per_class_iou"),
                "min": o.train_seconds / 60,
            }
            for o in out
        ],
    }
    with open(f"/tmp/probe/{tag}.json", "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1)[:3000])
    print("total min", (time.time() - started) / 60)


if __name__ == "__main__":
    main()
