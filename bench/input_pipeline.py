"""Input pipeline speed: tf.data variants against a Python loop, side by side (chapter 3).

    CENSUS_DATA_DIR=path/to/uci python bench/input_pipeline.py [--quick] [--json FILE]

Measures, in one run, the variants of `census.pipelines` (a Python loop, the 2017 sample's
row-by-row tf.data, batch-then-parse, parallel parsing, prefetching = `census.inputs.input_fn`,
`list_files` + `interleave` over shards) the way TensorFlow's guide "Better performance with
the tf.data API" does (https://www.tensorflow.org/guide/data_performance): a warm-up, then a
fixed number of batches; each variant REPEATS times, taking turns, best run kept. Five
measurements, each printed as rows/s and as a multiple of the Python loop measured with it:

1. one file (the training split, 29,305 rows), batches of 128, the pipeline alone;
2. a copy of it 10 times larger in 8 shards (written to a temporary folder, about 36 MB,
   removed at the end), batches of 512, the pipeline alone;
3. the same with a simulated 2 ms training step after each batch (time.sleep, as in the guide:
   a step on an accelerator, the CPU free meanwhile): the input-bound case;
4. `model.fit` of a cheap model (the wide part alone) on the shards, batches of 512;
5. `model.fit` of the wide & deep model on the one file, batches of 128
(each fit is one call of 20 + 150 steps, timed from the start of step 20).

--quick: 2 copies, fewer batches, one run each (seconds; ratios only indicative).

Measured 2026-11-29 on 2 cores shared with other jobs (load average 5 to 7 throughout),
TensorFlow 2.21, `python bench/input_pipeline.py`, two runs one after the other (run 1/run 2),
multiples of the Python loop's rows per second in the same measurement:

    measurement                     Python rows/s 2017 per row  batch+parse    +parallel    +prefetch   interleave
    one file, 128, alone                115k/289k    0.17/0.06    1.81/0.94    2.04/0.93    1.76/0.86            -
    10x in 8 shards, 512, alone         124k/241k            -    1.24/1.30    3.58/1.03    2.11/1.46    2.51/1.73
    the same + 2 ms simulated step      101k/117k            -    1.77/1.20    1.72/1.27    1.68/1.05    1.77/1.52
    linear model fit, shards, 512        117k/89k            -    0.93/2.32    1.27/2.16    2.02/2.05    2.06/1.74
    wide & deep fit, one file, 128        19k/20k    0.63/0.74            -            -    1.15/1.61            -

What held in every run: the 2017 row-by-row form reads at a sixth or less of the Python loop's
speed (0.06-0.17) and slows real training (0.63/0.74); every batch-wise tf.data form beats the
Python loop once a simulated step follows each batch. The rest moves with what else runs on
the machine: in run 2 the Python loop read the one file at 289k rows/s, a little faster than
the batch-wise forms; in run 1, at the same load average, at 115k, half their speed. Close
variants swap places from run to run.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from census import data, quiet  # noqa: E402

tf = quiet.import_tensorflow()

from census import model, pipelines  # noqa: E402

ONE_FILE = ["Python loop", "tf.data, parse each row (2017)", "tf.data, batch then parse",
            "+ parallel parse", "+ prefetch = census.inputs"]
SHARDED = ["Python loop", "tf.data, batch then parse", "+ parallel parse",
           "+ prefetch = census.inputs", "list_files + interleave"]
TRAINING = ["Python loop", "tf.data, parse each row (2017)", "+ prefetch = census.inputs"]


def measure(quick):
    """{measurement: DataFrame of pipelines.compare}, all in this one run."""
    batches, steps, repeats, copies = (30, 30, 1, 2) if quick else (200, 150, 3, 10)
    files = data.fetch(progress=False)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        shards = pipelines.write_shards(files.train, folder, shards=8, copies=copies)
        plan = [
            ("one file, 128, alone",
             dict(files=files.train, variants=ONE_FILE, batch_size=128)),
            (f"{copies}x in 8 shards, 512, alone",
             dict(files=shards, variants=SHARDED, batch_size=512)),
            ("the same + 2 ms simulated step",
             dict(files=shards, variants=SHARDED, batch_size=512, step_seconds=0.002)),
            ("linear model fit, shards, 512",
             dict(files=shards, variants=SHARDED, batch_size=512,
                  model=pipelines.linear_model(), batches=steps)),
            ("wide & deep fit, one file, 128",
             dict(files=files.train, variants=TRAINING, batch_size=128,
                  model=model.build_model(), batches=steps)),
        ]
        for name, kwargs in plan:
            start = time.perf_counter()
            kwargs = {"batches": batches, "repeats": repeats, **kwargs}
            results[name] = pipelines.compare(**kwargs)
            print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return results


def report(results):
    """One table: rows/s of the Python loop, then each variant as a multiple of it."""
    names = list(pipelines.VARIANTS)[1:]
    short = ["2017 per row", "batch+parse", "+parallel", "+prefetch", "interleave"]
    lines = [f"{'measurement':<34} {'Python rows/s':>13}  " +
             "  ".join(f"{s:>12}" for s in short)]
    for measurement, table in results.items():
        ratio = dict(zip(table["variant"], table["vs_python"]))
        python = int(table.loc[table["variant"] == pipelines.BASELINE, "rows_per_s"].iloc[0])
        cells = [f"{ratio[n]:>12.2f}" if n in ratio else f"{'-':>12}" for n in names]
        lines.append(f"{measurement:<34} {python:>13,}  " + "  ".join(cells))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 copies, few batches, one run each (seconds)")
    parser.add_argument("--json", help="also write every table (rows/s and ratios) here")
    args = parser.parse_args()
    start = time.perf_counter()
    results = measure(args.quick)
    print(report(results))
    print(f"\n{time.perf_counter() - start:.0f} s in all; multiples of the Python loop measured "
          "in the same run, best of each variant's runs")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {name: table.to_dict(orient="records") for name, table in results.items()},
            indent=2) + "\n")


if __name__ == "__main__":
    main()
