"""Batch prediction on Vertex AI: today's `gcloud ml-engine jobs submit prediction`.

    2017 (Cloud ML Engine, the census sample)     today (Vertex AI)
    (the model version deployed in chapter 9)     model = Model.upload(artifact_uri=gs://…/<ts>/)
    gcloud ml-engine jobs submit prediction JOB   job = model.batch_predict(
      --model census --version v1                   job_display_name=…,
      --data-format TEXT                            instances_format="jsonl",
      --input-paths gs://…/census.json              gcs_source=gs://…/census.json,
      --output-path $GCS_JOB_DIR/predictions        gcs_destination_prefix=gs://…/predictions,
      --region us-central1                          machine_type=…, starting_replica_count=1,
      (--max-worker-count 10, --batch-size 64)      max_replica_count=1, batch_size=64)
    prediction.results-* in --output-path         a new folder per job:
                                                  job.output_info.gcs_output_directory
                                                  model.delete()

The model needs no endpoint: the job starts its own machines and stops them when it ends. In
2017 the service chose how many workers, up to `--max-worker-count` (default 10), and fed
TensorFlow `--batch-size` records at a time (default 64; https://cloud.google.com/sdk/gcloud/
reference/ml-engine/jobs/submit/prediction). Today the job starts `starting_replica_count`
machines of `machine_type`, may be scaled up to `max_replica_count`, and sends a replica
`batch_size` instances at a time (default 64; the SDK's docstring of Model.batch_predict).

No gcloud command creates a batch prediction job: `gcloud ai` has no `batch-prediction-jobs`
group (Cloud SDK 528.0.0, every release track). The SDK's call is the REST call `POST
https://REGION-aiplatform.googleapis.com/v1/projects/PROJECT/locations/REGION/
batchPredictionJobs` with the job as its JSON body, which `describe` prints as curl
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs/create).

What a job writes, and where that is known from (Google's pages and its SDK disagree):
- A new folder per job, `<gcs_destination_prefix>/prediction-<model display name>-<create
  time>`, named in `job.output_info.gcs_output_directory`. The SDK's docstring and the REST
  reference of OutputConfig.gcs_destination write the time `YYYY-MM-DDThh:mm:ss.sssZ`; the
  folders of real jobs read `2021_08_17T01_39_36_439Z`, `2025_03_25T06_28_43_123Z` (found in
  public code with the `search` tool; both from AutoML tabular models), the form the same
  reference gives for a job's BigQuery dataset (`YYYY_MM_DDThh_mm_ss_sssZ`). We follow the
  real folders (census.batch.layout.folder_name).
- Results: `prediction.results-00000-of-00001`, … (`.csv` added for csv output): the names in
  public code reading real jobs' folders (custom containers and AutoML alike) and, as the
  issue quotes it, in Google's page for custom-trained models
  (https://cloud.google.com/vertex-ai/docs/predictions/get-batch-predictions; the stored copies
  we could read stop before its output section). The SDK's docstring and the REST reference say
  `predictions_0001.<extension>`: we found no real job's folder with that name. Each JSON line
  is the instance as sent and the model's answer for it, `{"instance": {…}, "prediction": …}`
  (PredictionResult, "a line of JSONL in the batch prediction output file",
  https://docs.cloud.google.com/gemini-enterprise-agent-platform/reference/rest/Shared.Types/PredictionResult;
  `key` instead of `instance` when instanceConfig.keyField is set).
- Errors: `prediction.errors_stats-00000-of-00001`, written even when empty (the SDK's
  end-to-end test against the service, tests/system/aiplatform/test_e2e_tabular.py in
  googleapis/python-aiplatform: "always 2 files … 1 with errors, 1 with predictions"). For a
  custom-trained model a line is an aggregate, the repr of a Python tuple of a message and the
  number of instances it failed: `('Post request fails. Cannot get predictions. Error: Exceeded
  retries: Non-OK result 504 (upstream request timeout) from server, retry=3,
  elapsed=600.04s.', 16)` (Vertex AI's troubleshooting page,
  https://cloud.google.com/vertex-ai/docs/general/troubleshooting, "Exceeded retries error";
  the same form read from a real job's bucket in
  https://github.com/googleapis/python-aiplatform/issues/2666). The per-instance error lines of
  the SDK's docstring (`errors_0001.<ext>`: the instance and an `error` google.rpc.Status of
  code and message) and of PredictionResult (`"error": {"status", "message"}`) we found in no
  custom-model job's output. So the files do not say which instance failed:
  `job.completion_stats` counts the successful, failed and incomplete ones.

Everything here needs a Google Cloud project: without one, `run` says so and does nothing. The
tests point the real SDK at a local recorder of the Vertex REST API and check what it sends.
"""
import json

from census.serving import vertex as serving  # its init, upload and defaults

# Vertex AI's input formats for a batch prediction job from Cloud Storage (BigQuery aside).
INSTANCES_FORMATS = ("jsonl", "csv", "tf-record", "tf-record-gzip", "file-list")
PREDICTIONS_FORMAT = "jsonl"  # {"instance", "prediction"} lines: what the course reads back
BATCH_SIZE = 64  # instances per request to a replica: the default, in 2017 and today
BODY_PATH = "batch_prediction_job.json"


def uris(gcs_source):
    """One gs:// URI or several, as a list (the SDK takes a str or a list, not a tuple)."""
    return [gcs_source] if isinstance(gcs_source, str) else list(gcs_source)


