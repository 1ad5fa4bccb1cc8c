#!/usr/bin/env bash
# SSH test hosts on this machine, for trying `--cluster ssh` without real machines:
# N network namespaces on a private bridge (10.77.0.0/24, no default route, no NAT),
# each running its own sshd, plus the hosts file, client key and known_hosts for them.
# A login there shares this machine's filesystem and processes but has the namespace's
# network, so faults act on each host's network as on a real machine
# (shared/notes/linux-faults.md, "SSH test hosts on one machine").
#
#   suites/ssh-lab.sh up [N] [DIR]     # N hosts (default 3), files in DIR
#                                      # (default /tmp/faultline-ssh-lab); prints the hosts file
#   faultline suite suites/ssh.toml    # the short SSH suite uses DIR/hosts.toml
#   suites/ssh-lab.sh down [DIR]       # stops every sshd, removes namespaces, bridge, rule
#
# Needs root, iproute2, nftables and openssh-server (`bash .ci/run` installs them).
set -euo pipefail

BRIDGE=flsshbr0
PREFIX=10.77.0
NS=flssh

usage() {
    sed -n '2,14p' "$0" >&2
    exit 254
}

need() {
    command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || {
        echo "ssh-lab: \`$1\` is missing: apt-get install $2" >&2
        exit 254
    }
}

down() {
    local dir=$1
    for pidfile in "$dir"/n*/sshd.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for ns in $(ip netns list | awk '{print $1}' | grep "^${NS}[0-9]*$" || true); do
        ip netns del "$ns"
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    # The FORWARD accept rule, found by its comment.
    if nft list chain ip filter FORWARD >/dev/null 2>&1; then
        nft -a list chain ip filter FORWARD | awk '/faultline-ssh-lab/ {print $NF}' |
            while read -r handle; do nft delete rule ip filter FORWARD handle "$handle"; done
    fi
    rm -rf "$dir"
}

up() {
    local n=$1 dir=$2
    [ "$(id -u)" -eq 0 ] || { echo "ssh-lab: run as root" >&2; exit 254; }
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 50 ] || {
        echo "ssh-lab: N must be 1..50, got \`$n\`" >&2
        exit 254
    }
    need ip iproute2
    need nft nftables
    need ssh-keygen openssh-client
    need /usr/sbin/sshd openssh-server
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        echo "ssh-lab: already up (bridge $BRIDGE exists); run \`$0 down\` first" >&2
        exit 254
    fi
    mkdir -p "$dir"
    mkdir -p -m 0755 /run/sshd
    ssh-keygen -q -t ed25519 -N "" -C faultline-ssh-lab -f "$dir/id_ed25519"
    : >"$dir/known_hosts"
    ip link add "$BRIDGE" type bridge
    ip addr add "$PREFIX.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    if nft list chain ip filter FORWARD >/dev/null 2>&1; then
        # A Docker engine sets FORWARD's policy to DROP: accept our bridge's traffic.
        nft insert rule ip filter FORWARD iifname "$BRIDGE" oifname "$BRIDGE" accept \
            comment '"faultline-ssh-lab"'
    fi
    {
        echo "# Written by suites/ssh-lab.sh: $n namespace-hosted sshd hosts."
        echo "known_hosts = \"known_hosts\""
        echo "connect_timeout_secs = 5"
    } >"$dir/hosts.toml"
    for i in $(seq 1 "$n"); do
        local ns="$NS$i" addr="$PREFIX.$((10 + i))" host="$dir/n$i"
        mkdir -p "$host"
        ip netns add "$ns"
        ip link add "${NS}v$i" type veth peer name eth0 netns "$ns"
        ip link set "${NS}v$i" master "$BRIDGE" up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        ssh-keygen -q -t ed25519 -N "" -C "n$i" -f "$host/host_key"
        cp "$dir/id_ed25519.pub" "$host/authorized_keys"
        cat >"$host/sshd_config" <<EOF
Port 22
ListenAddress $addr
HostKey $host/host_key
PidFile $host/sshd.pid
AuthorizedKeysFile $host/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
EOF
        ip netns exec "$ns" /usr/sbin/sshd -E "$host/sshd.log" -f "$host/sshd_config"
        echo "$addr $(cut -d' ' -f1,2 "$host/host_key.pub")" >>"$dir/known_hosts"
        {
            echo
            echo "[[host]]"
            echo "name = \"n$i\""
            echo "address = \"$addr\""
            echo "key = \"id_ed25519\""
        } >>"$dir/hosts.toml"
    done
    for i in $(seq 1 "$n"); do
        local addr="$PREFIX.$((10 + i))" tries=0
        until (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null; do
            tries=$((tries + 1))
            if [ "$tries" -gt 100 ]; then
                echo "ssh-lab: sshd on $addr did not start: see $dir/n$i/sshd.log" >&2
                exit 255
            fi
            sleep 0.1
        done
    done
    echo "$dir/hosts.toml"
}

case "${1:-}" in
    up) up "${2:-3}" "${3:-/tmp/faultline-ssh-lab}" ;;
    down) down "${2:-/tmp/faultline-ssh-lab}" ;;
    *) usage ;;
esac
