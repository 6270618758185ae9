"""The chapters, in one list, and the repository they live in: the course map, the badges,
each chapter's papermill parameters.
"""
import dataclasses

REPO_URL = "https://github.com/census-course/census-course"  # the only copy of the URL


REPO_VARIABLE = "CENSUS_COURSE_REPO"  # a fork or mirror to clone on Colab instead


BRANCH = "main"


@dataclasses.dataclass(frozen=True)
class Chapter:
    """One chapter: its file name, title, one line for the course map, and what its setup cell
    installs on Colab."""
    name: str  # file stem in notebooks/, solutions/, exercises/
    title: str
    summary: str  # one line for the course map
    colab_extras: tuple = ()  # what its setup cell installs on Colab beside the package
    colab_ready: bool = True  # a badge, and a place in the Colab rehearsal
    kernel: str = "python3"  # the Jupyter kernel it runs in


CHAPTERS = (
    Chapter("01_data", "The Census Income data",
            "Download the data (Cloud Storage, UCI fallback), read its columns, clean it, "
            "plot it; hold out a validation split and keep the test split for the end."),
    Chapter("02_estimator", "The wide & deep model",
            "From `DNNLinearCombinedClassifier` and feature columns to a wide & deep model "
            "written in plain tf-keras, preprocessing layers inside; `FeatureSpace`."),
    Chapter("03_datasets", "Feeding the model with tf.data",
            "`input_fn`: shuffle, repeat, batch, parse; interleave, parallel parsing and "
            "prefetch on a larger, sharded copy, measured against a Python feed."),
    Chapter("04_specs", "TrainSpec, EvalSpec, train_and_evaluate",
            "`strategy.scope()` and `model.fit` with four callbacks, then the same as one "
            "`train_and_evaluate` call; training and validation curves, a model memorising, "
            "TensorBoard, the test split once, LightGBM."),
    Chapter("05_export", "Serving inputs and exporters",
            "A serving function written with `ExportArchive`; JSON, CSV and tf.Example "
            "receivers; Final, Latest and Best exporters (Best keeping an earlier, better "
            "model); the export tree."),
    Chapter("06_saved_model_cli", "Inspecting and using the SavedModel",
            "`saved_model_cli show` / `run`, `census predict` on test.json, "
            "`tf.saved_model.load`."),
    Chapter("07_cloud_training", "The same code on a cluster, and on Vertex AI",
            "Parameter-server training in plain TensorFlow, run as real processes; the trainer "
            "unchanged as chief, workers, ps and a SidecarEvaluator; every role's log; what "
            "Vertex AI tells a replica (CLUSTER_SPEC, AIP_* directories); the CustomJob of the "
            "course's own image in plain SDK code and gcloud; one replica's logs.",
            colab_extras=("colab",)),
    Chapter("08_hyperparameter_tuning",
            "Hyperparameter tuning: the 2017 study, locally and on Vertex AI",
            "`hptuning_config.yaml` as a Vertex studySpec; reverse log scale in plain Optuna; "
            "`census tune` on the validation split; trials that only answer <=50K; the best "
            "trial scored once on the test split; the HyperparameterTuningJob in plain SDK "
            "code and gcloud.",
            colab_extras=("colab",)),
    Chapter("09_online_prediction",
            "Online prediction: a model server, versions, and Vertex AI endpoints",
            "`census serve` (TF Serving's REST API), what carries over to a Vertex AI endpoint, "
            "versions, load; Model.upload / deploy / predict in plain SDK code.",
            colab_extras=("colab",)),
    Chapter("10_batch_prediction",
            "Batch prediction: the test split as a job, locally and on Vertex AI",
            "`census predict --output-dir`: the test split as JSON lines through the export, "
            "Vertex AI's output layout read back and scored; refused instances in the errors "
            "files; the 2017 `jobs submit prediction` beside `Model.batch_predict`.",
            colab_extras=("colab",)),
)


# After the chapters: the 2017 code itself, run in an environment of its own (TensorFlow 2.15,
# Python 3.11: `census.course.museum`); no exercises, not on Colab (Python 3.13 there).
APPENDIX = Chapter(
    "appendix_2017_code", "Appendix: the 2017 code, run",
    "The post's own Estimator trainer in TensorFlow 2.15 (`make museum`), trained on the same "
    "splits; its `saved_model_cli` listing beside the post's and today's; test.json through "
    "both exports; today's `census predict` and `census serve` on the 2017 export; each 2017 "
    "line mapped to the chapter that teaches today's form.",
    colab_ready=False, kernel="census-2017")


NAMES = tuple(chapter.name for chapter in CHAPTERS)  # the chapters: exercises, Colab, smoke run


ALL_NAMES = (*NAMES, APPENDIX.name)  # what `make course` and `make outputs` run


BY_NAME = {chapter.name: chapter for chapter in (*CHAPTERS, APPENDIX)}


MODEL_CHAPTER = "04_specs"  # later chapters reuse its export when it exists


MODEL_CHAPTER_USERS = ("06_saved_model_cli", "10_batch_prediction",  # they take MODEL_DIR
                       APPENDIX.name)


RESULTS_FILE = "results.json"  # chapter 4 writes its metrics here, in its job dir


COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(name, folder="notebooks"):
    """The Colab URL that opens notebook `name` of `folder` from the repository on GitHub."""
    owner_repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/{folder}/{name}.ipynb"


def badge(name, folder="notebooks"):
    """The markdown of an 'Open in Colab' badge: a chapter's, or its exercises' or solutions'."""
    return f"[![Open In Colab]({COLAB_BADGE})]({colab_url(name, folder)})"


def course_map():
    """The README's table of chapters: number, chapter, one line, badge, exercises; the
    appendix last, as "A"."""
    lines = ["| # | Chapter | What you do | Colab | Practice |", "|---|---|---|---|---|"]
    for n, chapter in [*enumerate(CHAPTERS, 1), ("A", APPENDIX)]:
        name = chapter.name
        practice = (f"[exercises](exercises/{name}.ipynb), [solutions](solutions/{name}.ipynb)"
                    if name in NAMES else "—")
        colab = badge(name) if chapter.colab_ready else "— (needs Python 3.11)"
        lines.append(f"| {n} | [{chapter.title}](notebooks/{name}.ipynb) | {chapter.summary} | "
                     f"{colab} | {practice} |")
    return "\n".join(lines)


def parameters(name, smoke=False, job_root=None):
    """The papermill parameters of one chapter: the smoke switch and, with a `job_root`, its
    job dir(s) under it (absolute: a chapter takes a relative path from the folder its kernel
    starts in). Without one, the chapter's own defaults: jobs/<chapter> in the course's folder."""
    if job_root is None:
        return {"QUICK": smoke}
    params = {"QUICK": smoke, "JOB_DIR": f"{job_root}/{name}"}
    if name in MODEL_CHAPTER_USERS:
        params["MODEL_DIR"] = f"{job_root}/{MODEL_CHAPTER}/export/census"
    return params
