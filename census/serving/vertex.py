"""Online prediction on Vertex AI: today's `gcloud ml-engine models create` / `versions create` /
`predict`, through the google-cloud-aiplatform SDK.

    2017 (Cloud ML Engine)                       today (Vertex AI)
    gcloud ml-engine models create census        Model.upload(artifact_uri=gs://…/<ts>/, image)
    gcloud ml-engine versions create v1 …        Endpoint.create() + model.deploy(endpoint, …)
    gcloud ml-engine predict --model census …    endpoint.predict(instances=[…])
    gcloud ml-engine versions create v2 …        Model.upload(parent_model=…) + deploy beside
                                                 v1 with a share of the traffic (`roll_out`)
    gcloud ml-engine versions set-default v2     the `default` alias, all traffic (`promote`)
    gcloud ml-engine versions delete v1          endpoint.undeploy_all(); endpoint.delete()
                                                 model.delete() (every version)

Autoscaling: in 2017 online prediction scaled its nodes with traffic, down to zero after a few
idle minutes unless a minimum was set (the 2017 post). A Vertex AI deployed model runs
between `min_replica_count`, at least 1, and `max_replica_count` replicas, scaled on CPU use
(60% by default); scaling to zero when idle (`min_replica_count=0` with an idle scale-down
period) is a Preview feature (cloud.google.com/vertex-ai/docs/predictions/autoscaling). The
course deploys on 1 to 2 replicas.

Everything here needs a Google Cloud project: without one, `run` says so and does nothing (the
course's notebooks pass `PROJECT = ""`). The tests point the real SDK at a local recorder of the
Vertex REST API (`aiplatform.init(api_endpoint="http://127.0.0.1:P", api_transport="rest",
credentials=AnonymousCredentials())`) and check the requests it sends.

The artifacts must be in Cloud Storage (`gs://BUCKET/…/export/census/<timestamp>/`). The
prebuilt TensorFlow image below is the newest there is (TF 2.15; available until 2027-01-14 on
cloud.google.com/vertex-ai/docs/predictions/pre-built-containers): the course's export,
written by TF 2.21, loads and predicts in TF 2.15.1 (rehearsals/test_prebuilt_image.py); a
model with newer ops would not. The lasting way is a custom container: the course's image
running `census serve --host 0.0.0.0`, which honours AIP_HTTP_PORT / AIP_PREDICT_ROUTE /
AIP_HEALTH_ROUTE and copies the Model's artifacts from AIP_STORAGE_URI (rehearsed in
rehearsals/test_images.py).
"""
import os

PREDICTION_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
DEFAULT_LOCATION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-2"


def project_or_skip(project, what):
    """The Google Cloud project to use: `project`, or $GOOGLE_CLOUD_PROJECT when it is None.
    Without one, prints that `what` is skipped and why, and returns None."""
    if project is None:
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        print(f"{what} skipped: no Google Cloud project given (set PROJECT, or "
              f"$GOOGLE_CLOUD_PROJECT, and log in with `gcloud auth application-default login`).")
        return None
    return project


def init(project, location=DEFAULT_LOCATION, credentials=None, api_endpoint=None,
         api_transport=None):
    """`aiplatform.init` with the course's settings (endpoint and transport for the tests)."""
    from google.cloud import aiplatform
    kwargs = {"project": project, "location": location}
    if credentials is not None:
        kwargs["credentials"] = credentials
    if api_endpoint:
        kwargs["api_endpoint"] = api_endpoint
    if api_transport:
        kwargs["api_transport"] = api_transport
    aiplatform.init(**kwargs)
    return aiplatform


def stage_export(version_dir, gcs_uri):
    """Copy a local export version into Cloud Storage (`gs://BUCKET/…/<timestamp>/`), where
    Model.upload reads it; returns the gs:// URI. TensorFlow's file system speaks gs://."""
    from census import export
    base, _, version = str(gcs_uri).rstrip("/").rpartition("/")
    return export.publish(version_dir, base, version)


REPLICAS = (1, 2)  # (min_replica_count, max_replica_count) of a deployed model


