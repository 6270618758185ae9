"""Shared pytest fixtures."""
import os
import shutil
from pathlib import Path

import pytest

import course_data

DATA_NOTES = []  # where the session's data came from, one line each, shown in the summary


def pytest_terminal_summary(terminalreporter):
    for line in DATA_NOTES:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def uci_dir():
    """A folder holding UCI's original adult.data / adult.test, byte for byte (never copied into
    the repo), for the tests that read their exact bytes: `course_data.uci_folder()`."""
    folder, how = course_data.or_fail(course_data.uci_folder, "the tests")
    DATA_NOTES.append(f"UCI's original files: {how}")
    return folder


@pytest.fixture(scope="session")
def raw_dir():
    """A folder holding the raw pair (UCI's files or the bucket's copies), for the tests that
    only need clean rows: `course_data.raw_folder()`, as `census.data.fetch()` finds them."""
    folder, how = course_data.or_fail(course_data.raw_folder, "the tests")
    DATA_NOTES.append(f"census data: {how}")
    return folder


BACKGROUND = ("smoke_run", "graded")  # long runs: started with the session, read at its end


def pytest_collection_modifyitems(items):
    """The tests that read a background run go last: it runs beside all the others."""
    items.sort(key=lambda item: any(name in item.fixturenames for name in BACKGROUND))


@pytest.fixture(scope="session", autouse=True)
def background_runs_started(request):
    """Start each background run at the session's first test, if a selected test reads it."""
    for name in BACKGROUND:
        if any(name in item.fixturenames for item in request.session.items):
            request.getfixturevalue(name)


@pytest.fixture(scope="session")
def background():
    """The background runs' workers, half the machine's cores (one on two): the runs queue for
    them in BACKGROUND's order, and the other half is the tests'. Each run keeps a core busy
    (a notebook's kernel), so that more at once would only slow the tests down."""
    from concurrent.futures import ThreadPoolExecutor
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")  # (Linux's)
             else os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max(1, cores // 2))
    yield pool
    pool.shutdown(cancel_futures=True)  # (a run not started yet is not started at the end)


@pytest.fixture(scope="session")
def smoke_run(uci_dir, tmp_path_factory, background):
    """The chapters' one smoke run (tests/smoke.py), in a subprocess, queued for `background`;
    `smoke_run()` waits for it and returns {notebook name: failure text or ""}."""
    import smoke
    cache, started = tmp_path_factory.mktemp("smoke-cache"), []

    def run():
        started.append(smoke.start(uci_dir, cache))
        return smoke.results(started[-1])
    done = background.submit(run)
    yield lambda: done.result(timeout=3600)
    done.cancel()
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture(scope="session")
def graded(raw_dir, tmp_path_factory, background):
    """Every solution and exercise notebook in smoke mode, graded as `census exercises grade`
    grades them, one at a time, queued for `background`; `graded()` waits for it and returns
    {(folder name, chapter): census.course.exercises.Result}."""
    from census.course import exercises
    shutil.rmtree(REPO / "jobs" / "test-grading", ignore_errors=True)  # no earlier run's state
    env = {"CENSUS_DATA_DIR": str(raw_dir),
           "CENSUS_CACHE_DIR": str(tmp_path_factory.mktemp("grading-cache"))}
    run = background.submit(exercises.grade, [exercises.solutions(), exercises.exercises_dir()],
                            smoke=True, job_root="jobs/test-grading",
                            out_dir="build/test-grading", echo=lambda line: None, env=env)
    yield lambda: {(r.student, r.chapter): r for r in run.result(timeout=3600)}
    run.cancel()


REPO = Path(__file__).resolve().parents[1]
SMOKE_STEPS = 300  # enough for a model that beats the majority class


@pytest.fixture(scope="session")
def census_files(raw_dir, tmp_path_factory):
    """The cleaned train/validation/test files (clean rows: any raw pair will do), fetched into
    a fresh cache."""
    from census import data
    return data.fetch(raw_dir, tmp_path_factory.mktemp("cache"), progress=False)


@pytest.fixture(scope="session")
def trained_job(census_files, tmp_path_factory):
    """One short real training run with a final JSON export; returns (job_dir, metrics)."""
    from census import task
    from census.config import TrainConfig
    job_dir = tmp_path_factory.mktemp("job")
    return job_dir, task.run(TrainConfig(
        job_dir=job_dir, train_files=census_files.train, eval_files=census_files.validation,
        train_steps=SMOKE_STEPS, eval_every_steps=150, verbosity="ERROR"))


@pytest.fixture(scope="session")
def export_dir(trained_job):
    """The final export's version directory."""
    job_dir, metrics = trained_job
    return Path(metrics["exports"][-1])


@pytest.fixture(scope="session")
def trained_model(trained_job):
    """A Keras model with the trained weights (rebuilt from the last checkpoint)."""
    import tensorflow as tf

    from census import model
    job_dir, _ = trained_job
    m = model.build_model()
    m.load_weights(tf.train.latest_checkpoint(str(job_dir / "checkpoints"))).expect_partial()
    return m


@pytest.fixture(scope="session")
def exports(trained_model, tmp_path_factory):
    """{format: export base directory} of the trained model in each format (one version)."""
    from census import export, signature
    base = tmp_path_factory.mktemp("exports")
    for fmt in signature.FORMATS:
        export.export_model(trained_model, str(base / fmt / "census"), fmt)
    return {fmt: base / fmt / "census" for fmt in signature.FORMATS}


def run_census(*args, env=None, timeout=300):
    """Run the real `census` command line in a subprocess; returns CompletedProcess."""
    import subprocess
    import sys
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "census", *map(str, args)], cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fresh_aiplatform():
    """aiplatform.init changes process-wide settings: undo them after the test."""
    from google.cloud.aiplatform import initializer
    saved = dict(vars(initializer.global_config))
    yield
    vars(initializer.global_config).clear()
    vars(initializer.global_config).update(saved)


def fails(check, *args, **kwargs):
    """The CheckFailed a census.course.checks check raises on a wrong answer (a test failure if it
    passes): its `.problem` and `.hint` are what the learner reads."""
    from census.course import checks
    with pytest.raises(checks.CheckFailed) as error:
        check(*args, **kwargs)
    return error.value


def told(error):
    """The hint that tells the fix: the last of a failure's hints (the first only leads)."""
    return error.hints[-1]


def leads_then_tells(error, fix):
    """The fix is in the last hint and not yet in the first: the hints lead before they tell."""
    return fix in told(error) and fix not in error.hints[0]
