"""Hyperparameter tuning (chapter 8): the 2017 study, run locally with Optuna and on Vertex AI.

    study    a study config (2017's `trainingInput.hyperparameters`, or Vertex's `studySpec`),
             checked against the trainer, and how a trial's values are drawn
    local    `census tune`: every trial the unchanged trainer in a subprocess, with Optuna
    vertex   the same study as a Vertex AI HyperparameterTuningJob
"""
