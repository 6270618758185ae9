# The course's training image: the trainer of chapter 7 as a Vertex AI custom container.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/census/trainer:0.1.0 .
#   docker run --rm -v "$PWD/out:/out" IMAGE --train-steps 100 --job-dir /out/job
#   docker run --rm --entrypoint census IMAGE serve --help          # the same image serving
#
# Every replica of a job runs the ENTRYPOINT with the job's arguments; Vertex AI tells it its
# role (CLUSTER_SPEC, TF_CONFIG) and where to write (AIP_MODEL_DIR, AIP_CHECKPOINT_DIR, …).
# No prebuilt Vertex AI training image has TensorFlow 2.21 (the newest, TF 2.17, reached its end
# of availability on 2026-07-11), so the course builds its own.
#
# Build arguments:
#   BASE_IMAGE  any image with Python 3.11-3.13 and its venv module.
#   TENSORFLOW  "tensorflow" (CPU), or "tensorflow[and-cuda]" for GPU pools: TensorFlow 2.21's
#               CUDA 12 and cuDNN 9 libraries as PyPI wheels; the machine gives the NVIDIA driver.
ARG BASE_IMAGE=python:3.12-slim

# The package as a wheel, built from this folder (setuptools, from the index or the wheelhouse).
FROM ${BASE_IMAGE} AS wheel
COPY pyproject.toml README.md LICENSE /src/
COPY census /src/census
RUN python3 -m venv /build/venv \
 && /build/venv/bin/pip wheel --quiet --no-cache-dir --no-deps --wheel-dir /dist /src

# Its runtime dependencies only, at requirements.txt's exact versions (a constraints file:
# it pins what the wheel asks for and installs nothing else), in a virtual environment: a
# Debian python3 is "externally managed" (PEP 668), and the same lines work on any base.
FROM ${BASE_IMAGE}
ARG TENSORFLOW=tensorflow
COPY requirements.txt /build/requirements.txt
COPY --from=wheel /dist /build/dist
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --no-cache-dir --use-pep517 \
        --constraint /build/requirements.txt "${TENSORFLOW}" /build/dist/*.whl \
 && rm -r /build
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
ENTRYPOINT ["python", "-m", "census.task"]
