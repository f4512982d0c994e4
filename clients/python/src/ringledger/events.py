"""A consumer of the shards' change streams (docs/events.md).

Each shard serves its stored transfer records in commit order after a
position (``Client.events_read``) and, when started with --events-bind,
publishes its durable head on a ZeroMQ PUB socket. ``Consumer`` follows
every shard of a cluster and rebuilds every account's posted balances:

    from ringledger import events
    consumer = events.Consumer(
        {"s1": events.ShardEndpoints("tcp://127.0.0.1:7101", "tcp://127.0.0.1:7201"),
         "s2": events.ShardEndpoints("tcp://127.0.0.1:7102", "tcp://127.0.0.1:7202")},
        state_path="balances.json", keypair=keys, server_keys=ring)
    consumer.run(stop=lambda: done)        # or consumer.poll() now and then
    consumer.balances()                    # {account id: (debits, credits)}

What it keeps, per shard (docs/events.md, "What a consumer must do"):
the position of the last event it applied, that shard's contribution to
each balance, and the (transfer id, debit account, leg) keys it applied.
All of it is written to ``state_path`` atomically (a temporary file,
fsync, rename, fsync of the directory) after every page, so a consumer
killed at any moment restarts from a state in which every event up to its
position is applied once and nothing after it. Delivery is at least once:
an event already applied (by key) is skipped. A shard that answers
``resync`` (a restored store, a position past its end) gets its
contribution and its keys dropped and is read again from the beginning.

Limits: the state holds one key per leg applied (about 100 bytes each in
JSON), and is rewritten whole after every page: this is an example of the
contract, sized for tests and small ledgers; a production consumer keeps
the same three things in its own database, in one transaction per page.
"""

import json
import os
import time
from typing import Dict, NamedTuple, Optional

from .client import Client
from .codec import LEG_BOTH, LEG_CREDIT, LEG_DEBIT
from .errors import RingledgerError, StatusError
from .keys import Ring, load_public_key
from .protocol import ResultCode, StatusCode

NOTE_MAGIC = 0x76656C72  # "rlev"
NOTE_SIZE = 64
PAGE_DEFAULT = 1000  # events asked per events_read
STATE_VERSION = 1


class Position(NamedTuple):
    """Where a consumer is in one shard's stream: the serving shard's
    incarnation and nonce, and the timestamp of the last event applied."""

    incarnation: int = 0
    nonce: int = 0
    timestamp: int = 0


BEGINNING = Position()


class ShardEndpoints(NamedTuple):
    """A shard's request endpoint (its --bind, as the ring says) and its
    events endpoint (its --events-bind; None: poll only)."""

    endpoint: str
    events_endpoint: Optional[str] = None


class Note(NamedTuple):
    """A notification of a shard's PUB socket: the durable head."""

    kind: int  # 1 committed, 2 heartbeat
    incarnation: int
    nonce: int
    head: int
    name: str


def decode_note(frame) -> Note:
    """A notification frame (docs/events.md, "Notifications"); ValueError
    when it is not one."""
    frame = bytes(frame)
    if len(frame) != NOTE_SIZE:
        raise ValueError("a note of %d bytes, expected %d" % (len(frame), NOTE_SIZE))
    magic, version, kind = int.from_bytes(frame[0:4], "little"), \
        int.from_bytes(frame[4:6], "little"), int.from_bytes(frame[6:8], "little")
    if magic != NOTE_MAGIC or version != 1 or kind not in (1, 2):
        raise ValueError("not a version 1 note: magic %#x, version %d, kind %d"
                         % (magic, version, kind))
    name = frame[32:64].split(b"\0", 1)[0].decode("utf-8", "replace")
    return Note(kind, int.from_bytes(frame[8:16], "little"),
                int.from_bytes(frame[16:24], "little"), int.from_bytes(frame[24:32], "little"),
                name)


