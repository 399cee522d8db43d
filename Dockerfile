# The featurestore image of docker-compose.yml: the REST service (`featurestore serve`, the
# default command) and the one-shot materialize job (deploy/materialize.sh), both over the
# example feature repository at /app/repo, configured from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The package with its Redis and PostgreSQL clients and the quality extra (Great Expectations);
# the sources are not kept in the image.
COPY pyproject.toml README.md /tmp/build/
COPY featurestore /tmp/build/featurestore
COPY api /tmp/build/api
RUN pip install "/tmp/build[redis,postgres,quality]" && rm -rf /tmp/build

RUN useradd --system --uid 10001 --create-home featurestore

# The feature repository: the example's definitions and data generator, and a featurestore.yaml
# that reads every setting from the environment. The files belong to root (the services only
# read them); data/ is the one writable folder, a volume shared by the job and the API.
COPY repo/features.py repo/generate_data.py repo/.featurestoreignore /app/repo/
COPY deploy/featurestore.yaml /app/repo/featurestore.yaml
COPY deploy/materialize.sh /app/materialize.sh
RUN mkdir /app/repo/data && chown featurestore:featurestore /app/repo/data

USER featurestore
WORKDIR /app
ENV FEATURESTORE_REPO=/app/repo
EXPOSE 6566
# docker-compose.yml sets the command (workers) and the healthcheck (GET /health).
CMD ["featurestore", "--repo", "/app/repo", "serve", "--host", "0.0.0.0", "--port", "6566"]
