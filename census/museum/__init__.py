"""The 2017 trainer, kept as it was: an exhibit, not a part of the course's machinery.

`model` and `task` redo GoogleCloudPlatform/cloudml-samples' census Estimator trainer
(census/estimator/trainer/, as of December 2017 to January 2018), the code behind Google's
2017 `train_and_evaluate` post: feature columns, a canned `DNNLinearCombinedClassifier`,
`tf.estimator.train_and_evaluate`, a `FinalExporter`. They need `tf.estimator`, which TF 2.16
removed, so they run only in a separate Python 3.11 venv with tensorflow-cpu==2.15.1
(rehearsals/tf215-requirements.txt). The course's own venv (TF 2.21) never imports this
package, and this package imports nothing of the course but `census.schema`.

    python -m census.museum.task --train-files train.csv --eval-files validation.csv \\
        --job-dir JOB_DIR --train-steps 1000
"""
