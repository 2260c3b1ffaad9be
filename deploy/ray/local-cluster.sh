#!/usr/bin/env bash
# Run COMMAND against a two-node Ray cluster on this machine, then stop the cluster.
#
#   bash deploy/ray/local-cluster.sh ovtext-batch embeddings ... --ray_address 127.0.0.1:6379
#
# The cluster lives in a network namespace of its own with only the loopback interface, and in a
# PID namespace of its own (unshare; needs root). Ray turns --node-ip-address 127.0.0.1 into the
# machine's outward address and listens on all interfaces; inside the namespace 127.0.0.1 is the
# only address there is, so every Ray port is on loopback and reachable from this cluster only.
# `ray stop` stops the Ray processes it can see: in the PID namespace, only this cluster's. When
# the script ends, the kernel ends whatever is left in the namespace.
#
# Environment: RAY_PORT (6379), RAY_HEAD_CPUS (2), RAY_WORKER_CPUS (2), RAY_TEMP_DIR.
set -euo pipefail

if [[ "${OVTEXT_IN_CLUSTER_NAMESPACE:-}" != 1 ]]; then
    if [[ $# -eq 0 ]]; then
        echo "usage: $0 COMMAND [ARGS...]" >&2
        exit 2
    fi
    export OVTEXT_IN_CLUSTER_NAMESPACE=1
    exec unshare --net --pid --fork --mount-proc bash "$0" "$@"
fi

port="${RAY_PORT:-6379}"
temp_dir="${RAY_TEMP_DIR:-$(mktemp -d /tmp/ovtext-ray.XXXXXX)}"
export RAY_USAGE_STATS_ENABLED=0
ip link set lo up

stop_cluster() {
    ray stop --force >/dev/null 2>&1 || true
}
trap stop_cluster EXIT

echo "local-cluster: head node on 127.0.0.1:${port}" >&2
ray start --head --node-ip-address 127.0.0.1 --port "${port}" --num-cpus "${RAY_HEAD_CPUS:-2}" \
    --include-dashboard=false --disable-usage-stats --temp-dir "${temp_dir}" >/dev/null
echo "local-cluster: second node joining" >&2
ray start --address "127.0.0.1:${port}" --node-ip-address 127.0.0.1 --num-cpus "${RAY_WORKER_CPUS:-2}" \
    --disable-usage-stats >/dev/null
status=0
"$@" || status=$?
exit "${status}"
