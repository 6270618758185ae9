"""Batch prediction (chapter 10): `local` (the local batch job, `census predict
--output-dir`), `batches` (one batch: read, checked, predicted, written), `layout` (the
folder a job writes, read back and scored, the local job's and Vertex AI's alike), `vertex`
(Model.batch_predict on Vertex AI)."""
