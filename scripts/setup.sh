#!/usr/bin/env bash
# Installs the Debian packages Faultline needs, and says what it installs. Idempotent:
# packages already installed are skipped, and nothing runs when all are there.
#
#   scripts/setup.sh             what building and the default run need
#   scripts/setup.sh --all       also every optional backend, database and fault
#   scripts/setup.sh --dry-run   print what would be installed, install nothing
#
# It needs root (or sudo). The Rust toolchain is not a Debian package here: install it
# with rustup (https://rustup.rs) first.
set -euo pipefail

all=false
dry_run=false
for arg in "$@"; do
    case "$arg" in
        --all) all=true ;;
        --dry-run) dry_run=true ;;
        -h | --help)
            sed -n '2,10s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *)
            echo "setup.sh: unknown option $arg (expected --all, --dry-run)" >&2
            exit 2
            ;;
    esac
done

# package: why Faultline needs it
needs=(
    "build-essential:compiling Faultline (cc, make)"
    "pkg-config:finding OpenSSL for the SSH backend's crate"
    "libssl-dev:the SSH backend's crate (ssh2)"
    "ca-certificates:fetching crates from crates.io"
    "iproute2:local hosts: network namespaces, the bridge, veth links (ip)"
    "nftables:network partitions (nft)"
    "iptables:packet delays through NFQUEUE (iptables)"
)
extras=(
    "openssh-server:the SSH backend's test hosts (sshd in a namespace)"
    "busybox-static:the Docker node image (a static shell)"
    "etcd-server:--db etcd"
    "postgresql:--db postgres (PostgreSQL's server programs)"
    "zookeeperd:--db zookeeper (ZooKeeper's jars and a Java runtime; its daemon is never started)"
    "libfaketime:clock faults (--nemesis clock)"
    "fuse3:power-loss faults (faultline-lazyfs mounts, --nemesis power)"
    "chromium:the report tests (they render report.html headless)"
    "python3:the example clients in examples/ and their tests"
)
if $all; then
    needs+=("${extras[@]}")
    if ! command -v docker >/dev/null 2>&1; then
        # Not over a Docker installed otherwise (docker-ce conflicts with docker.io).
        needs+=("docker.io:the Docker backend (--cluster docker)")
    fi
fi

missing=()
for entry in "${needs[@]}"; do
    package="${entry%%:*}"
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
        echo "setup.sh: will install $package — ${entry#*:}"
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup.sh: every package is installed ($(if $all; then echo "all extras too"; else echo "run scripts/setup.sh --all for the optional backends and faults"; fi))"
elif $dry_run; then
    echo "setup.sh: --dry-run: installing nothing"
else
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    echo "setup.sh: installed ${missing[*]}"
fi

# The Docker backend needs a running engine (docker.io starts one where systemd runs).
if $all && ! $dry_run && command -v docker >/dev/null 2>&1 &&
    ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo service docker start ||
        echo "setup.sh: the Docker engine does not answer and could not be started; the Docker backend will not work" >&2
fi
