"""Reading what a cluster wrote: `census cluster` prefixes every line with its task's role
(`[chief-0] …`, `[cluster] …` for the launcher's own lines). Chapter 7 prints those lines task
by task (`show_by_role`) and draws them on a time axis (`events`, for
`census.plots.task_timeline`).
"""
import os
import re

from census import quiet

ROLE = re.compile(r"\[([^\]]+)\] ?(.*)")

# What the timeline marks: (a pattern on the whole line, its label). The first group of the
# "started" pattern is the task that was started (the launcher wrote the line).
EVENTS = (
    (r"\[cluster\] started (\S+)", "started"),
    (r"\[(worker|ps)-\d+\] .*until stopped", "serving"),
    (r"\[chief-0\] Epoch \d+/", "interval starts"),
    (r"\[chief-0\] .*val_loss", "interval ends: chief evaluated"),
    (r"\[evaluator-0\] evaluated ckpt", "evaluator: checkpoint evaluated"),
    (r"\[cluster\] chief exit status", "all tasks stopped"),
)


def by_role(lines):
    """{role: [its lines, without the prefix]}, in the order the roles first wrote; a line
    without a prefix goes to "?"."""
    roles = {}
    for line in lines:
        role, text = ROLE.match(line).groups() if line.startswith("[") else ("?", line)
        roles.setdefault(role, []).append(text)
    return roles


def show_by_role(lines, width=160):
    """Print a cluster's output task by task: TensorFlow's start-up notes counted, not shown
    (`quiet.STARTUP_NOTES`); a line repeated in a row shown once with its count; every other
    line printed, cut at `width` characters, with this machine's home and working folders
    left out of paths."""
    home, here = os.path.expanduser("~"), os.getcwd() + os.sep
    for role, texts in by_role(lines).items():
        notes = sum(bool(quiet.STARTUP_NOTES.search(t)) for t in texts)
        print(f"--- {role}: {len(texts)} lines, {notes} of them TensorFlow start-up notes")
        said = [t for t in texts if t.strip() and not quiet.STARTUP_NOTES.search(t)]
        i = 0
        while i < len(said):
            same = 1
            while i + same < len(said) and said[i + same] == said[i]:
                same += 1
            text = said[i].replace(here, "").replace(home, "~")
            text = text if len(text) <= width else text[:width] + " …"
            print(f"    {text}" + (f"   (×{same})" if same > 1 else ""))
            i += same


def events(stamped, marks=EVENTS):
    """A DataFrame for `census.plots.task_timeline`: one row per line of `stamped` (pairs of
    seconds since the launch, float, and the line), with `seconds`, `role` ("launcher" for
    the launcher's own lines; for a "started" line, the task started) and `event` (the label
    of the last pattern of `marks` the line matches, else "")."""
    import pandas as pd
    rows = []
    for seconds, line in stamped:
        role = ROLE.match(line)[1] if line.startswith("[") else "cluster"
        event = ""
        for pattern, label in marks:
            if found := re.match(pattern, line):
                event = label
                role = found[1] if label == "started" else role
        rows.append({"seconds": seconds, "role": "launcher" if role == "cluster" else role,
                     "event": event})
    return pd.DataFrame(rows, columns=["seconds", "role", "event"])
