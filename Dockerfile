# The service image (README "Container"). Two stages: the builder installs the locked
# dependencies (requirements/runtime.lock, every file checked against its hash) and the package
# into a virtual environment; the final stage is the slim Python image with that environment,
# tini as PID 1 and a non-root user, and no compiler.
#
# With WEGENT_DATABASE_URL (and WEGENT_JWT_SECRET, WEGENT_SECRET_KEY of at least 32 bytes) it
# serves over that PostgreSQL; without it, it runs the embedded PostgreSQL in the data volume
# and says so at start. deploy/compose.yaml runs replicas behind a load balancer.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Compilers, for a dependency without a wheel for the build platform: this stage only. Debian
# package versions are not pinned (DL3008): the archive drops a version when its security update
# lands, so a pin stops building; the base image's tag fixes the release (bookworm).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/wegent
COPY requirements/runtime.lock /tmp/runtime.lock
RUN /opt/wegent/bin/pip install --require-hashes --no-deps -r /tmp/runtime.lock
COPY . /src
# The service needs neither pip nor setuptools at run time (the base image keeps its own pip).
RUN /opt/wegent/bin/pip install --no-deps /src \
    && /opt/wegent/bin/python -m pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
# tini reaps what the embedded PostgreSQL leaves to PID 1 and forwards signals to the service.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/wegent --create-home \
        --shell /usr/sbin/nologin wegent
COPY --from=builder /opt/wegent /opt/wegent
ENV PATH=/opt/wegent/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WEGENT_HOST=0.0.0.0 \
    WEGENT_PORT=8000 \
    WEGENT_DATA_DIR=/var/lib/wegent
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /var/lib/wegent
# The embedded database (pgdata/) and the generated secrets (secrets/) when no URL is given.
VOLUME ["/var/lib/wegent"]
EXPOSE 8000
# Ready: the database answers and the server is not draining (503 from SIGTERM on). The start
# period covers the first start of the embedded database (initdb) and the migrations.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('WEGENT_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["wegent", "serve"]