class _Stream:
    """What the consumer built from one shard."""

    def __init__(self):
        self.position = BEGINNING
        self.debits: Dict[int, int] = {}
        self.credits: Dict[int, int] = {}
        self.seen = set()  # (transfer id, debit account, leg)
        self.applied = 0
        self.resyncs = 0

    def to_json(self):
        return {"position": list(self.position),
                "debits": {"%x" % a: v for a, v in self.debits.items()},
                "credits": {"%x" % a: v for a, v in self.credits.items()},
                "seen": ["%x:%x:%d" % k for k in sorted(self.seen)],
                "applied": self.applied, "resyncs": self.resyncs}

    @classmethod
    def from_json(cls, data):
        s = cls()
        s.position = Position(*(int(v) for v in data["position"]))
        s.debits = {int(a, 16): int(v) for a, v in data["debits"].items()}
        s.credits = {int(a, 16): int(v) for a, v in data["credits"].items()}
        s.seen = set()
        for k in data["seen"]:
            i, d, leg = k.split(":")
            s.seen.add((int(i, 16), int(d, 16), int(leg)))
        s.applied, s.resyncs = int(data["applied"]), int(data["resyncs"])
        return s


class Consumer:
    """Follows the change streams of the given shards (name ->
    ShardEndpoints) and rebuilds posted balances; see the module's text.

    keypair, server_keys: CURVE, as for Client (server_keys: a Ring or
    {endpoint: key}); the events endpoints use the same key as their
    shard's endpoint. page: events per read. timeout_ms: the wait for one
    read; a shard that does not answer (restarting) is tried again later.
    """

    def __init__(self, shards, *, state_path, keypair=None, server_keys=None,
                 page=PAGE_DEFAULT, timeout_ms=1000):
        if not shards:
            raise ValueError("no shards to follow")
        if not 1 <= page <= 8190:
            raise ValueError("page must be 1..8190, not %r" % (page,))
        self.shards = {name: ShardEndpoints(*s) for name, s in shards.items()}
        self.state_path = state_path
        self.page = page
        self.timeout_ms = timeout_ms
        self._keypair, self._server_keys = keypair, server_keys
        self.streams = {name: _Stream() for name in self.shards}
        self._load()
        self._clients = {}
        for name, s in self.shards.items():
            kw = {}
            if keypair is not None:
                kw = {"keypair": keypair, "server_keys": server_keys}
            self._clients[name] = Client(s.endpoint, timeout_ms=timeout_ms, **kw)
        self._subs = {}
        self._heads = {name: None for name in self.shards}

    def _server_key(self, endpoint):
        """The shard's public key (bytes), as its Client pins it."""
        keys = self._server_keys
        if isinstance(keys, Ring):
            keys = keys.server_keys()
        if not keys or endpoint not in keys:
            raise ValueError("no server key for %s" % endpoint)
        return load_public_key(keys[endpoint])

    # State -----------------------------------------------------------------------

    def _load(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        if data.get("version") != STATE_VERSION:
            raise ValueError("%s: state version %r, expected %d"
                             % (self.state_path, data.get("version"), STATE_VERSION))
        for name, s in data["shards"].items():
            if name in self.streams:
                self.streams[name] = _Stream.from_json(s)

    def save(self):
        """Writes the whole state atomically: after a crash, the file holds
        either the state before this call or the state after it."""
        data = {"version": STATE_VERSION,
                "shards": {n: s.to_json() for n, s in self.streams.items()}}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)
        fd = os.open(os.path.dirname(os.path.abspath(self.state_path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # Reading ------------------------------------------------------------------------

    def _apply(self, stream, event):
        t = event.transfer
        key = (t.id, t.debit_account_id, event.leg)
        if key in stream.seen or any(key in s.seen for s in self.streams.values()):
            return False  # at least once: already applied
        stream.seen.add(key)
        # A pending transfer and a void post nothing; a post's record holds
        # the amount it posted (docs/protocol.md, "Pending transfers").
        moves = t.posts
        if event.result == ResultCode.OK and moves:
            if event.leg in (LEG_BOTH, LEG_DEBIT):
                stream.debits[t.debit_account_id] = \
                    stream.debits.get(t.debit_account_id, 0) + t.amount
            if event.leg in (LEG_BOTH, LEG_CREDIT):
                stream.credits[t.credit_account_id] = \
                    stream.credits.get(t.credit_account_id, 0) + t.amount
        stream.applied += 1
        return True

    def poll_shard(self, name):
        """Reads one shard from its position until it has caught up (a page
        shorter than ``page``), saving after every page. Returns the events
        applied; raises RingledgerError (other than resync) when the shard
        cannot be read now."""
        stream, client = self.streams[name], self._clients[name]
        applied = 0
        while True:
            try:
                got = client.events_read(tuple(stream.position), self.page, deadline_s=
                                         max(self.timeout_ms / 1000.0, 0.1))
            except StatusError as e:
                if e.status is not StatusCode.RESYNC:
                    raise
                # The shard does not hold the history of our position (a
                # restore): drop what we built from it, read it again.
                resyncs = stream.resyncs + 1
                self.streams[name] = stream = _Stream()
                stream.resyncs = resyncs
                self.save()
                continue
            for event in got:
                applied += self._apply(stream, event)
            if got:
                stream.position = Position(*got[-1].position)
                self.save()
            if len(got) < self.page:
                return applied

    def poll(self):
        """Reads every shard that answers until it has caught up. Returns
        {name: events applied, or the exception of a shard not read now}."""
        out = {}
        for name in self.shards:
            try:
                out[name] = self.poll_shard(name)
            except RingledgerError as e:
                out[name] = e
        return out

    def _subscribe(self):
        import zmq
        context = zmq.Context.instance()
        for name, s in self.shards.items():
            if not s.events_endpoint or name in self._subs:
                continue
            sub = context.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            if self._keypair is not None:
                sub.curve_publickey = self._keypair.public
                sub.curve_secretkey = self._keypair.secret
                sub.curve_serverkey = self._server_key(s.endpoint)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(s.events_endpoint)
            self._subs[name] = sub

    def run(self, stop=lambda: False, poll_s=1.0):
        """Follows every shard until stop() is true: reads a shard when its
        note says its head is past our position, and every shard at least
        every poll_s seconds (notes are hints: PUB drops them for a slow
        subscriber, and while none is connected)."""
        import zmq
        self._subscribe()
        poller = zmq.Poller()
        for sub in self._subs.values():
            poller.register(sub, zmq.POLLIN)
        last_poll = 0.0
        while not stop():
            due = set()
            for sock, _ in poller.poll(timeout=100):
                name = next(n for n, s in self._subs.items() if s is sock)
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        note = decode_note(frame)
                    except ValueError:
                        continue  # not ours: ignored
                    self._heads[name] = note
                    position = self.streams[name].position
                    if (note.incarnation, note.nonce) != position[:2] \
                            or note.head > position.timestamp:
                        due.add(name)
            if time.monotonic() - last_poll >= poll_s:
                due = set(self.shards)
                last_poll = time.monotonic()
            for name in sorted(due):
                try:
                    self.poll_shard(name)
                except RingledgerError:
                    pass  # restarting, unreachable: tried again at the next poll

    def balances(self):
        """{account id: (debits_posted, credits_posted)} over every shard."""
        out = {}
        for s in self.streams.values():
            for a, v in s.debits.items():
                d, c = out.get(a, (0, 0))
                out[a] = (d + v, c)
            for a, v in s.credits.items():
                d, c = out.get(a, (0, 0))
                out[a] = (d, c + v)
        return out

    def close(self):
        for c in self._clients.values():
            c.close()
        for s in self._subs.values():
            s.close(0)
        self._subs = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
