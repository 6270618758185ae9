"""The course's figures, one function each; every function returns a matplotlib Figure.

Figures are closed before they are returned, so a notebook cell that ends with the call shows
each figure exactly once (as the cell's result), and no figure stays in pyplot's memory.
"""
import matplotlib.pyplot as plt

from census.schema import CLASSES, HIGH, LABEL_COLUMN

LABEL_COLORS = dict(zip(CLASSES, ("#4c72b0", "#dd8452")))


def _done(fig):
    fig.tight_layout()
    plt.close(fig)
    return fig


def label_balance(frames):
    """Bars: rows per label in each split. `frames` maps a split name to its DataFrame."""
    fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
    names = list(frames)
    bottom = [0] * len(names)
    for label, color in LABEL_COLORS.items():
        counts = [int((frames[n][LABEL_COLUMN] == label).sum()) for n in names]
        bars = ax.barh(names, counts, left=bottom, color=color, label=label)
        for bar, count, total in zip(bars, counts, [len(frames[n]) for n in names]):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2,
                    f"{count:,} ({count / total:.0%})", ha="center", va="center", color="white")
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xlabel("rows")
    ax.set_title(f"Label balance: about one person in four earns {HIGH}")
    ax.legend(loc="lower right")
    return _done(fig)


def distributions_by_label(frame, columns=("age", "hours_per_week", "capital_gain")):
    """One histogram per numeric column, the two labels overlaid (density, so both show)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3), dpi=80)
    for ax, column in zip(axes, columns):
        values = frame[column]
        log = column.startswith("capital")
        for label, color in LABEL_COLORS.items():
            v = values[frame[LABEL_COLUMN] == label]
            if log:  # mostly zeros and a long tail: show the non-zero values on a log scale
                v = v[v > 0]
                ax.set_xscale("log")
                bins = [10 ** (i / 8) for i in range(8, 41)]
            else:
                bins = 30
            ax.hist(v, bins=bins, density=True, alpha=0.6, color=color, label=label)
        ax.set_title(f"{column}{' (non-zero only)' if log else ''}")
        ax.set_yticks([])
    axes[0].legend()
    return _done(fig)


def layer_sizes(configs):
    """Hidden-layer widths per configuration: `configs` maps a legend label to a size list."""
    fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
    for label, sizes in configs.items():
        ax.plot(range(1, len(sizes) + 1), sizes, marker="o", label=label)
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("units")
    ax.set_title("max(2, int(FIRST_LAYER_SIZE * SCALE_FACTOR**i))")
    ax.legend(fontsize="small")
    return _done(fig)


def training_curves(metrics):
    """Loss, accuracy and AUC (keras's: 200 thresholds, approximate) per evaluation: on the
    training batches, and on the evaluation data (the validation split, in every run of the
    course).

    `metrics` is eval/metrics.csv as a DataFrame (Keras CSVLogger: epoch, loss, val_loss, …);
    `steps_per_eval` in its attrs, if set, turns evaluation numbers into training steps.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3), dpi=80)
    steps = (metrics["epoch"] + 1) * metrics.attrs.get("steps_per_eval", 1)
    titles = {"loss": "loss", "accuracy": "accuracy", "auc": "AUC (keras, 200 thresholds)"}
    for ax, (name, title) in zip(axes, titles.items()):
        ax.plot(steps, metrics[name], marker="o", label="training batches")
        ax.plot(steps, metrics[f"val_{name}"], marker="o", label="evaluation (validation split)")
        ax.set_title(title)
        ax.set_xlabel("training step" if "steps_per_eval" in metrics.attrs else "evaluation")
    axes[0].legend()
    return _done(fig)




