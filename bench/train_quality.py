"""Quality of the default training run, on the validation split and, once, the test split,
beside LightGBM.

    CENSUS_DATA_DIR=path/to/uci python bench/train_quality.py [--runs N]

Trains the trainer's default configuration (the flags' defaults: evaluated on the validation
split) and a LightGBM baseline on the same training split, in the same run; then scores each
final model once on the test split. Prints accuracy and AUC on both splits and wall time, side
by side, with the ratios to LightGBM. Both models' AUC is exact (`census.metrics.roc_auc`),
computed from each final model's scores; training's `keras.metrics.AUC` is not used here.
Targets for the default run, on the test split: accuracy >= 0.862, AUC >= 0.917, within 60 s.
"""
import argparse
import tempfile
import time

from census import baseline, data, predict, quiet, task
from census.config import TrainConfig

quiet.import_tensorflow()


def wide_and_deep(files):
    with tempfile.TemporaryDirectory() as job_dir:
        config = TrainConfig(job_dir=job_dir, train_files=files.train,
                             eval_files=files.validation, verbosity="ERROR")
        start = time.perf_counter()
        metrics = task.run(config)
        seconds = time.perf_counter() - start
        export = metrics["exports"][-1]  # both splits scored as LightGBM's are (exact AUC)
        return {"validation": predict.score(export, [files.validation]),
                "test": predict.score(export, [files.test]), "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="wide & deep runs (seeds differ)")
    runs = parser.parse_args().runs
    files = data.fetch(progress=False)
    results = [(f"wide & deep #{i + 1}", wide_and_deep(files)) for i in range(runs)]
    lgbm = baseline.lightgbm_baseline(files.train, {"validation": files.validation,
                                                    "test": files.test})
    results.append(("LightGBM", lgbm))
    print(f"{'model':<16}{'val acc':>9}{'val AUC':>9}{'test acc':>10}{'test AUC':>10}"
          f"{'seconds':>9}{'acc/LGBM':>10}{'AUC/LGBM':>10}")
    for name, r in results:
        v, t = r["validation"], r["test"]
        print(f"{name:<16}{v['accuracy']:>9.4f}{v['auc']:>9.4f}{t['accuracy']:>10.4f}"
              f"{t['auc']:>10.4f}{r['seconds']:>9.1f}"
              f"{t['accuracy'] / lgbm['test']['accuracy']:>10.3f}"
              f"{t['auc'] / lgbm['test']['auc']:>10.3f}")
    ok = all(r["test"]["accuracy"] >= 0.862 and r["test"]["auc"] >= 0.917 and
             r["seconds"] <= 60 for _, r in results[:-1])
    print("targets (test acc >= 0.862, test AUC >= 0.917, <= 60 s):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
