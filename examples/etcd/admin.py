#!/usr/bin/env python3
"""Readiness and leader checks for examples/etcd/etcd.toml (standard library only).

    admin.py ready ADDR    exit 0 when a linearizable read on ADDR answers
    admin.py leader ADDR   print the name of the node ADDR considers leader
"""
import base64
import json
import sys
import urllib.request


def call(addr, method, body, timeout=2.0):
    req = urllib.request.Request(
        f"http://{addr}/v3/{method}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("ready", "leader"):
        sys.exit(__doc__)
    what, addr = sys.argv[1], sys.argv[2]
    if what == "ready":
        call(addr, "kv/range", {"key": base64.b64encode(b"faultline-ready").decode()})
        return
    status = call(addr, "maintenance/status", {})
    leader = status.get("leader")
    if not leader or leader == "0":
        return
    for member in call(addr, "cluster/member/list", {}).get("members", []):
        if member.get("ID") == leader:
            print(member.get("name", ""))
            return


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure means "not ready" / "unknown"
        sys.exit(f"{sys.argv[1:]}: {e}")