def upload(artifact_uri, display_name="census", image_uri=PREDICTION_IMAGE, parent_model=None,
           version_aliases=(), is_default_version=True):
    """Register the SavedModel directory as a Model, or as the next version of
    `parent_model` (a Model's resource name: the 2017 `versions create`); the new version
    holds `version_aliases` (and `default` when `is_default_version`; a model's first
    version always does). Returns the aiplatform.Model of that version."""
    from google.cloud import aiplatform
    return aiplatform.Model.upload(display_name=display_name, artifact_uri=artifact_uri,
                                   serving_container_image_uri=image_uri,
                                   parent_model=parent_model,
                                   version_aliases=list(version_aliases) or None,
                                   is_default_version=is_default_version, sync=True)


def deploy(model, endpoint=None, display_name="census", machine_type=DEFAULT_MACHINE_TYPE,
           traffic_percentage=100, replicas=REPLICAS):
    """Deploy `model` (a version) to `endpoint` (a new one if None) on `replicas` (min, max)
    machines, with `traffic_percentage` of the endpoint's traffic (the models already there
    share the rest in proportion); returns the endpoint."""
    from google.cloud import aiplatform
    endpoint = endpoint or aiplatform.Endpoint.create(display_name=display_name, sync=True)
    model.deploy(endpoint=endpoint, machine_type=machine_type, min_replica_count=replicas[0],
                 max_replica_count=replicas[1], traffic_percentage=traffic_percentage,
                 sync=True)
    return endpoint


def roll_out(model, artifact_uri, endpoint, traffic_percentage=20, image_uri=PREDICTION_IMAGE,
             machine_type=DEFAULT_MACHINE_TYPE):
    """Upload `artifact_uri` as the next version of `model`, aliased `candidate` (`default`
    stays where it is), and deploy it on `endpoint` beside what serves there with
    `traffic_percentage` of the traffic: a canary. Returns the new version."""
    version = upload(artifact_uri, model.display_name, image_uri, model.resource_name,
                     version_aliases=["candidate"], is_default_version=False)
    deploy(version, endpoint, machine_type=machine_type, traffic_percentage=traffic_percentage)
    return version


def promote(endpoint, model, version_id):
    """Make version `version_id` of `model` the one that answers (the 2017 `versions
    set-default`): it takes the `default` alias and all of `endpoint`'s traffic, and every
    other deployed model is undeployed. Raises ValueError if that version is not deployed
    on `endpoint`."""
    deployed = {d.id: d.model_version_id for d in endpoint.list_models()}
    mine = [i for i, v in deployed.items() if v == str(version_id)]
    if not mine:
        raise ValueError(f"version {version_id} is not deployed on {endpoint.resource_name}")
    model.versioning_registry.add_version_aliases(["default"], version=str(version_id))
    endpoint.update(traffic_split={mine[0]: 100})
    for other in deployed.keys() - {mine[0]}:
        endpoint.undeploy(other)


def predict(endpoint, instances):
    """The same instances as `census predict`; returns (predictions, deployed_model_id)."""
    result = endpoint.predict(instances=instances)
    return list(result.predictions), result.deployed_model_id


def clean_up(model=None, endpoint=None):
    """Undeploy everything from the endpoint, delete it, delete the model (nothing keeps
    billing after the chapter)."""
    if endpoint is not None:
        endpoint.undeploy_all(sync=True)
        endpoint.delete(sync=True)
    if model is not None:
        model.delete(sync=True)


def run(artifact_uri, instances, project=None, location=DEFAULT_LOCATION, credentials=None,
        api_endpoint=None, api_transport=None, image_uri=PREDICTION_IMAGE,
        machine_type=DEFAULT_MACHINE_TYPE, display_name="census", keep=False):
    """Upload, deploy, predict and clean up. Guarded: with no project (the argument, or
    $GOOGLE_CLOUD_PROJECT when it is None) it prints why it skips and returns None."""
    project = project_or_skip(project, "Vertex AI deployment")
    if not project:
        return None
    if not str(artifact_uri).startswith("gs://"):
        raise ValueError(f"Vertex AI reads models from Cloud Storage: artifact_uri must be "
                         f"gs://…, not {artifact_uri!r}")
    init(project, location, credentials, api_endpoint, api_transport)
    model = endpoint = None
    try:
        model = upload(artifact_uri, display_name, image_uri)
        endpoint = deploy(model, display_name=display_name, machine_type=machine_type)
        predictions, deployed_model_id = predict(endpoint, instances)
        return {"model": model.resource_name, "endpoint": endpoint.resource_name,
                "deployed_model_id": deployed_model_id, "predictions": predictions}
    finally:
        if not keep:
            clean_up(model, endpoint)
