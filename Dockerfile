# syntax=docker/dockerfile:1
# warmserve: one image for every role, chosen by the command (see README "Deploying"):
#
#   python -m model_backend serve                      standalone backend (the default command)
#   python -m model_backend serve --connect tcp://B:5577   a worker behind a broker
#   python -m model_backend broker                     the broker
#   python -m dashboard serve                          a dashboard replica
#   python -m dashboard jobs-worker                    the Celery worker for background jobs (with WARMSERVE_DASH_REDIS)
#
# Build:   docker build -t warmserve:cpu .                              (tensorflow-cpu; LiteRT serves on CPU)
#          docker build --build-arg VARIANT=gpu -t warmserve:gpu .      (TensorFlow's CUDA wheels: tensorflow[and-cuda];
#                                                                       on a GPU, --runtime auto serves through TensorFlow)
# Settings come from WARMSERVE_* environment variables (README "Configuration"); logs go to the container's
# output; SIGTERM stops every role within 2 s, but the jobs worker: it gives running monolith runs
# WARMSERVE_DASH_JOBS_STOP_GRACE_S (default 20 s), then stops them and exits within a few seconds more.
#
# There is no HEALTHCHECK here: what "healthy" means depends on the role (a backend answers `ping`, a worker
# only its metrics port, a dashboard GET /api/v1/health), so deploy/compose.yaml and deploy/k8s/ set one per role.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG VARIANT=cpu

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WARMSERVE_CACHE_DIR=/opt/warmserve/cache \
    WARMSERVE_DASH_DATA_DIR=/data
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# tini as PID 1: passes SIGTERM on to the role and reaps the monolith's child processes.
# Not pinned: Debian's stable archive only ships security fixes, and an old pin would stop building.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 warmserve \
    && useradd --system --uid 10001 --gid warmserve --home-dir /home/warmserve --create-home warmserve
WORKDIR /app
# The code reads assets/ (example photos for the LiteRT verification, the dashboard's CSS) next to its
# packages, so the source tree stays here and is installed editable.
COPY pyproject.toml README.md ./
COPY model_backend ./model_backend
COPY dashboard ./dashboard
COPY assets ./assets
COPY deploy/healthcheck.py ./deploy/healthcheck.py

FROM base AS deps-cpu
RUN pip install -e .

FROM base AS deps-gpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The project asks for tensorflow-cpu on x86_64; swap it for the same version of TensorFlow with its CUDA wheels.
RUN pip install -e . \
    && version="$(pip show tensorflow-cpu tensorflow 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)" \
    && pip uninstall -y tensorflow-cpu \
    && pip install "tensorflow[and-cuda]==${version}"

# hadolint ignore=DL3006
FROM deps-${VARIANT} AS runtime
# /data: the dashboard's DATA_DIR; /keys, /config: mount points for CURVE keys and the users file (owned by the
# app user, so a fresh named volume there is writable by it: deploy/compose.yaml makes the keys in one)
RUN mkdir -p /opt/warmserve/cache /data /keys /config \
    && chown warmserve:warmserve /opt/warmserve/cache /data /keys /config
USER 10001:10001
# Convert the default model once now (Keras weights from the packaged checkpoint, then the verified LiteRT
# model), so a container serves within seconds of its start instead of converting first.
RUN python -c "from model_backend.settings import ModelSettings; from model_backend.models.runtimes import load_classifier; \
c = load_classifier(ModelSettings()); print('cache filled:', c.runtime, '-', c.runtime_reason)"
EXPOSE 5576 5577 8050 9105 9106
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "model_backend", "serve"]
