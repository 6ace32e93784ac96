# slf-warehouse's image for docker-compose.yml: Airflow 3, dbt, Great Expectations and WeasyPrint at
# exactly the versions of requirements.lock (the ones the tests ran), on Debian 12 (bookworm).
#
# BASE_IMAGE is any Debian 12 image: python:3.11-slim-bookworm by default (docs/deploy.md says why
# not apache/airflow), or one made from Debian's packages where no registry is reachable
# (docker/make-base-image.sh; tests/test_docker_compose.py builds on that).
# Behind a TLS-inspecting proxy, give pip the CA bundle as a build secret; it is mounted for the one
# RUN that needs it and is in no layer:
#   DOCKER_BUILDKIT=1 docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Pango/HarfBuzz (WeasyPrint; the subsetter keeps embedded fonts small), DejaVu (æ, ø, å), curl (the
# api-server's health check), tini (PID 1: passes `docker compose stop`'s SIGTERM on, reaps task
# processes). Debian's python3 only where the base has none (the slim image brings its own).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
        $(command -v python3 >/dev/null || echo python3 python3-venv) \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The dependencies in a layer of their own: a source change does not reinstall them.
COPY requirements.lock /opt/slf/requirements.lock
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && pip install --no-cache-dir -r /opt/slf/requirements.lock "setuptools>=68" wheel

COPY pyproject.toml README.md /opt/slf/
COPY src /opt/slf/src
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e /opt/slf

# The dbt manifest the DAG files read (Cosmos' DBT_MANIFEST load mode never runs `dbt ls` while
# parsing); made here because .dockerignore keeps a checkout's target/ out.
COPY dbt_project /opt/slf/dbt_project
RUN cd /opt/slf/dbt_project \
 && SLF_WAREHOUSE_PATH=/tmp/parse-only.duckdb dbt parse --profiles-dir . --quiet \
 && rm -rf logs /tmp/parse-only.duckdb
COPY expectations /opt/slf/expectations
COPY inquiries /opt/slf/inquiries
COPY report_templates /opt/slf/report_templates
COPY dags /opt/airflow/dags

# Compose runs the containers as AIRFLOW_UID:0 (the host user, so files in the output folder are
# theirs): any uid in group 0 may write Airflow's home, its logs volume and HOME, as in Airflow's
# own image. The image itself stays read-only to it. Such a uid has no /etc/passwd entry: Airflow asks
# for the user name through getpass, which takes it from LOGNAME/USER first (no writable /etc/passwd).
RUN useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
 && mkdir -p /opt/airflow/logs \
 && chown 50000:0 /opt/airflow /opt/airflow/logs && chown -R 50000:0 /home/airflow \
 && chmod g=u /opt/airflow /opt/airflow/logs && chmod -R g=u /home/airflow
ENV AIRFLOW_HOME=/opt/airflow HOME=/home/airflow LOGNAME=airflow USER=airflow SLF_PROJECT_DIR=/opt/slf \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags
USER 50000:0
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "slf_warehouse.cli", "--help"]
