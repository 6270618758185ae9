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


def rows_per_second(results, title=None):
    """Horizontal bars of a pipeline comparison: a DataFrame with `variant` and `rows_per_s`."""
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * len(results)), dpi=80)
    bars = ax.barh(results["variant"], results["rows_per_s"], color="#4c72b0")
    for bar, value in zip(bars, results["rows_per_s"]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:,.0f}",
                va="center")
    ax.invert_yaxis()
    ax.set_xlabel("rows per second (higher is better)")
    ax.set_xlim(0, results["rows_per_s"].max() * 1.25)
    if title:
        ax.set_title(title)
    return _done(fig)


def training_curves(metrics):
    """Loss, accuracy and AUC per evaluation, training vs evaluation data.

    `metrics` is eval/metrics.csv as a DataFrame (Keras CSVLogger: epoch, loss, val_loss, …);
    `steps_per_eval` in its attrs, if set, turns evaluation numbers into training steps.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3), dpi=80)
    steps = (metrics["epoch"] + 1) * metrics.attrs.get("steps_per_eval", 1)
    for ax, name in zip(axes, ("loss", "accuracy", "auc")):
        ax.plot(steps, metrics[name], marker="o", label="training batches")
        ax.plot(steps, metrics[f"val_{name}"], marker="o", label="evaluation (test split)")
        ax.set_title(name)
        ax.set_xlabel("training step" if "steps_per_eval" in metrics.attrs else "evaluation")
    axes[0].legend()
    return _done(fig)


