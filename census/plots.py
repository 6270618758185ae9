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
    """Bars of equal length, one per split, cut by label: each label's share of the split's
    rows (%). `frames` maps a split name to its DataFrame; the row counts are in the tick
    labels."""
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=80)
    names = [f"{name}\n{len(frame):,} rows" for name, frame in frames.items()]
    left = [0.0] * len(frames)
    for label, color in LABEL_COLORS.items():
        shares = [100 * float((frame[LABEL_COLUMN] == label).mean()) for frame in frames.values()]
        ax.barh(names, shares, left=left, color=color, label=label)
        for y, (start, share) in enumerate(zip(left, shares)):
            ax.text(start + share / 2, y, f"{share:.1f}%", ha="center", va="center",
                    color="white")
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("share of the split's rows (%)")
    ax.set_title(f"About one person in four earns {HIGH}, in every split", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return _done(fig)


UNITS = {"age": "age (years)", "hours_per_week": "hours worked per week",
         "capital_gain": "capital gain (US dollars, log scale)"}
CAP = 99_999  # capital_gain's largest value, far above the next (41,310): marked


def distributions_by_label(frame, columns=("age", "hours_per_week", "capital_gain")):
    """One histogram per numeric column, the two labels overlaid, each as the share of its
    own label's people per bin (%), so that the smaller group shows as clearly as the larger.
    Money columns: the non-zero values only, on a log axis; capital_gain's largest value
    (99,999, far above the rest) is marked with its count and its share of HIGH."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3.2), dpi=80)
    for ax, column in zip(axes, columns):
        log = column.startswith("capital")
        bins = [10 ** (i / 8) for i in range(8, 41)] if log else 30
        capped = frame.loc[frame[column] == CAP, LABEL_COLUMN] if log else []
        for label, color in LABEL_COLORS.items():
            values = frame.loc[frame[LABEL_COLUMN] == label, column]
            if log:  # mostly zeros and a long tail: the non-zero values on a log scale
                values = values[values > 0]
            heights, edges, _ = ax.hist(values, bins=bins, weights=[100 / len(values)] *
                                        len(values), alpha=0.6, color=color, label=label)
            if len(capped) and label == HIGH:
                spike = heights[max(i for i, edge in enumerate(edges[:-1]) if edge <= CAP)]
                ax.annotate(f"{len(capped)} people at {CAP:,}, the largest\nvalue: "
                            f"{(capped == HIGH).mean():.0%} of them earn {HIGH}", (CAP, spike),
                            xytext=(0.03, 0.95), textcoords="axes fraction", va="top",
                            fontsize="small", arrowprops={"arrowstyle": "->", "color": "0.3"})
        if log:
            ax.set_xscale("log")
        ax.set_title(column + (" (non-zero only)" if log else ""))
        ax.set_xlabel(UNITS.get(column, column))
    axes[0].set_ylabel("share of the label's people (%)")
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


def training_curves(metrics, panels=("loss", "auc")):
    """Per evaluation, one panel per metric: on the training batches (dashed: the mean over
    the batches since the previous evaluation, dropout on) and on the validation split
    (solid: the model at the end of the interval, dropout off); the lowest validation loss
    circled.

    `metrics` is eval/metrics.csv as a DataFrame (Keras CSVLogger: epoch, loss, val_loss, …);
    `steps_per_eval` in its attrs, if set, turns evaluation numbers into training steps.
    `panels`: CSVLogger's column names.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.4), dpi=80)
    steps = (metrics["epoch"] + 1) * metrics.attrs.get("steps_per_eval", 1)
    titles = {"loss": "loss (binary cross-entropy)", "accuracy": "accuracy",
              "auc": "AUC (keras: 200 thresholds)"}
    for ax, name in zip(axes, panels):
        ax.plot(steps, metrics[name], "--", color="#4c72b0", alpha=0.8,
                label="training batches")
        ax.plot(steps, metrics[f"val_{name}"], "-", color="#4c72b0", label="validation split")
        ax.set_title(titles.get(name, name))
        ax.set_xlabel("training step" if "steps_per_eval" in metrics.attrs else "evaluation")
    best = metrics["val_loss"].idxmin()
    axes[list(panels).index("loss")].plot(steps[best], metrics["val_loss"][best], "o",
                                          mfc="none", color="#4c72b0", markersize=9,
                                          label="lowest validation loss")
    axes[0].legend(fontsize="small", loc="lower left", bbox_to_anchor=(0, 1.1), ncol=3,
                   frameon=False)
    return _done(fig)


def speedups(tables, title="Rows per second, as a multiple of the Python loop's"):
    """One panel per measurement: horizontal bars of each variant's `vs_python` (a DataFrame
    of `census.pipelines.compare`), a line at 1 (as fast as the Python loop), whose rows per
    second the panel's title gives. `tables` maps a panel title to its DataFrame."""
    fig, axes = plt.subplots(len(tables), 1, dpi=72, squeeze=False, sharex=True, figsize=(
        8.5, 0.6 + sum(0.45 + 0.26 * len(t) for t in tables.values())),
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
    parameter in `params`, each trial in its own colour throughout (the legend names them).
    `results` has `trial`, the parameters and `metric` (failed trials: NaN, left out).
    `baseline`: a horizontal line (e.g. the share a model that always answers the majority
    class gets)."""
    ok = results.dropna(subset=[metric])
    fig, axes = plt.subplots(1, 1 + len(params), figsize=(3.3 * (1 + len(params)), 3.3),
                             dpi=80, sharey=True)
    axes[0].plot(ok["trial"], ok[metric].cummax(), "--", color="grey", label="best so far")
    colors = plt.get_cmap("tab10")
    for i, (_, row) in enumerate(ok.iterrows()):
        for ax, x in zip(axes, [row["trial"], *(row[name] for name in params)]):
            ax.plot(x, row[metric], "o", color=colors(i % 10),
                    label=f"trial {int(row['trial'])}" if ax is axes[0] else None)
    axes[0].set_xlabel("trial")
    axes[0].set_xticks(ok["trial"].astype(int).tolist())
    axes[0].set_ylabel(metric)
    for ax, name in zip(axes[1:], params):
        ax.set_xlabel(name)
    if baseline is not None:
        for ax in axes:
            ax.axhline(baseline, color="grey", linestyle=":",
                       label=baseline_label if ax is axes[0] else None)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize="small", loc="lower center",
               ncol=min(6, len(ok) + 2), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.12 + 0.07 * ((len(ok) + 1) // 6), 1, 1))
    plt.close(fig)
    return fig


def unreadable(fig):
    """What a reader cannot read in `fig`: a list of sentences, one per drawn text that runs
    off the figure or overlaps another text (or a legend it is not part of); [] if none.
    Boxes are each text's `get_window_extent`, in display pixels, from one draw at the
    figure's own size and dpi (matplotlib's text API:
    https://matplotlib.org/stable/api/text_api.html)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.legend import Legend
    canvas = fig.canvas
    renderer = FigureCanvasAgg(fig).get_renderer()  # a closed figure has no canvas to draw on
    fig.set_canvas(canvas)  # (the figure keeps its own)
    drawn, draw_text = {}, renderer.draw_text

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn[id(mtext)] = mtext
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
    renderer.draw_text = record  # only what is drawn: not tick labels beyond an axis's limits
    fig.draw(renderer)
    texts = [(t, t.get_window_extent(renderer)) for t in drawn.values()]
    legends = [legend for legend in fig.findobj(Legend) if legend.get_visible()]
    frame, problems = fig.bbox.padded(1), []
    for t, box in texts:
        if not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)):
            problems.append(f"{t.get_text()!r} runs off the figure")
    for i, (t, box) in enumerate(texts):
        for u, other in texts[i + 1:]:
            if box.padded(-1).overlaps(other.padded(-1)):
                problems.append(f"{t.get_text()!r} overlaps {u.get_text()!r}")
        for legend in legends:
            inside = any(t is x for x in legend.get_texts()) or t is legend.get_title()
            if not inside and box.padded(-1).overlaps(legend.get_window_extent(renderer)):
                problems.append(f"{t.get_text()!r} is under the legend")
    return problems


def check_shown_figures(log_path):
    """From now on, check every figure as it is rendered for display (Jupyter's inline
    backend, `plt.show()`, a cell ending in a Figure) with `unreadable`, and append one JSON
    line per figure, {"title": …, "problems": […]}, to `log_path`: the course's test run and
    `make outputs` ask for it (`census.course.environment.CHECK_FIGURES`)."""
    import json

    from matplotlib.backend_bases import FigureCanvasBase
    print_figure = FigureCanvasBase.print_figure
    if getattr(print_figure, "checks_figures", False):
        return

    def checked(canvas, *args, **kwargs):
        fig = canvas.figure
        titles = [fig.get_suptitle()] + [ax.get_title(loc) for ax in fig.axes
                                         for loc in ("center", "left")]
        line = {"title": next((t for t in titles if t), ""), "problems": unreadable(fig)}
        with open(log_path, "a") as log:
            log.write(json.dumps(line) + "\n")
        return print_figure(canvas, *args, **kwargs)
    checked.checks_figures = True
    FigureCanvasBase.print_figure = checked
