"""Online prediction speed: `census serve` against calling the SavedModel in-process.

    python bench/serve.py [--model-base-path JOB_DIR/export/census] [--seconds 2]

Starts `census serve` as a child process on 127.0.0.1, sends 1-row and 100-row requests from
1, 8 and 32 (1-row) or 1, 4 and 8 (100-row) keep-alive clients for a few seconds each, and
prints p50 / p99 latency, requests/s, rows/s, and rows/s as a fraction of in-process
prediction of the same size (sequential: `census.instances.to_tensors` + the signature, no HTTP,
no JSON), and of the bare signature call on ready tensors. Without
--model-base-path it trains a small model first (CENSUS_DATA_DIR, else a download).
Targets on 2 cores: p99 <= 20 ms for 1-row requests at 8 clients; batched throughput at least
half the in-process rate.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from census import instances, predict, processes  # noqa: E402
from census.serving import client, process  # noqa: E402

PLAN = ((1, (1, 8, 32)), (100, (1, 4, 8)))  # (rows per request, client counts)


def people(rows):
    lines = [json.loads(line) for line in (REPO / "test.json").read_text().splitlines() if line]
    return (lines * rows)[:rows]


def in_process(model_dir, rows, seconds):
    """Sequential in-process prediction of `rows` instances with the loaded model, as
    `census.predict` does it (`to_tensors`, then the signature), and the signature alone on
    ready tensors: rows/s of each."""
    import tensorflow as tf
    fn = tf.saved_model.load(predict.resolve_model_dir(model_dir)).signatures["serving_default"]
    batch = people(rows)
    columns = instances.to_tensors("JSON", batch)

    def rate(call):
        call()
        times, deadline = [], time.perf_counter() + seconds / 2
        while time.perf_counter() < deadline and len(times) < 100_000:
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return rows * len(times) / sum(times)
    return {"rows_per_s": rate(lambda: {k: v.numpy() for k, v in
                                        fn(**instances.to_tensors("JSON", batch)).items()}),
            "model_rows_per_s": rate(lambda: {k: v.numpy() for k, v in fn(**columns).items()})}


def small_model(job_dir):
    from census import data, task
    from census.config import TrainConfig
    files = data.fetch(progress=False)
    task.run(TrainConfig(job_dir=job_dir, train_files=files.train, eval_files=files.validation,
                         train_steps=300, verbosity="ERROR"))
    return str(Path(job_dir) / "export" / "census")


def run(base_path, seconds, **options):
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}" + client.predict_path()
    proc = process.start_process(base_path, port=port, **options)
    results = []
    try:
        for rows, concurrencies in PLAN:
            body = {"instances": people(rows)}
            client.load(url, body, concurrency=2, seconds=0.5)  # warm up
            local = in_process(base_path, rows, seconds)
            for concurrency in concurrencies:
                r = client.load(url, body, concurrency=concurrency, seconds=seconds)
                bad = {s: n for s, n in r["statuses"].items() if s != 200}
                results.append({"rows": rows, "clients": concurrency, "p50_ms": r["p50_ms"],
                                "p99_ms": r["p99_ms"], "requests_per_s": r["requests_per_s"],
                                "rows_per_s": r["requests_per_s"] * rows,
                                "in_process_rows_per_s": local["rows_per_s"],
                                "model_only_rows_per_s": local["model_rows_per_s"],
                                "errors": bad})
    finally:
        process.stop_process(proc)
    return results


def report(results):
    lines = [f"{'rows':>5}{'clients':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'rows/s':>10}"
             f"{'in-process':>12}{'ratio':>7}{'model only':>12}{'ratio':>7}  errors"]
    for r in results:
        lines.append(f"{r['rows']:>5}{r['clients']:>8}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                     f"{r['requests_per_s']:>9.0f}{r['rows_per_s']:>10.0f}"
                     f"{r['in_process_rows_per_s']:>12.0f}"
                     f"{r['rows_per_s'] / r['in_process_rows_per_s']:>7.2f}"
                     f"{r['model_only_rows_per_s']:>12.0f}"
                     f"{r['rows_per_s'] / r['model_only_rows_per_s']:>7.2f}  "
                     f"{r['errors'] or '-'}")
    lines.append("in-process = census.predict's path with the model loaded (to_tensors + "
                 "signature, sequential); model only = the signature on ready tensors")
    one = next(r for r in results if r["rows"] == 1 and r["clients"] == 8)
    best = max(r["rows_per_s"] / r["in_process_rows_per_s"] for r in results if r["rows"] == 100)
    lines.append(f"1-row requests, 8 clients: p99 {one['p99_ms']:.1f} ms (target <= 20 ms)"
                 f"  {'OK' if one['p99_ms'] <= 20 else 'MISSED'}")
    lines.append(f"100-row requests: best throughput {best:.2f} x in-process (target >= 0.5)"
                 f"  {'OK' if best >= 0.5 else 'MISSED'}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-base-path", help="JOB_DIR/export/census (default: train one)")
    p.add_argument("--seconds", type=float, default=2.0, help="per load run")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--http", default="auto", help="the server's HTTP parser (census serve --http)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="census-bench-") as tmp:
        base_path = args.model_base_path or small_model(tmp)
        results = run(base_path, args.seconds, http=args.http)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
