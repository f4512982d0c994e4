"""The client: one ZeroMQ DEALER socket to one or more routers (or shards).

Purpose: the calls of docs/protocol.md for applications, with the retry
rule of docs/client.md built in.

Invariants:
1. A record is only ever resent with its own id, in its own request
   order: a create whose outcome is open is asked again, never paid again.
2. Per-record results are data (one Result per record, in order); an
   exception means the call as a whole got no definite answer
   (errors.py says which).
3. Nothing is sent before every record of the call encodes: a bad
   argument raises before the first byte leaves.
4. The logic of a call (batches, retries, backoff, paging) is a generator
   that yields the requests it wants made and the pauses it wants taken;
   Client drives it with blocking sockets and aio.AsyncClient with
   asyncio, so the two cannot behave differently.

Limits: a call is split into batches of at most ``batch_size`` records
(8190, the protocol's limit), sent one after another: within one shard a
record sees every earlier record of the call, as in one request. One
request is in flight per Client at a time (the async client: one per
coroutine). A Client is used from one thread at a time.
"""

import itertools
import random
import time

from . import codec
from .codec import Filter, Header, Result
from .errors import BadReply, CodecError, Incomplete, StatusError, Timeout, TransportError
from .keys import Keypair, Ring, load_public_key
from .protocol import (BATCH_RECORDS_MAX, CLIENT_TIMEOUT_MS, EVENTS_LIMIT_MAX, HISTORY_LIMIT_MAX,
                       RETRY_BACKOFF_MS_MAX, RETRY_BACKOFF_MS_MIN, FilterFlags, Operation,
                       ResultCode, StatusCode, TransferFlags)

DEADLINE_S = 30.0  # default time a call keeps retrying open records


def _endpoints(endpoints):
    if isinstance(endpoints, str):
        endpoints = endpoints.split(",")
    endpoints = [e.strip() for e in endpoints if e.strip()]
    if not endpoints:
        raise ValueError("no endpoint given")
    return endpoints