def speedups(tables, title="Rows per second, as a multiple of the Python loop's"):
    """One panel per measurement: horizontal bars of each variant's `vs_python` (a DataFrame
    of `census.pipelines.compare`), a line at 1 (as fast as the Python loop), whose rows per
    second the panel's title gives. `tables` maps a panel title to its DataFrame."""
    fig, axes = plt.subplots(len(tables), 1, dpi=72, squeeze=False, sharex=True, figsize=(
        7, 0.6 + sum(0.45 + 0.26 * len(t) for t in tables.values())),
        gridspec_kw={"height_ratios": [len(t) for t in tables.values()]})
    top = max(t["vs_python"].max() for t in tables.values())
    for ax, (name, table) in zip(axes[:, 0], tables.items()):
        python = table.loc[table["variant"] == "Python loop", "rows_per_s"]
        colors = ["#999999" if v == "Python loop" else "#4c72b0" for v in table["variant"]]
        bars = ax.barh(table["variant"], table["vs_python"], color=colors)
        for bar, ratio in zip(bars, table["vs_python"]):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {ratio:.2f}×",
                    va="center", fontsize="small")
        ax.axvline(1, color="black", linewidth=0.8)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.25)
        ax.set_title(name + (f" (1 = {python.iloc[0]:,.0f} rows/s)" if len(python) else ""),
                     fontsize="medium", loc="left")
    axes[-1, 0].set_xlabel("× the Python loop's rows per second (higher is better)")
    fig.suptitle(title)
    return _done(fig)


def step_timeline(timelines, seconds=None):
    """What a training loop did, step by step: per variant, one lane where orange is waiting
    for the next batch and blue is the (simulated) training step. `timelines` maps a variant
    to a DataFrame of `census.pipelines.timeline`; `seconds` cuts the time axis."""
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.6 * len(timelines)), dpi=80)
    for lane, steps in enumerate(timelines.values()):
        ax.broken_barh(list(zip(steps["wait_start"], steps["wait"])), (lane - 0.35, 0.7),
                       color="#dd8452", edgecolor="white", linewidth=0.5,
                       label="waiting for a batch" if lane == 0 else None)
        ax.broken_barh(list(zip(steps["step_start"], steps["step"])), (lane - 0.35, 0.7),
                       color="#4c72b0", edgecolor="white", linewidth=0.5,
                       label="training step" if lane == 0 else None)
    ax.set_yticks(range(len(timelines)), list(timelines))
    ax.invert_yaxis()
    end = max((s["step_start"] + s["step"]).max() for s in timelines.values())
    ax.set_xlim(0, min(end, seconds) if seconds else end)
    ax.set_xlabel("seconds")
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=2, frameon=False,
              fontsize="small")
    ax.set_title("Step by step", loc="left")
    return _done(fig)


def task_timeline(events, title=None):
    """One row per task of a cluster, time along x: a thin tick for every line the task wrote,
    and a marker for each line that says something (its `event` label). `events` is a
    DataFrame with `seconds` (since the launch), `role` (e.g. "chief-0") and `event` (a short
    label, or "" for an ordinary line)."""
    roles = list(dict.fromkeys(events["role"]))
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.45 * len(roles)), dpi=80)
    y = {role: i for i, role in enumerate(roles)}
    ax.scatter(events["seconds"], events["role"].map(y), marker="|", s=60, color="#bbbbbb",
               label="a log line")
    marked = events[events["event"] != ""]
    markers = ("o", "s", "D", "^", "v", "P", "X")
    for (label, group), marker in zip(marked.groupby("event", sort=False), markers):
        ax.scatter(group["seconds"], group["role"].map(y), marker=marker, s=40, label=label,
                   zorder=3)
    ax.set_yticks(range(len(roles)), roles)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the launch")
    ax.set_title(title or "What each task wrote, and when")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return _done(fig)


def trial_metric(results, params, metric="accuracy", baseline=None, baseline_label=None):
    """A tuning study: the metric trial by trial (and the best so far), then against each
    parameter in `params`; each point labelled with its trial id. `results` has `trial`, the
    parameters and `metric` (failed trials: NaN, left out). `baseline`: a horizontal line
    (e.g. the share a model that always answers the majority class gets)."""
    ok = results.dropna(subset=[metric])
    fig, axes = plt.subplots(1, 1 + len(params), figsize=(3.3 * (1 + len(params)), 3),
                             dpi=80, sharey=True)
    axes[0].plot(ok["trial"], ok[metric], "o-", label="trial")
    axes[0].plot(ok["trial"], ok[metric].cummax(), "--", label="best so far")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel(metric)
    for ax, name in zip(axes[1:], params):
        ax.scatter(ok[name], ok[metric])
        for _, row in ok.iterrows():
            ax.annotate(str(int(row["trial"])), (row[name], row[metric]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(name)
    if baseline is not None:
        for ax in axes:
            ax.axhline(baseline, color="grey", linestyle=":",
                       label=baseline_label if ax is axes[0] else None)
    axes[0].legend(fontsize="small")
    return _done(fig)
