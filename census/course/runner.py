"""The chapters run with papermill (`census course run`: `make course`, `make outputs`), and
the outputs that are committed, scrubbed of what a run leaves behind.
"""
import json
import time

from census.course.chapters import MODEL_CHAPTER, NAMES, RESULTS_FILE, parameters
from census.course.environment import root

def execute(name, output_path, params, log_output=False):
    """Run one chapter with papermill (kernel started in notebooks/, as Jupyter would)."""
    import papermill
    return papermill.execute_notebook(
        str(root() / "notebooks" / f"{name}.ipynb"), str(output_path), parameters=params,
        cwd=str(root() / "notebooks"), kernel_name="python3", progress_bar=False, log_output=log_output)


def run(smoke=False, build_dir="build/course", job_root="jobs", chapters=NAMES, log_output=False):
    """Execute chapters in order into build_dir; return {chapter: seconds}."""
    out = root() / build_dir
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for name in chapters:
        start = time.perf_counter()
        print(f"[course] {name} ({'smoke' if smoke else 'full'}) ...", flush=True)
        execute(name, out / f"{name}.ipynb", parameters(name, smoke, job_root), log_output)
        seconds[name] = time.perf_counter() - start
        print(f"[course] {name} done in {seconds[name]:.0f} s", flush=True)
    return seconds


def summary(seconds, build_dir="build/course", job_root="jobs"):
    """A few lines: time per chapter, chapter 4's test-split metrics, the export path."""
    lines = ["", "Course summary", "--------------"]
    width = max(map(len, [*seconds, "total"]))
    lines += [f"  {name:<{width}} {s:6.0f} s" for name, s in seconds.items()]
    lines.append(f"  {'total':<{width}} {sum(seconds.values()):6.0f} s")
    results = root() / job_root / MODEL_CHAPTER / RESULTS_FILE
    if results.is_file():
        r = json.loads(results.read_text())
        m, b = r["wide_and_deep"], r["lightgbm"]
        lines.append(f"  test split, wide & deep: accuracy {m['accuracy']:.4f}  AUC {m['auc']:.4f}"
                     f"  ({m['global_step']} steps)")
        lines.append(f"  test split, LightGBM:    accuracy {b['accuracy']:.4f}  AUC {b['auc']:.4f}")
        lines.append(f"  export: {r['export']}")
    lines.append(f"  executed notebooks: {build_dir}/")
    return "\n".join(lines)


KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def scrub(nb):
    """Keep what a reader needs, drop what a run leaves behind: papermill's and nbclient's
    metadata and timings, the injected-parameters cell; execution counts renumbered 1, 2, …"""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEPT_NOTEBOOK_METADATA}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    count = 0
    for cell in cells:
        cell.metadata = {"tags": cell.metadata["tags"]} if cell.metadata.get("tags") else {}
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
    nb.cells = cells
    return nb


def write_outputs(job_root="jobs", build_dir="build/outputs", chapters=NAMES):
    """Full run of each chapter, in order; each executed notebook, scrubbed, replaces its source
    as soon as it has run (a failing chapter stops the run and keeps its committed outputs)."""
    import nbformat
    seconds = {}
    for name in chapters:
        seconds.update(run(smoke=False, build_dir=build_dir, job_root=job_root, chapters=[name]))
        nb = nbformat.read(root() / build_dir / f"{name}.ipynb", as_version=4)
        nbformat.write(scrub(nb), root() / "notebooks" / f"{name}.ipynb")
    return seconds
