#!/bin/sh
# Joins the nodes of docker-compose.yml's scale-out profile into a Redis Cluster of three masters
# with a replica each. REDIS_CLUSTER_NODES lists them (host:port, space-separated). `redis-cli
# --cluster create` takes addresses, not names, so each name is resolved first. Run again (a
# second `docker compose up`), it finds the cluster formed and changes nothing.
set -eu

first=${REDIS_CLUSTER_NODES%% *}
state() {
  redis-cli -h "${1%:*}" -p "${1##*:}" cluster info | tr -d '\r' | sed -n 's/^cluster_state://p'
}

if [ "$(state "$first")" = ok ]; then
  echo "Redis Cluster already formed"
  exit 0
fi

addresses=""
for node in $REDIS_CLUSTER_NODES; do
  ip=$(getent ahostsv4 "${node%:*}" | awk 'NR == 1 { print $1 }')
  if [ -z "$ip" ]; then
    echo "cannot resolve ${node%:*}" >&2
    exit 1
  fi
  addresses="$addresses $ip:${node##*:}"
done
# shellcheck disable=SC2086 # one argument per node
redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes

# Ready once every node agrees (slots spread by gossip, within a few seconds).
for _ in $(seq 60); do
  ready=yes
  for node in $REDIS_CLUSTER_NODES; do
    [ "$(state "$node")" = ok ] || ready=no
  done
  if [ "$ready" = yes ]; then
    echo "Redis Cluster ready: $REDIS_CLUSTER_NODES"
    exit 0
  fi
  sleep 1
done
echo "Redis Cluster did not reach cluster_state:ok in 60 s" >&2
exit 1
