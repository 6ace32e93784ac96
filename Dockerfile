# The official Airflow 3 image with slf-warehouse installed: used by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11

USER root
# HarfBuzz subsetting keeps WeasyPrint's embedded fonts small; DejaVu carries æ, ø, å.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.lock pyproject.toml README.md /opt/slf/
COPY --chown=airflow:root src /opt/slf/src
# requirements.lock has the FAB auth manager, the Celery and PostgreSQL providers and dbt-postgres.
RUN pip install --no-cache-dir -r /opt/slf/requirements.lock \
 && pip install --no-cache-dir --no-deps -e /opt/slf

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root dbt_project /opt/slf/dbt_project
COPY --chown=airflow:root expectations /opt/slf/expectations
COPY --chown=airflow:root inquiries /opt/slf/inquiries
COPY --chown=airflow:root report_templates /opt/slf/report_templates
ENV SLF_PROJECT_DIR=/opt/slf
