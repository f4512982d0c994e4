#!/usr/bin/env python3
"""rebuild_balances.py: follows every shard's change stream and rebuilds
every account's posted balances (docs/events.md, docs/client-python.md).

    rebuild_balances.py --ring RING --cert KEYS/private/app.key_secret \\
        --events s1=tcp://127.0.0.1:7201 --events s2=tcp://127.0.0.1:7202 \\
        --state balances.json [--page N] [--once]

--ring: the cluster's ring file (each shard's endpoint and CURVE key).
--cert: this consumer's secret certificate (a key of the client or admin
role); without it, --insecure. --events NAME=ENDPOINT: a shard's
--events-bind, for notifications (a shard without one is polled).
--state: where positions, balances and applied keys are kept, rewritten
atomically after every page: kill the program at any moment and start it
again, it resumes without applying anything twice. --once: read every
shard up to its head, print the balances as JSON, exit. Otherwise it runs
until SIGTERM or SIGINT (exit 0).
"""
import argparse
import json
import signal
import sys

import ringledger as rl
from ringledger import events


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ring", required=True)
    p.add_argument("--cert")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--events", action="append", default=[], metavar="NAME=ENDPOINT")
    p.add_argument("--state", required=True)
    p.add_argument("--page", type=int, default=events.PAGE_DEFAULT)
    p.add_argument("--once", action="store_true")
    a = p.parse_args(argv)
    if bool(a.cert) == a.insecure:
        p.error("give exactly one of --cert and --insecure")
    ring = rl.Ring.load(a.ring)
    notify = {}
    for item in a.events:
        name, sep, endpoint = item.partition("=")
        if not sep or not endpoint:
            p.error("--events takes NAME=ENDPOINT, not %r" % item)
        notify[name] = endpoint
    unknown = set(notify) - {s.name for s in ring.shards}
    if unknown:
        p.error("--events names shards the ring does not: %s" % ", ".join(sorted(unknown)))
    shards = {s.name: events.ShardEndpoints(s.endpoint, notify.get(s.name)) for s in ring.shards}
    keypair = rl.Keypair.load(a.cert) if a.cert else None
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    with events.Consumer(shards, state_path=a.state, keypair=keypair,
                         server_keys=ring if keypair else None, page=a.page) as consumer:
        if a.once:
            failed = {n: str(e) for n, e in consumer.poll().items() if isinstance(e, Exception)}
            if failed:
                print("not read: %s" % failed, file=sys.stderr)
                return 1
            print(json.dumps({"%x" % k: v for k, v in sorted(consumer.balances().items())}))
            return 0
        print("rebuild_balances: following %s (state %s)" % (", ".join(sorted(shards)), a.state),
              file=sys.stderr, flush=True)
        consumer.run(stop=lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
