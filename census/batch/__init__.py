"""Batch prediction (chapter 10): `local` (the local batch job, `census predict
--output-dir`), `layout` (the folder it and Vertex AI write, read back and scored), `vertex`
(Model.batch_predict on Vertex AI)."""
