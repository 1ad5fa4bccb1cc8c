#!/usr/bin/env python3
"""A Faultline client for etcd 3.4 in Python, standard library only.

Faultline runs one copy of this program per logical client process and speaks
newline-delimited JSON with it (docs/your-client.md): each line on stdin is one
operation, e.g.

    {"process": 3, "f": "cas", "key": 7, "value": [1, 4], "node": "n2", "addr": "10.0.0.2:2379"}

and the program answers each with one line on stdout:

    {"type": "ok", "value": [1, 4]}      took effect (a read's value filled in)
    {"type": "fail", "error": "..."}     certainly did not take effect
    {"type": "info", "error": "..."}     unknown: may or may not have

It talks to etcd's v3 JSON gateway (/v3/kv/range, /v3/kv/put, /v3/kv/txn): keys and
values are base64, reads are linearizable (etcd's default). Workloads:

- register: read, write, cas on key "r<key>"; values stored as JSON.
- list-append: txn of ["append", k, v] and ["r", k, null]: one txn reads every key at
  one revision, a second puts the new lists if no key changed since (compare on
  mod_revision); a conflict is retried, then fails (nothing was written).
- setup: ["w", k, v] micro-ops (the bank workload's opening balances).

Anything unexpected is answered, never raised: errors of reads are `fail` (a read has
no effect), errors of writes after the request may have been sent are `info`.
"""
import base64
import json
import socket
import sys
import time
import urllib.error
import urllib.request

BUDGET = 4.0  # seconds per operation; below the harness's --op-timeout (5 s by default)
deadline = 0.0  # when the current operation's budget runs out


class Unknown(Exception):
    """The request may have been applied: the operation is `info`."""


class Failed(Exception):
    """The request certainly was not applied: the operation is `fail`."""


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode()


def call(addr, method, body):
    remaining = deadline - time.monotonic()
    if remaining <= 0.05:
        # Not sent; and every earlier request of this operation certainly did nothing.
        raise Failed("out of time before sending")
    req = urllib.request.Request(
        f"http://{addr}/v3/{method}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=remaining) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace").strip()
        try:
            code = json.loads(detail).get("code")
        except ValueError:
            code = None
        if code == 3:  # InvalidArgument: rejected before doing anything
            raise Failed(f"etcd: {detail}") from None
        raise Unknown(f"etcd HTTP {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            raise Failed("connection-refused") from None
        if isinstance(e.reason, (socket.timeout, TimeoutError)):
            raise Unknown("timeout") from None
        raise Unknown(f"connection: {e.reason}") from None
    except (socket.timeout, TimeoutError):
        raise Unknown("timeout") from None
    except (ConnectionError, OSError) as e:
        raise Unknown(f"connection: {e}") from None


def get(addr, key):
    """The key's JSON value, or None when unset (a linearizable read)."""
    kvs = call(addr, "kv/range", {"key": b64(key)}).get("kvs")
    return json.loads(unb64(kvs[0]["value"])) if kvs else None


def put(addr, key, value):
    call(addr, "kv/put", {"key": b64(key), "value": b64(json.dumps(value))})


def register(op, addr):
    key = f"r{op.get('key')}"
    f, value = op["f"], op.get("value")
    if f == "read":
        return get(addr, key)
    if f == "write":
        put(addr, key, value)
        return value
    if f == "cas":
        old, new = value
        res = call(addr, "kv/txn", {
            "compare": [{"key": b64(key), "target": "VALUE", "result": "EQUAL",
                         "value": b64(json.dumps(old))}],
            "success": [{"request_put": {"key": b64(key), "value": b64(json.dumps(new))}}],
        })
        if not res.get("succeeded"):
            raise Failed("cas-mismatch")
        return value
    raise Failed(f"unknown-f: {f!r}")


def snapshot(addr, keys):
    """Every key's (list, mod_revision), read atomically in one txn."""
    res = call(addr, "kv/txn", {"success": [{"request_range": {"key": b64(k)}} for k in keys]})
    out = {}
    for k, r in zip(keys, res.get("responses", [])):
        kvs = r.get("response_range", {}).get("kvs")
        if kvs:
            out[k] = (json.loads(unb64(kvs[0]["value"])), kvs[0].get("mod_revision", "0"))
        else:
            out[k] = (None, "0")
    return out


def txn(micro_ops, addr):
    keys = sorted({f"la{m[1]}" for m in micro_ops})
    for _attempt in range(5):
        # Reading may fail freely: nothing is written until the second txn.
        snap = snapshot(addr, keys)
        state = {k: v for k, (v, _) in snap.items()}
        result, writes = [], {}
        for f, k, v in micro_ops:
            sk = f"la{k}"
            if f == "append":
                state[sk] = (state[sk] or []) + [v]
                writes[sk] = state[sk]
                result.append([f, k, v])
            elif f == "r":
                result.append([f, k, state[sk]])
            else:
                raise Failed(f"unknown micro-op {f!r}")
        if not writes:
            return result  # the snapshot was one atomic, linearizable read
        res = call(addr, "kv/txn", {
            "compare": [{"key": b64(k), "target": "MOD", "result": "EQUAL",
                         "mod_revision": rev} for k, (_, rev) in snap.items()],
            "success": [{"request_put": {"key": b64(k), "value": b64(json.dumps(v))}}
                        for k, v in writes.items()],
        })
        if res.get("succeeded"):
            return result
    raise Failed("conflict: keys kept changing")


def perform(op):
    f, addr = op["f"], op["addr"]
    if f == "txn":
        return txn(op["value"], addr)
    if f == "setup":
        for m in op["value"]:
            if m[0] != "w":
                raise Failed(f"setup supports only w micro-ops, not {m[0]!r}")
            put(addr, str(m[1]), m[2])
        return op["value"]
    return register(op, addr)


def main():
    global deadline
    for line in sys.stdin:
        if not line.strip():
            continue
        op = json.loads(line)
        deadline = time.monotonic() + BUDGET
        try:
            reply = {"type": "ok", "value": perform(op)}
        except Failed as e:
            reply = {"type": "fail", "error": str(e)}
        except Unknown as e:
            # A read that failed had no effect, whatever went wrong.
            kind = "fail" if op["f"] == "read" else "info"
            reply = {"type": kind, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - a bug here must not look like a result
            reply = {"type": "info", "error": f"client error: {e!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
