"""census: the 2017 `train_and_evaluate` census example, on TensorFlow 2.21 + tf-keras.

What the chapters teach, one module each:

    schema      the data's facts: columns, types, vocabularies, labels, ranges      chapter 1
    data        the UCI files fetched, verified, cleaned, described                  chapter 1
    model       the wide & deep model, preprocessing inside                          chapter 2
    inputs      the tf.data input pipeline (`input_fn`)                               chapter 3
    pipelines   input pipelines compared, from a Python loop to sharded tf.data       chapter 3
    training    TrainSpec, EvalSpec, train_and_evaluate: plain tf-keras, packaged    chapter 4
    baseline    a LightGBM baseline on the same split                                 chapter 4
    metrics     the exact AUC every comparison reports (keras's is approximate)       chapter 4
    signature   the serving signature: formats, input names, output keys             chapter 5
    export      the SavedModel with the 2017 signature; the exporters                 chapter 5
    instances   what a prediction takes, read and checked, for each export format     chapter 6
    predict     local prediction (`gcloud ml-engine local predict`, today)            chapter 6
    config      the trainer's typed configuration (`TrainConfig`): flags, defaults, checks
    task        the trainer (`census train`, `python -m census.task`, `task.run(config)`)
    plots       the chapters' figures

Around them: `distribute` (TF_CONFIG, strategies, local clusters, Vertex AI jobs: chapter
7), `tuning` (chapter 8), `serving` (chapter 9), `course` (the chapters' set-up and helpers,
the exercises and their checks), `museum` (the appendix: the 2017 Estimator trainer itself,
which runs only in TensorFlow 2.15); and `cli` (the `census` command), `flags` (typed options:
a dataclass's fields as flags, checked one way), `processes` (child processes: free ports,
stopping), `quiet` (library noise, not errors).
"""
import os

# The name pip knows the course by (`pip show census-course`). The import and the command stay
# `census`; PyPI's distribution `census` is another project (a US Census Bureau API client).
DISTRIBUTION = "census-course"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer C++ log lines (`quiet` drops the rest)
