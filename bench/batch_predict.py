"""The local batch job (`census predict --output-dir`): flat memory, and its speed against the
bare signature.

    python bench/batch_predict.py [--job-dir JOB] [--rows 100000 1000000] [--repeats 3]

Two figures, printed side by side in one run (the machines are noisy: compare the columns of
one run, not runs):
1. Memory: the RSS *growth* of a job over the RSS with the model loaded (a one-instance job
   run first, in the same fresh process), at 100,000 and at 1,000,000 generated instances
   (test-split people repeated, JSON lines); sampled every 5 ms. Target: growth at 1M at most
   1.3x the growth at 100k.
2. Speed: instances/s of the job (the model loaded; reading, checking, predicting, writing)
   against calling the loaded signature in-process on tensors built in advance, at batch
   sizes 64 and 1,024, for each input kind and the export that takes it (JSON lines → JSON
   export, CSV rows → CSV export, TFRecord of tf.Example → EXAMPLE export); the median of
   `--repeats` alternating runs each. Target: at least 0.8x.
Without --job-dir it trains a small model first (CENSUS_DATA_DIR, else a download).
"""
import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from census import data, export, predict  # noqa: E402
from census.batch import local  # noqa: E402

KINDS = {"json": "JSON", "text": "CSV", "tfrecord": "EXAMPLE"}  # input kind → export format
SPEED_ROWS = {64: 50_000, 1024: 200_000}


def exports(job_dir, tmp):
    """{format: export version dir} of the model of `job_dir` (trained here if None)."""
    import tensorflow as tf

    from census import model, task
    from census.config import TrainConfig
    if job_dir is None:
        files = data.fetch(progress=False)
        job_dir = Path(tmp) / "job"
        task.run(TrainConfig(job_dir=job_dir, train_files=files.train,
                             eval_files=files.validation, train_steps=300, verbosity="ERROR"))
    m = model.build_model()
    m.load_weights(tf.train.latest_checkpoint(str(Path(job_dir) / "checkpoints"))
                   ).expect_partial()
    return {fmt: export.export_model(m, str(Path(tmp) / fmt), fmt) for fmt in KINDS.values()}


def instances_file(tmp, kind, rows):
    """A file of `rows` instances of `kind`: the test split's, repeated."""
    import tensorflow as tf
    one = Path(tmp) / f"test.{kind}"
    if not one.exists():
        local.write_instances(data.fetch(progress=False).test, one, kind)
    path = Path(tmp) / f"{rows}.{kind}"
    if not path.exists():
        if kind == "tfrecord":
            records = [r.numpy() for r in tf.data.TFRecordDataset([str(one)])]
            with tf.io.TFRecordWriter(str(path)) as out:
                for record in itertools.islice(itertools.cycle(records), rows):
                    out.write(record)
        else:
            lines = one.read_bytes().splitlines(keepends=True)
            with open(path, "wb") as out:
                out.writelines(itertools.islice(itertools.cycle(lines), rows))
    return path


def rss_child(model_dir, path, out):
    """In a fresh process: RSS after a one-instance job, then the peak during the big job;
    prints the growth in MiB."""
    import psutil
    me = psutil.Process()
    tiny = Path(out) / "one.json"
    tiny.write_bytes(Path(path).read_bytes().split(b"\n", 1)[0] + b"\n")
    local.run(model_dir, [tiny], Path(out) / "tiny")
    loaded = me.memory_info().rss
    peak, done = [loaded], threading.Event()

    def sample():
        while not done.wait(0.005):
            peak[0] = max(peak[0], me.memory_info().rss)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    local.run(model_dir, [path], Path(out) / "big", batch_size=1024)
    done.set()
    sampler.join()
    print(f"{loaded / 2**20:.1f} {(peak[0] - loaded) / 2**20:.1f}")


def rss_growth(model_dir, path, tmp):
    """(RSS with the model loaded, growth during the job), MiB, measured in a child."""
    out = tempfile.mkdtemp(dir=tmp)
    done = subprocess.run([sys.executable, __file__, "--rss-child", str(model_dir), str(path),
                           out], capture_output=True, text=True, check=True)
    loaded, growth = map(float, done.stdout.split()[-2:])
    return loaded, growth


def signature_rate(model_dir, kind, path, batch_size, rows):
    """Instances/s of the loaded signature on tensors built in advance (`rows` of them)."""
    from census import instances
    function, fmt = predict.load_signature(str(model_dir), kind=kind)
    items = list(itertools.islice(predict.READERS[kind](str(path)), batch_size))
    tensors = instances.to_tensors(fmt, (items * (batch_size // len(items) + 1))[:batch_size])
    function(**tensors)
    calls = rows // batch_size
    start = time.perf_counter()
    for _ in range(calls):
        {k: v.numpy() for k, v in function(**tensors).items()}
    return calls * batch_size / (time.perf_counter() - start)


def job_rate(model_dir, kind, path, batch_size, out):
    result = local.run(model_dir, [path], out, kind=kind, batch_size=batch_size)
    assert result.errors == 0, result
    return result.rows / result.seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job-dir", help="a trained job (default: train a small model)")
    p.add_argument("--rows", type=int, nargs=2, default=(100_000, 1_000_000))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_child:
        return rss_child(*args.rss_child)
    with tempfile.TemporaryDirectory(prefix="census-bench-") as tmp:
        models = exports(args.job_dir, tmp)
        print("Memory: RSS growth of a job over the RSS with the model loaded (JSON lines, "
              "batch 1,024)")
        growths = []
        for rows in args.rows:
            loaded, growth = rss_growth(models["JSON"], instances_file(tmp, "json", rows), tmp)
            growths.append(growth)
            print(f"  {rows:>9,} instances: loaded {loaded:7.1f} MiB, growth {growth:6.1f} MiB")
        ratio = growths[1] / max(growths[0], 1.0)
        print(f"  growth at {args.rows[1]:,} / at {args.rows[0]:,}: {ratio:.2f} (target <= 1.3, "
              f"differences under 1 MiB count as 1 MiB)  {'OK' if ratio <= 1.3 else 'MISSED'}")
        print("\nSpeed: instances/s, the job against the signature on ready tensors "
              f"(median of {args.repeats})")
        print(f"  {'input':<10}{'export':<9}{'batch':>6}{'job':>10}{'signature':>11}{'ratio':>7}")
        for (kind, fmt), batch_size in itertools.product(KINDS.items(), SPEED_ROWS):
            rows = SPEED_ROWS[batch_size]
            path = instances_file(tmp, kind, rows)
            jobs, bare = [], []
            for _ in range(args.repeats):  # alternating, so that load hits both alike
                jobs.append(job_rate(models[fmt], kind, path, batch_size, Path(tmp) / "out"))
                bare.append(signature_rate(models[fmt], kind, path, batch_size, rows))
            job, signature = statistics.median(jobs), statistics.median(bare)
            print(f"  {kind:<10}{fmt:<9}{batch_size:>6}{job:>10,.0f}{signature:>11,.0f}"
                  f"{job / signature:>7.2f}  {'OK' if job / signature >= 0.8 else 'MISSED'}")


if __name__ == "__main__":
    main()
