import json
import sys
import time

from repro.engine import TrainConfig
from repro.experiments.supervised import (
    DataSpec,
    RunJob,
    constant_prediction_scores,
    train_and_evaluate_many,
)


def main():
    nc = int(sys.argv[1])
    epochs = int(sys.argv[2])
    tag = sys.argv[3]
    models = sys.argv[4].split(",")
    ds = sys.argv[5] == "1" if len(sys.argv) > 5 else False
    sc = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    nc2 = int(sys.argv[7]) if len(sys.argv) > 7 else nc
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
    common = {"backbone": "resnet18", "output_stride": 16, "weights": None, "deep_supervision": ds}
    data = DataSpec(
        dataset="offline",
        crop_size=128,
        scale_range=(sc, 1 / sc),
        offline={"image_size": 128, "num_train": 1000, "num_val": 100, "num_classes": nc},
    )
    data2 = DataSpec(
        dataset="offline",
        crop_size=128,
        scale_range=(sc, 1 / sc),
        offline={"image_size": 128, "num_train": 1000, "num_val": 100, "num_classes": nc2},
    )
    jobs = [
        RunJob(
            m,
            {**common, **cfgs[m]},
            d,
            TrainConfig(
                epochs=epochs,
                batch_size=8,
                optimizer="adamw",
                lr=1e-3,
                weight_decay=1e-4,
                seed=0,
                eval_every=0,
            ),
        )
        for d in (data, data2)
        for m in models
    ]
    data2.build(0)
    t = time.time()
    out = train_and_evaluate_many(jobs, processes=2, threads_per_process=1)
    floor = [constant_prediction_scores(d.build(0)[1], 0)["miou"] for d in (data, data2)]
    res = {
        "nc": nc,
        "epochs": epochs,
        "ds": ds,
        "floor": floor,
        "sc": sc,
        "nc2": nc2,
        "runs": [
            {
                "model": o.model,
                "miou": o.metrics["miou"],
                "bf": o.metrics["boundary_f"],
                "per_class": o.metrics.get("per_class_iou"),
                "min": o.train_seconds / 60,
                "nc": o.metrics.get("num_classes"),
            }
            for o in out
        ],
    }
    json.dump(res, open(f"/tmp/probe/{tag}.json", "w"), indent=1)
    print(json.dumps(res, indent=1)[:3000])
    print("total min", (time.time() - t) / 60)


if __name__ == "__main__":
    main()
