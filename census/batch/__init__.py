"""Batch prediction (chapter 10): the local batch job, and the same export on Vertex AI.

    vertex   a Vertex AI BatchPredictionJob (Model.upload, Model.batch_predict), as SDK code
             and as the REST call that creates it
"""