def _positive(name, value, top=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or \
            (top is not None and value > top):
        raise ValueError("%s must be a number in (0, %s], not %r" % (name, top or "inf", value))
    return value


class _Api:
    """The calls, as flows (generators) run by the subclass's _run."""

    def __init__(self, endpoints, *, keypair=None, server_key=None, server_keys=None,
                 timeout_ms=CLIENT_TIMEOUT_MS, deadline_s=DEADLINE_S,
                 batch_size=BATCH_RECORDS_MAX):
        self.endpoints = _endpoints(endpoints)
        self.timeout_ms = int(_positive("timeout_ms", timeout_ms))
        self.deadline_s = float(_positive("deadline_s", deadline_s))
        self.batch_size = int(_positive("batch_size", batch_size, BATCH_RECORDS_MAX))
        self.keypair = keypair
        self._curve = self._curve_plan(keypair, server_key, server_keys)
        self._ids = itertools.count(random.getrandbits(40) << 20 | 1)
        self.epoch = 0  # the epoch of the last reply
        self.stale_replies = 0  # replies to requests given up on, dropped
        self.requests_sent = 0  # every send, first ones and retries

    def _curve_plan(self, keypair, server_key, server_keys):
        """[(endpoint, server key or None)]; None everywhere without a keypair."""
        if keypair is None:
            if server_key is not None or server_keys:
                raise ValueError("a server key without a keypair: pass keypair= "
                                 "(Keypair.load) to speak CURVE")
            return [(e, None) for e in self.endpoints]
        if not isinstance(keypair, Keypair):
            raise TypeError("keypair must be a Keypair (Keypair.load(secret_file))")
        if isinstance(server_keys, Ring):
            server_keys = server_keys.server_keys()
        keys = {e: load_public_key(k) for e, k in (server_keys or {}).items()}
        default = load_public_key(server_key) if server_key is not None else None
        plan = []
        for e in self.endpoints:
            key = keys.get(e, default)
            if key is None:
                raise ValueError("no server key for %s: give server_key= or server_keys=" % e)
            plan.append((e, key))
        return plan

    # The calls ---------------------------------------------------------------

    def create_accounts(self, accounts, *, retry=True, deadline_s=None, timeout_ms=None):
        """One Result per account, in order. ok and exists both mean the
        account is there. Raises Incomplete when records are still open at
        the deadline, StatusError when the server refuses the request."""
        return self._run(self._create_flow(Operation.CREATE_ACCOUNTS, codec.Account, accounts,
                                           retry, deadline_s, timeout_ms))

    def create_transfers(self, transfers, *, retry=True, deadline_s=None, timeout_ms=None):
        """One Result per transfer, in order: ok and exists mean paid
        (exactly once); a business failure (exceeds_credits, ...) burns the
        id, except in a linked chain, which stores nothing when it fails
        (``reply_burns`` says what each id is left). With retry (the
        default), open records (timeouts, busy, frozen, outcome_unknown,
        ...) are resent with the same ids until the deadline; retry=False
        sends each batch once and returns what came."""
        return self._run(self._create_flow(Operation.CREATE_TRANSFERS, codec.Transfer, transfers,
                                           retry, deadline_s, timeout_ms))

    def lookup_accounts(self, ids, *, retry=True, deadline_s=None, timeout_ms=None):
        """One Account per id, in order; ``found`` is False for an unknown id."""
        return self._run(self._lookup_flow(Operation.LOOKUP_ACCOUNTS, ids, retry, deadline_s,
                                           timeout_ms))

    def lookup_transfers(self, ids, *, retry=True, deadline_s=None, timeout_ms=None):
        """One Transfer per id, in order; ``found`` is False for an unknown id."""
        return self._run(self._lookup_flow(Operation.LOOKUP_TRANSFERS, ids, retry, deadline_s,
                                           timeout_ms))

    def get_account_transfers(self, account_id, *, limit=HISTORY_LIMIT_MAX,
                              flags=FilterFlags.DEBITS | FilterFlags.CREDITS, timestamp_min=0,
                              timestamp_max=0, retry=True, deadline_s=None, timeout_ms=None):
        """One page of an account's transfers (a Filter, docs/protocol.md)."""
        f = Filter(account_id=account_id, limit=limit, flags=flags, timestamp_min=timestamp_min,
                   timestamp_max=timestamp_max)
        return self._run(self._read_flow(Operation.GET_ACCOUNT_TRANSFERS, f.encode(), 1, retry,
                                         deadline_s, timeout_ms))

    def history(self, account_id, *, flags=FilterFlags.DEBITS | FilterFlags.CREDITS,
                page=HISTORY_LIMIT_MAX, retry=True, deadline_s=None, timeout_ms=None):
        """Every transfer of an account, oldest first, in pages of ``page``."""
        return self._run(self._history_flow(account_id, flags, page, retry, deadline_s,
                                            timeout_ms))

    def status(self, *, retry=True, deadline_s=None, timeout_ms=None):
        """The StatusRecord of the shard (or router) that answers."""
        return self._run(self._first(self._read_flow(Operation.STATUS, b"", 0, retry, deadline_s,
                                                     timeout_ms)))

    def events_read(self, position=(0, 0, 0), limit=EVENTS_LIMIT_MAX, *, retry=True,
                    deadline_s=None, timeout_ms=None):
        """A shard's stored transfer records after ``position`` (incarnation,
        nonce, timestamp; (0, 0, 0): the beginning), oldest first, at most
        ``limit`` Events. Ask a shard, not a router. StatusError RESYNC: the
        shard does not know the position (docs/events.md)."""
        incarnation, nonce, timestamp = position
        body = codec.EventsRequest(incarnation, nonce, timestamp, limit).encode()
        return self._run(self._read_flow(Operation.EVENTS_READ, body, 1, retry, deadline_s,
                                         timeout_ms))

    def get_ring(self, *, retry=True, deadline_s=None, timeout_ms=None):
        """The Ring the server serves (shards, endpoints, CURVE keys)."""
        return self._run(self._ring_flow(retry, deadline_s, timeout_ms))

    def call(self, operation, records=(), *, timeout_ms=None, record_count=None):
        """One request, no retry: (reply Header, reply records). records is
        a list of records (ints for lookups) or bytes (a ring blob). Raises
        Timeout, BadReply or StatusError."""
        try:
            kind = codec.body_kind(Operation(operation), False)
        except (KeyError, ValueError):
            raise ValueError("operation %r is not one a client sends (1..8, 65)" % (operation,)) \
                from None
        body = codec.encode_body(kind, records)
        if record_count is None:
            record_count = 1 if kind == codec.BLOB else len(records)
        return self._run(self._once_flow(operation, body, record_count, timeout_ms))

    # Flows ---------------------------------------------------------------------

    def _times(self, deadline_s, timeout_ms):
        deadline_s = self.deadline_s if deadline_s is None else _positive("deadline_s",
                                                                          deadline_s)
        timeout_ms = self.timeout_ms if timeout_ms is None else int(_positive("timeout_ms",
                                                                              timeout_ms))
        return time.monotonic() + deadline_s, timeout_ms

    def _once_flow(self, operation, body, count, timeout_ms):
        outcome = yield ("call", operation, body, count, timeout_ms or self.timeout_ms)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _create_flow(self, operation, record_type, records, retry, deadline_s, timeout_ms):
        records = list(records)
        seen = set()
        for i, r in enumerate(records):
            if not isinstance(r, record_type):
                raise TypeError("record %d is a %s, expected a %s"
                                % (i, type(r).__name__, record_type.__name__))
            if r.id in seen:
                raise ValueError("id %#x appears twice in one call: the second would be "
                                 "answered as a retry of the first" % r.id)
            seen.add(r.id)
        encoded = [r.encode() for r in records]
        # Linked chains (docs/payments.md) stay whole: never split between
        # two requests, and sent again whole or not at all.
        chains = operation == Operation.CREATE_TRANSFERS
        linked = [chains and bool(r.flags & TransferFlags.LINKED) for r in records]
        end, timeout_ms = self._times(deadline_s, timeout_ms)
        results = [Result(i, ResultCode.OUTCOME_UNKNOWN, 0) for i in range(len(records))]
        for start, stop in _chunks(linked, self.batch_size):
            pending = list(range(start, stop))
            backoff_ms = RETRY_BACKOFF_MS_MIN
            cause = None
            while pending:
                left_ms = (end - time.monotonic()) * 1000.0
                if retry and left_ms <= 0:
                    raise Incomplete(results, pending + list(range(pending[-1] + 1,
                                                                   len(records))), cause)
                wait_ms = int(min(timeout_ms, max(left_ms, 1))) if retry else timeout_ms
                outcome = yield ("call", operation, b"".join(encoded[i] for i in pending),
                                 len(pending), wait_ms)
                if not isinstance(outcome, BaseException):
                    header, got = outcome
                    if len(got) != len(pending) or any(r.index != k for k, r in enumerate(got)):
                        outcome = BadReply("%d results for %d records, or out of order"
                                           % (len(got), len(pending)))
                pause = False
                if isinstance(outcome, BaseException):
                    if isinstance(outcome, StatusError):
                        outcome.results = results
                    if not retry or (isinstance(outcome, StatusError)
                                     and not outcome.status.is_retryable):
                        raise outcome
                    cause = outcome
                    pause = not isinstance(outcome, Timeout)  # a timeout has waited already
                else:
                    still = []
                    reopen = _chains_open(pending, linked, got)
                    for k, r in enumerate(got):
                        i = pending[k]
                        results[i] = Result(i, r.result, r.timestamp)
                        if retry and reopen[k]:
                            still.append(i)
                            cause = "result %s" % r.result.wire_name
                            pause = pause or r.result != ResultCode.OUTCOME_UNKNOWN
                    pending = still
                if pause and pending:
                    left_ms = (end - time.monotonic()) * 1000.0
                    yield ("sleep", min(backoff_ms, max(left_ms, 0)) / 1000.0)
                    backoff_ms = min(backoff_ms * 2, RETRY_BACKOFF_MS_MAX)
        return results

    def _read_flow(self, operation, body, count, retry, deadline_s, timeout_ms):
        """One read, retried (same request) after timeouts and retryable
        statuses until the deadline; then the last error is raised."""
        end, timeout_ms = self._times(deadline_s, timeout_ms)
        backoff_ms = RETRY_BACKOFF_MS_MIN
        while True:
            left_ms = (end - time.monotonic()) * 1000.0
            wait_ms = int(min(timeout_ms, max(left_ms, 1))) if retry else timeout_ms
            outcome = yield ("call", operation, body, count, wait_ms)
            if not isinstance(outcome, BaseException):
                return outcome[1]
            if not retry or (isinstance(outcome, StatusError) and not outcome.status.is_retryable):
                raise outcome
            left_ms = (end - time.monotonic()) * 1000.0
            if left_ms <= 0:
                raise outcome
            if not isinstance(outcome, Timeout):
                yield ("sleep", min(backoff_ms, left_ms) / 1000.0)
                backoff_ms = min(backoff_ms * 2, RETRY_BACKOFF_MS_MAX)

    def _lookup_flow(self, operation, ids, retry, deadline_s, timeout_ms):
        ids = list(ids)
        encoded = [codec.encode_id(i) for i in ids]
        out = []
        for start in range(0, len(ids), self.batch_size):
            chunk = encoded[start:start + self.batch_size]
            got = yield from self._read_flow(operation, b"".join(chunk), len(chunk), retry,
                                             deadline_s, timeout_ms)
            if len(got) != len(chunk):
                raise BadReply("%d records for %d ids" % (len(got), len(chunk)))
            out.extend(got)
        return out

    def _history_flow(self, account_id, flags, page, retry, deadline_s, timeout_ms):
        out, since = [], 0
        while True:
            f = Filter(account_id=account_id, limit=page, flags=flags, timestamp_min=since)
            got = yield from self._read_flow(Operation.GET_ACCOUNT_TRANSFERS, f.encode(), 1,
                                             retry, deadline_s, timeout_ms)
            out.extend(got)
            if len(got) < page:
                return out
            since = got[-1].timestamp + 1

    def _ring_flow(self, retry, deadline_s, timeout_ms):
        blob = yield from self._read_flow(Operation.GET_RING, b"", 0, retry, deadline_s,
                                          timeout_ms)
        return Ring.decode(blob)

    @staticmethod
    def _first(flow):
        records = yield from flow
        return records[0]

    # One request ---------------------------------------------------------------

    def _request(self, operation, body, count):
        request_id = next(self._ids)
        self.requests_sent += 1
        return request_id, Header(operation=operation, request_id=request_id,
                                  record_count=count).encode() + body

    def _decode_reply(self, frame, operation):
        """(Header, records) of a reply already matched by request id."""
        try:
            header = Header.decode(frame)
        except CodecError as e:
            raise BadReply(str(e)) from None
        self.epoch = header.epoch
        if header.status != 0:
            if len(frame) != codec.HEADER_SIZE:
                raise BadReply("an error reply with a body")
            raise StatusError(StatusCode(header.status), header.epoch)
        if header.operation != operation:
            raise BadReply("a reply for operation %d to operation %d"
                           % (header.operation, operation))
        try:
            return codec.decode_message(frame, is_reply=True)
        except CodecError as e:
            raise BadReply(str(e)) from None


def _chunks(linked, size):
    """(start, stop) pieces of at most size records, none of which ends
    inside a linked chain (linked[i]: record i is flagged linked)."""
    start, n = 0, len(linked)
    while start < n:
        stop = min(n, start + size)
        if stop < n:
            cut = stop
            while cut > start and linked[cut - 1]:
                cut -= 1  # record cut - 1 would leave a chain open
            if cut == start:
                raise ValueError("a linked chain at record %d is longer than a request "
                                 "(%d records)" % (start, size))
            stop = cut
        yield start, stop
        start = stop


def _chains_open(pending, linked, got):
    """Which records of a sent batch go again: an open outcome, and for a
    linked chain, all of its members when one member's own outcome is open
    (its linked_event_failed and linked_event_chain_open are final once the
    chain's failure is decided)."""
    chained = (ResultCode.LINKED_EVENT_FAILED, ResultCode.LINKED_EVENT_CHAIN_OPEN)
    reopen = [r.result.is_open for r in got]
    k = 0
    while k < len(pending):
        e = k
        while e + 1 < len(pending) and linked[pending[e]]:
            e += 1
        if e > k or linked[pending[k]]:
            whole = any(got[j].result.is_open and got[j].result not in chained
                        for j in range(k, e + 1))
            for j in range(k, e + 1):
                reopen[j] = whole
        k = e + 1
    return reopen


class Client(_Api):
    """A blocking client.

    >>> keys = Keypair.load("keys/private/app.key_secret")
    >>> with Client("tcp://127.0.0.1:7100", keypair=keys,
    ...             server_key="keys/router/router.key") as client:
    ...     results = client.create_accounts([Account(id=1, ledger=840, code=10)])

    endpoints: "tcp://host:port" or several (a list or comma-separated):
    requests go round-robin over the ones connected. keypair: speak CURVE
    with it (else plain TCP, which only an --insecure server takes);
    server_key: the default server key (a certificate path or 40 Z85
    characters); server_keys: {endpoint: key}, or a Ring (its shards' keys).
    timeout_ms: the wait for one reply (keep it above the router's deadline
    for creates: the default 8000 is); deadline_s: how long a call retries.
    """

    def __init__(self, endpoints, *, context=None, **kw):
        super().__init__(endpoints, **kw)
        import zmq
        self._zmq = zmq
        self.context = context or zmq.Context.instance()
        self.socket = _open_socket(zmq, self.context, self.keypair, self._curve)

    def close(self):
        self.socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, frame):
        """Sends a payload as it is (tests of bad input)."""
        self.socket.send(frame)

    def recv_raw(self, timeout_ms=None):
        """The next frame that arrives, or None after the timeout."""
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        if self.socket.poll(timeout_ms, self._zmq.POLLIN):
            return self.socket.recv()
        return None

    def _run(self, flow):
        try:
            step = next(flow)
            while True:
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = flow.send(None)
                    continue
                try:
                    outcome = self._call_once(*step[1:])
                except (TransportError, StatusError) as e:
                    outcome = e
                step = flow.send(outcome)
        except StopIteration as stop:
            return stop.value

    def _call_once(self, operation, body, count, timeout_ms):
        zmq = self._zmq
        request_id, frame = self._request(operation, body, count)
        deadline = time.monotonic() + timeout_ms / 1000.0
        self.socket.setsockopt(zmq.SNDTIMEO, max(int(timeout_ms), 1))
        try:
            self.socket.send(frame)
        except zmq.Again:
            raise Timeout("nothing sent: no connection within %d ms" % timeout_ms) from None
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or not self.socket.poll(left_ms, zmq.POLLIN):
                raise Timeout("no reply to %s within %d ms"
                              % (Operation(operation).wire_name, timeout_ms))
            reply = self.socket.recv()
            if len(reply) < codec.HEADER_SIZE or \
                    Header.decode(reply).request_id != request_id:
                self.stale_replies += 1
                continue
            return self._decode_reply(reply, operation)


def _open_socket(zmq, context, keypair, curve):
    """A DEALER connected to every endpoint, pinning each one's server key.
    IMMEDIATE: a request waits for a live connection instead of queueing
    on one that is down, so a dead router does not swallow it."""
    socket = context.socket(zmq.DEALER)
    try:
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.IMMEDIATE, 1)
        for endpoint, key in curve:
            if key is not None:
                socket.curve_publickey = keypair.public
                socket.curve_secretkey = keypair.secret
                socket.curve_serverkey = key
            try:
                socket.connect(endpoint)
            except zmq.ZMQError as e:
                raise ValueError("cannot connect to %r: %s" % (endpoint, e)) from None
    except BaseException:
        socket.close(0)
        raise
    return socket
