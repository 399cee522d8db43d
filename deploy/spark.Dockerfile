# The Spark image of docker-compose.yml's scale-out profile: a standalone master or worker,
# started with the launcher of the pyspark package itself (bin/spark-class), so the cluster runs
# the same Spark as featurestore's `spark` extra. Python is the featurestore image's (3.11):
# PySpark needs the driver's and the executors' Python versions to match.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Java 17 (Spark 4 runs on 17 or 21); procps for Spark's own scripts (ps).
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*

# The same pin as pyproject.toml's spark extra; /opt/spark is the package's folder (bin/, jars/).
RUN pip install pyspark==4.1.1 \
    && ln -s "$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" /opt/spark

RUN useradd --system --uid 10002 --create-home spark
USER spark
WORKDIR /home/spark
ENV SPARK_HOME=/opt/spark
# docker-compose.yml sets the command: the master's or the worker's class through spark-class.
