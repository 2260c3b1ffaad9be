#!/usr/bin/env bash
# Build an ovtext image with podman, no registry needed (`make image`, `make image-test`).
#
#   deploy/container/build.sh                 # the serve image, ovtext:serve
#   TARGET=export deploy/container/build.sh   # the export image, ovtext:export
#
# Steps: install podman and mmdebstrap from Debian when they are missing (as root); make the
# base image with mmdebstrap from this machine's Debian mirror and `podman import` it (once;
# BASE_IMAGE=<registry image> skips it); build the wheel; `podman build` the target with the
# host's CA bundle mounted for pip (read during the build only, never copied into the image).
#
# Environment: TARGET (serve|export), IMAGE (ovtext:$TARGET), BASE_IMAGE, PYTHON (.venv/bin/python
# or python3), SUITE (bookworm), MIRROR (the first Debian mirror in /etc/apt), CA_BUNDLE
# (/etc/ssl/certs/ca-certificates.crt), TORCH_PIP_ARGS (export: pip arguments that find torch CPU;
# default --find-links /opt/wheels when that folder exists), CONTAINERS_CONF.
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET="${TARGET:-serve}"
IMAGE="${IMAGE:-ovtext:${TARGET}}"
SUITE="${SUITE:-bookworm}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# podman on machines without systemd, where crun cannot create cgroups (see the file).
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/container/containers.conf}"

log() { echo "build.sh: $*" >&2; }

if ! command -v podman >/dev/null || { [[ -z "${BASE_IMAGE:-}" ]] && ! command -v mmdebstrap >/dev/null; }; then
    if [[ "$(id -u)" != 0 ]]; then
        log "podman and mmdebstrap are missing: apt-get install podman buildah mmdebstrap runc uidmap slirp4netns"
        exit 1
    fi
    log "installing podman and mmdebstrap (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah mmdebstrap runc uidmap slirp4netns >/dev/null
fi

debian_mirror() {
    # The first Debian archive this machine's apt uses (deb822 or one-line sources).
    local uri
    uri="$(grep -hoE '^URIs:\s*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v -- '-security' | head -n1 || true)"
    if [[ -z "${uri}" ]]; then
        uri="$(grep -hE '^deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

if [[ -z "${BASE_IMAGE:-}" ]]; then
    BASE_IMAGE="localhost/ovtext-base:${SUITE}"
    if ! podman image exists "${BASE_IMAGE}"; then
        mirror="${MIRROR:-$(debian_mirror)}"
        tarball="$(mktemp -d)/base.tar"
        log "making the base image ${BASE_IMAGE} with mmdebstrap (${SUITE} from ${mirror})"
        started=$SECONDS
        # minbase + Python; merged /usr by a hook (the usrmerge package would pull in perl);
        # no documentation, manual pages or translations.
        if ! mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
            --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            "${SUITE}" "${tarball}" "${mirror}" >"${tarball}.log" 2>&1; then
            cat "${tarball}.log" >&2
            exit 1
        fi
        podman import --quiet "${tarball}" "${BASE_IMAGE}" >/dev/null
        rm -rf "$(dirname "${tarball}")"
        log "base image made in $((SECONDS - started)) s"
    fi
fi

log "building the wheel"
rm -f dist/ovtext-*.whl
"${PYTHON}" -m pip wheel --quiet --no-deps --wheel-dir dist . 2>/dev/null

build_args=(--format docker --network host -f deploy/container/Containerfile --target "${TARGET}"
            --build-arg "BASE_IMAGE=${BASE_IMAGE}" -t "${IMAGE}")
if [[ -r "${CA_BUNDLE}" ]]; then
    build_args+=(-v "$(readlink -f "${CA_BUNDLE}"):/run/ovtext-build/ca.crt:ro"
                 --build-arg PIP_CERT=/run/ovtext-build/ca.crt)
fi
if [[ "${TARGET}" == export ]]; then
    torch_args="${TORCH_PIP_ARGS:-}"
    if [[ -z "${torch_args}" && -d /opt/wheels ]]; then
        build_args+=(-v /opt/wheels:/opt/wheels:ro)
        torch_args="--find-links /opt/wheels"
    fi
    build_args+=(--build-arg "TORCH_PIP_ARGS=${torch_args}")
fi
log "podman build --target ${TARGET} -t ${IMAGE} (base ${BASE_IMAGE})"
started=$SECONDS
podman build --quiet "${build_args[@]}" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "${IMAGE}")
log "built ${IMAGE} in $((SECONDS - started)) s: $((size / 1000000)) MB"
