#!/bin/sh
# The one-shot `materialize` job of docker-compose.yml, run as `materialize.sh REPO`:
#   1. generate the example data into REPO/data unless it is there (a volume the API shares),
#   2. register the repository's definitions in the registry (`apply`),
#   3. write the latest values into the online store (`materialize-incremental`).
# Safe to run again (`docker compose run --rm materialize`): the data is kept, apply changes
# nothing when the definitions did not change, and materialize-incremental writes only what
# arrived since each view's watermark.
set -eu

repo="${1:?usage: materialize.sh REPO (the feature repository folder)}"
data="$repo/data"

if [ -f "$data/driver_stats.parquet" ] && [ -f "$data/customer_profile.parquet" ]; then
    echo "materialize: keeping the data in $data"
else
    python "$repo/generate_data.py" --size "${FEATURESTORE_DATA_SIZE:-XS}" --out "$data"
fi
featurestore --repo "$repo" apply
featurestore --repo "$repo" materialize-incremental "${FEATURESTORE_MATERIALIZE_END:-now}"
