import json
import sys
import time

from repro.engine import TrainConfig
from repro.experiments.supervised import (
    DataSpec,
    RunJob,
    constant_prediction_scores,
    pyramid_module_configs,
    train_and_evaluate_many,
)


def main():
    epochs = int(sys.argv[1])
    tag = sys.argv[2]
    ntrain = int(sys.argv[3])
    variants = [v.split(":") for v in sys.argv[4].split(",")]  # row:lr:scale
    cfgs = pyramid_module_configs(0.25, 16)
    common = {
        "output_stride": 16,
        "channels": 64,
        "weights": None,
        "gdpp_num_eval_draws": 5,
        "width_mult": 0.5,
    }
    jobs = []
    for row, lr, sc in variants:
        sc = float(sc)
        data = DataSpec(
            dataset="offline",
            crop_size=128,
            scale_range=(sc, 1 / sc),
            offline={"image_size": 128, "num_train": ntrain, "num_val": 60},
        )
        name, cfg = cfgs[row]
        jobs.append(
            RunJob(
                name,
                {**common, **cfg},
                data,
                TrainConfig(
                    epochs=epochs,
                    batch_size=4,
                    optimizer="adamw",
                    lr=float(lr),
                    seed=0,
                    eval_every=0,
                ),
            )
        )
    jobs[0].data.build(0)
    t = time.time()
    out = train_and_evaluate_many(jobs, processes=2, threads_per_process=1)
    floor = constant_prediction_scores(jobs[0].data.build(0)[1], 0)["miou"]
    res = {
        "epochs": epochs,
        "ntrain": ntrain,
        "floor": floor,
        "runs": [
            {
                "variant": v,
                "model": o.model,
                "miou": o.metrics["miou"],
                "bf": o.metrics["boundary_f"],
                "per_class": o.metrics.get("per_class_iou"),
                "min": o.train_seconds / 60,
            }
            for v, o in zip(variants, out, strict=False)
        ],
    }
    json.dump(res, open(f"/tmp/probe/{tag}.json", "w"), indent=1)
    for r in res["runs"]:
        print(r["variant"], round(100 * r["miou"], 2), round(100 * r["bf"], 1), round(r["min"], 1))
    print("floor", floor, "total min", (time.time() - t) / 60)


if __name__ == "__main__":
    main()
