"""Quality of the default training run on the official test split, beside LightGBM.

    CENSUS_DATA_DIR=path/to/uci python bench/train_quality.py [--runs N]

Trains the trainer's default configuration (the flags' defaults) and a LightGBM baseline on
the same split in the same run, and prints accuracy, AUC and wall time side by side, with
the ratios. Targets for the default run: accuracy >= 0.86, AUC >= 0.915, within 60 s.
"""
import argparse
import tempfile
import time

from census import baseline, data, task


def wide_and_deep(files):
    with tempfile.TemporaryDirectory() as job_dir:
        args = task.parser().parse_args(["--train-files", files.train, "--eval-files",
                                         files.eval, "--job-dir", job_dir, "--verbosity", "ERROR"])
        start = time.perf_counter()
        metrics = task.run(args)
        return {"accuracy": metrics["accuracy"], "auc": metrics["auc"],
                "seconds": time.perf_counter() - start}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="wide & deep runs (seeds differ)")
    runs = parser.parse_args().runs
    files = data.fetch(progress=False)
    results = [(f"wide & deep #{i + 1}", wide_and_deep(files)) for i in range(runs)]
    lgbm = baseline.lightgbm_baseline(files.train, files.eval)
    results.append(("LightGBM", lgbm))
    print(f"{'model':<16}{'accuracy':>10}{'AUC':>8}{'seconds':>9}"
          f"{'acc/LGBM':>10}{'AUC/LGBM':>10}")
    for name, r in results:
        print(f"{name:<16}{r['accuracy']:>10.4f}{r['auc']:>8.4f}{r['seconds']:>9.1f}"
              f"{r['accuracy'] / lgbm['accuracy']:>10.3f}{r['auc'] / lgbm['auc']:>10.3f}")
    ok = all(r["accuracy"] >= 0.86 and r["auc"] >= 0.915 and r["seconds"] <= 60
             for name, r in results[:-1])
    print("targets (acc >= 0.86, AUC >= 0.915, <= 60 s):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
