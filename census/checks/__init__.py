"""Checks for the classroom exercises (`exercises/`, `solutions/`).

Each check takes the learner's answer (usually a function), tries it on the real data or a
real model, and prints a one-line confirmation — or raises `CheckFailed`, which says in plain
words what is wrong and gives a hint, without a traceback:

    from census import checks
    checks.check_input_fn(input_fn)

One module per chapter's topic; each lists its checks in `__all__`, and all of them are
available here.
"""
from census.checks import cluster, data, export, inputs, model, serving, training, tuning
from census.checks.core import CheckFailed, NotAnswered

TOPICS = (data, model, inputs, training, export, cluster, tuning, serving)  # chapters 1–9
globals().update({name: getattr(topic, name) for topic in TOPICS for name in topic.__all__})
__all__ = ["CheckFailed", "NotAnswered", *(name for topic in TOPICS for name in topic.__all__)]