def batch_predict(model, gcs_source, gcs_destination_prefix, instances_format="jsonl",
                  machine_type=serving.DEFAULT_MACHINE_TYPE, starting_replica_count=1,
                  max_replica_count=1, batch_size=BATCH_SIZE, job_display_name="census-batch"):
    """Run a batch prediction job of `model` (an `aiplatform.Model`) on `gcs_source` (a gs://
    URI, or a list of them, in `instances_format`) and wait for it to end; returns the SDK's
    BatchPredictionJob. Raises RuntimeError if the job fails (the SDK's)."""
    return model.batch_predict(
        job_display_name=job_display_name, gcs_source=uris(gcs_source),
        instances_format=instances_format, gcs_destination_prefix=gcs_destination_prefix,
        predictions_format=PREDICTIONS_FORMAT, machine_type=machine_type,
        starting_replica_count=starting_replica_count, max_replica_count=max_replica_count,
        batch_size=batch_size, sync=True)


def request_body(model_name, gcs_source, gcs_destination_prefix, instances_format="jsonl",
                 machine_type=serving.DEFAULT_MACHINE_TYPE, starting_replica_count=1,
                 max_replica_count=1, batch_size=BATCH_SIZE, job_display_name="census-batch"):
    """The BatchPredictionJob that `batch_predict` creates, as the REST API's JSON body
    (`model_name`: `projects/P/locations/L/models/ID@VERSION`)."""
    return {"displayName": job_display_name, "model": model_name,
            "inputConfig": {"instancesFormat": instances_format,
                            "gcsSource": {"uris": uris(gcs_source)}},
            "outputConfig": {"predictionsFormat": PREDICTIONS_FORMAT,
                             "gcsDestination": {"outputUriPrefix": gcs_destination_prefix}},
            "dedicatedResources": {"machineSpec": {"machineType": machine_type},
                                   "startingReplicaCount": starting_replica_count,
                                   "maxReplicaCount": max_replica_count},
            "manualBatchTuningParameters": {"batchSize": batch_size}}


def rest_command(model_name, body_path=BODY_PATH):
    """The curl command that creates the job from its JSON body in `body_path`, in the
    model's project and region."""
    parent = model_name.split("/models/")[0]  # projects/P/locations/L
    location = parent.rsplit("/", 1)[-1]
    return (f'curl -X POST -H "Authorization: Bearer $(gcloud auth print-access-token)" '
            f'-H "Content-Type: application/json; charset=utf-8" -d @{body_path} '
            f'"https://{location}-aiplatform.googleapis.com/v1/{parent}/batchPredictionJobs"')


def describe(model, gcs_source, gcs_destination_prefix, body_path=BODY_PATH, **options):
    """What `batch_predict` sends, as a JSON file and the curl command that posts it (no
    gcloud command creates batch prediction jobs). `model`: an `aiplatform.Model` or its
    resource name with version; `options`: `batch_predict`'s."""
    name = model if isinstance(model, str) else model.versioned_resource_name
    body = request_body(name, gcs_source, gcs_destination_prefix, **options)
    return f"# {body_path}\n{json.dumps(body, indent=2)}\n\n{rest_command(name, body_path)}"


def check_request(artifact_uri, body):
    """Raise ValueError naming what Vertex AI would refuse in a job's `request_body`, before
    anything is created: Cloud Storage locations, the input format, the replica counts."""
    sources = body["inputConfig"]["gcsSource"]["uris"]
    prefix = body["outputConfig"]["gcsDestination"]["outputUriPrefix"]
    if not sources:
        raise ValueError("gcs_source names no file")
    for name, uri in [("artifact_uri", artifact_uri), *[("gcs_source", s) for s in sources],
                      ("gcs_destination_prefix", prefix)]:
        if not str(uri).startswith("gs://"):
            raise ValueError(f"Vertex AI batch prediction reads and writes Cloud Storage: "
                             f"{name} must be gs://…, not {uri!r}")
    instances_format = body["inputConfig"]["instancesFormat"]
    if instances_format not in INSTANCES_FORMATS:
        raise ValueError(f"instances_format must be one of {', '.join(INSTANCES_FORMATS)}, "
                         f"not {instances_format!r}")
    resources = body["dedicatedResources"]
    starting, most = resources["startingReplicaCount"], resources["maxReplicaCount"]
    if not 1 <= starting <= most:
        raise ValueError(f"replica counts must satisfy 1 <= starting_replica_count "
                         f"({starting}) <= max_replica_count ({most})")


def run(artifact_uri, gcs_source, gcs_destination_prefix, project=None,
        location=serving.DEFAULT_LOCATION, credentials=None, api_endpoint=None, api_transport=None,
        image_uri=serving.PREDICTION_IMAGE, display_name="census", keep=False, **options):
    """Upload the export at `artifact_uri` (gs://…/<timestamp>/), run a batch prediction job on
    `gcs_source` into a new folder under `gcs_destination_prefix`, delete the model (unless
    `keep`). `options`: `batch_predict`'s. Returns {"model", "job", "output_directory",
    "completion_stats"}. Guarded: with no project (the argument, or $GOOGLE_CLOUD_PROJECT when
    it is None) it prints why it skips and returns None. Raises ValueError for an argument
    Vertex AI would refuse, RuntimeError if the job fails."""
    project = serving.project_or_skip(project, "Vertex AI batch prediction")
    if not project:
        return None
    check_request(artifact_uri, request_body("", gcs_source, gcs_destination_prefix, **options))
    serving.init(project, location, credentials, api_endpoint, api_transport)
    model = None
    try:
        model = serving.upload(artifact_uri, display_name, image_uri)
        job = batch_predict(model, gcs_source, gcs_destination_prefix, **options)
        stats = job.completion_stats
        return {"model": model.resource_name, "job": job.resource_name,
                "output_directory": job.output_info.gcs_output_directory,
                "completion_stats": {"successful": stats.successful_count,
                                     "failed": stats.failed_count,
                                     "incomplete": stats.incomplete_count}}
    finally:
        if model is not None and not keep:
            model.delete(sync=True)
