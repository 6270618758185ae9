"""Checks for the classroom exercises (`exercises/`, `solutions/`).

Each check takes the learner's answer (usually a function), tries it on the real data or a
real model, and prints a one-line confirmation — or raises `CheckFailed`, which says in plain
words what is wrong and gives a hint, without a traceback. Hints lead before they tell: the
first points at the idea, and each time the same problem comes back the next one is more
precise, the last one giving the fix:

    from census.course import checks
    checks.check_frame_input_fn(frame_input_fn, train)

One module per chapter's topic, each listing its checks in `__all__`; every check is named
here too.
"""
from census.course.checks.batch import check_predict_csv_rows, check_refusals
from census.course.checks.cluster import (
                                       check_replica_role,
                                       check_tf_config,
                                       check_worker_pool_specs,
)
from census.course.checks.core import CheckFailed, NotAnswered, reset_hints
from census.course.checks.data import check_income_rate_by, check_read_raw, check_split_validation
from census.course.checks.export import (
                                       check_best_exporter,
                                       check_csv_features,
                                       check_input_exprs,
                                       check_least_sure,
                                       check_probability_over_50k,
                                       check_to_example,
)
from census.course.checks.inputs import check_balanced_input_fn, check_frame_input_fn
from census.course.checks.model import check_compare_cross, check_deep_model, check_predict_people
from census.course.checks.serving import (
                                       check_predict_frame,
                                       check_predict_with_retries,
                                       check_retire,
)
from census.course.checks.training import check_eval_spec, check_train_spec, check_train_with_keras
from census.course.checks.tuning import check_final_score, check_run_study, check_study_spec

__all__ = [
    "CheckFailed", "NotAnswered", "reset_hints",
    # chapter 1: the data
    "check_read_raw", "check_income_rate_by", "check_split_validation",
    # chapter 2: the model
    "check_deep_model", "check_predict_people", "check_compare_cross",
    # chapter 3: input pipelines
    "check_frame_input_fn", "check_balanced_input_fn",
    # chapter 4: specs and training
    "check_train_spec", "check_eval_spec", "check_train_with_keras",
    # chapters 5 and 6: exports, and using them
    "check_csv_features", "check_to_example", "check_best_exporter",
    "check_probability_over_50k", "check_input_exprs", "check_least_sure",
    # chapter 7: clusters
    "check_tf_config", "check_replica_role", "check_worker_pool_specs",
    # chapter 8: tuning
    "check_study_spec", "check_run_study", "check_final_score",
    # chapter 9: serving
    "check_predict_with_retries", "check_predict_frame", "check_retire",
    # chapter 10: batch prediction
    "check_refusals", "check_predict_csv_rows",
]
