"""The appendix: the 2017 trainer, kept as it was — an exhibit, not part of the course's
machinery — and what sets it beside today's.

`model` and `task` redo GoogleCloudPlatform/cloudml-samples' census Estimator trainer
(census/estimator/trainer/, as of December 2017 to January 2018), the code behind Google's
2017 `train_and_evaluate` post: feature columns, a canned `DNNLinearCombinedClassifier`,
`tf.estimator.train_and_evaluate`, a `FinalExporter`. They need `tf.estimator`, which TF 2.16
removed, so they run only in the 2017 environment (`make museum`: Python 3.11,
`requirements-2017.txt`, TensorFlow 2.15.1); the course's own venv (TF 2.21) never imports
them, and they import nothing of the course but `census.schema`.

    python -m census.museum.task --train-files train.csv --eval-files validation.csv \\
        --job-dir JOB_DIR --train-steps 1000

`listings` (saved_model_cli listings read and compared, the post's quoted) and `exports` (two
exports run and scored in one TensorFlow) run in either environment.
"""
