"""rlclient: a Python client of the ringledger wire protocol, version 1.

Written from docs/protocol.md alone, as an independent second
implementation: the protocol test checks it against the hex vectors of the
document and against real shards and routers, so the document, the C codec
and this module cannot drift apart unnoticed.

Layout (docs/protocol.md): every message is one ZeroMQ frame (after any
routing envelope) holding a 32-byte little-endian header and record_count
fixed-size little-endian records. Ids are 128-bit unsigned integers here;
on the wire they are 16 little-endian bytes (lo = bytes 0..7, hi = bytes
8..15).

    client = Client("tcp://127.0.0.1:7100")
    results = client.create_accounts([Account(id=1, ledger=700, code=10)])
    assert results[0].result == RESULTS["ok"]

Errors are data: a create returns one Result per record. A reply whose
message-level status is not ok raises StatusError (with .status, the
number); no reply within the timeout raises Timeout (the outcome of a
create is then unknown: retry with the same ids).

Security (docs/protocol.md, "Security"): a cluster speaks CurveZMQ. Give the
client its certificate and the server's public key, as the C library does:

    rlclient.set_curve("keys/private/app.key_secret", "keys/router/router.key")
    rlclient.add_server_key("tcp://127.0.0.1:7101", "keys/shard/s1.key")

Certificates are czmq zcert files: ZPL text whose "curve" section holds
public-key (and, in a secret file, secret-key) as 40 Z85 characters.
Without set_curve the client speaks plain TCP (a server run --insecure).
"""

import dataclasses
import itertools
import random
import struct
import time

MAGIC = 0x67646C72  # the bytes 72 6c 64 67, "rldg"
VERSION = 1
HEADER_SIZE = 32
ACCOUNT_SIZE = 128
TRANSFER_SIZE = 128
ID_SIZE = 16
RESULT_SIZE = 16
FILTER_SIZE = 64
STATUS_SIZE = 256
BATCH_RECORDS_MAX = 8190
MESSAGE_SIZE_MAX = HEADER_SIZE + BATCH_RECORDS_MAX * TRANSFER_SIZE
RING_BLOB_SIZE_MAX = 4 << 20
ID_INT_MAX = (1 << 128) - 1

OPS = {
    "create_accounts": 1,
    "create_transfers": 2,
    "lookup_accounts": 3,
    "lookup_transfers": 4,
    "get_account_transfers": 5,
    "status": 6,
    "load_ring": 7,
    "get_ring": 8,
}
OP_NAMES = {v: k for k, v in OPS.items()}

STATUS = {
    "ok": 0,
    "malformed": 1,
    "bad_magic": 2,
    "bad_version": 3,
    "unknown_operation": 4,
    "too_many_records": 5,
    "busy": 6,
    "storage_error": 7,
    "epoch_not_newer": 8,
    "bad_ring": 9,
    "bad_filter": 10,
    "unavailable": 11,
    "timeout": 12,
    "duplicate_id": 13,
    "wrong_shard": 14,
    "frozen": 15,
    "unauthorized": 16,
    "epoch_too_far": 17,
    "migration_refused": 18,
}
STATUS_NAMES = {v: k for k, v in STATUS.items()}

# Per-record result codes of create_accounts and create_transfers, and
# whether each burns the id ("no" = a retry with the same id may apply it).
RESULTS = {
    "ok": 0,
    "exists": 1,
    "wrong_shard": 2,
    "busy": 3,
    "aborted": 4,
    "outcome_unknown": 5,
    "in_progress": 6,
    "in_doubt": 7,
    "frozen": 8,
    "storage_error": 9,
    "linked_event_failed": 10,
    "linked_event_chain_open": 11,
    "unauthorized": 12,
    "id_must_not_be_zero": 16,
    "id_must_not_be_int_max": 17,
    "exists_with_different_flags": 20,
    "exists_with_different_debit_account_id": 21,
    "exists_with_different_credit_account_id": 22,
    "exists_with_different_amount": 23,
    "exists_with_different_pending_id": 24,
    "exists_with_different_user_data_128": 25,
    "exists_with_different_user_data_64": 26,
    "exists_with_different_user_data_32": 27,
    "exists_with_different_timeout": 28,
    "exists_with_different_ledger": 29,
    "exists_with_different_code": 30,
    "timestamp_must_be_zero": 40,
    "reserved_field": 41,
    "reserved_flag": 42,
    "flags_are_mutually_exclusive": 43,
    "debit_account_id_must_not_be_zero": 44,
    "debit_account_id_must_not_be_int_max": 45,
    "credit_account_id_must_not_be_zero": 46,
    "credit_account_id_must_not_be_int_max": 47,
    "accounts_must_be_different": 48,
    "pending_id_must_be_zero": 49,
    "pending_id_must_not_be_zero": 50,
    "pending_id_must_not_be_int_max": 51,
    "pending_id_must_be_different": 52,
    "timeout_reserved_for_pending_transfer": 53,
    "amount_must_not_be_zero": 54,
    "ledger_must_not_be_zero": 55,
    "code_must_not_be_zero": 56,
    "not_supported": 57,
    "debit_account_not_found": 60,
    "credit_account_not_found": 61,
    "accounts_must_have_the_same_ledger": 64,
    "transfer_must_have_the_same_ledger_as_accounts": 65,
    "pending_transfer_not_found": 68,
    "pending_transfer_not_pending": 69,
    "pending_transfer_has_different_debit_account_id": 70,
    "pending_transfer_has_different_credit_account_id": 71,
    "pending_transfer_has_different_ledger": 72,
    "pending_transfer_has_different_code": 73,
    "exceeds_pending_transfer_amount": 74,
    "pending_transfer_has_different_amount": 75,
    "pending_transfer_already_posted": 76,
    "pending_transfer_already_voided": 77,
    "pending_transfer_expired": 78,
    "overflows_debits_pending": 80,
    "overflows_credits_pending": 81,
    "overflows_debits_posted": 82,
    "overflows_credits_posted": 83,
    "overflows_debits": 84,
    "overflows_credits": 85,
    "overflows_timeout": 86,
    "exceeds_credits": 87,
    "exceeds_debits": 88,
    "debits_pending_must_be_zero": 100,
    "debits_posted_must_be_zero": 101,
    "credits_pending_must_be_zero": 102,
    "credits_posted_must_be_zero": 103,
}
RESULT_NAMES = {v: k for k, v in RESULTS.items()}


def result_burns_id(code):
    """False when a retry with the same id may still apply the record:
    infrastructure codes (2..15), id and field validation, and any code
    this version does not know."""
    if code not in RESULT_NAMES:
        return False
    if 2 <= code <= 15 or 16 <= code <= 17 or 40 <= code <= 57 or 100 <= code <= 103:
        return False
    return True


def result_name(code):
    return RESULT_NAMES.get(code, "unknown")


def status_name(code):
    return STATUS_NAMES.get(code, "unknown")


ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS = 0x0002
ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS = 0x0004
FILTER_DEBITS = 0x1
FILTER_CREDITS = 0x2
FILTER_REVERSED = 0x4

DURABILITY = {1: "sync", 2: "nosync (benchmark only)", 3: "sync, manual WAL flush"}


def _split(value):
    """A u128 as (lo, hi) u64 halves."""
    if not 0 <= value <= ID_INT_MAX:
        raise ValueError("id out of range: %r" % (value,))
    return value & 0xFFFFFFFFFFFFFFFF, value >> 64


def _join(lo, hi):
    return lo | (hi << 64)


# Header ---------------------------------------------------------------------

_HEADER = struct.Struct("<IHHQIIQ")
assert _HEADER.size == HEADER_SIZE


@dataclasses.dataclass
class Header:
    operation: int
    request_id: int
    record_count: int = 0
    status: int = 0
    epoch: int = 0
    magic: int = MAGIC
    version: int = VERSION

    def encode(self):
        return _HEADER.pack(self.magic, self.version, self.operation, self.request_id,
                            self.record_count, self.status, self.epoch)

    @classmethod
    def decode(cls, data):
        if len(data) < HEADER_SIZE:
            raise ValueError("frame shorter than a header: %d bytes" % len(data))
        magic, version, operation, request_id, count, status, epoch = \
            _HEADER.unpack_from(data, 0)
        return cls(operation=operation, request_id=request_id, record_count=count,
                   status=status, epoch=epoch, magic=magic, version=version)


# Records --------------------------------------------------------------------

# id(16) debits_pending debits_posted credits_pending credits_posted
# debits_reserved credits_reserved user_data_128(16) user_data_64
# user_data_32 ledger code flags reserved timestamp reserved2(2 x u64)
_ACCOUNT = struct.Struct("<QQ QQQQQQ QQ Q I I H H I Q QQ")
assert _ACCOUNT.size == ACCOUNT_SIZE


@dataclasses.dataclass
class Account:
    id: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    debits_reserved: int = 0
    credits_reserved: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    ledger: int = 0
    code: int = 0
    flags: int = 0
    reserved: int = 0
    timestamp: int = 0
    reserved2: tuple = (0, 0)

    def encode(self):
        return _ACCOUNT.pack(*_split(self.id), self.debits_pending, self.debits_posted,
                             self.credits_pending, self.credits_posted, self.debits_reserved,
                             self.credits_reserved, *_split(self.user_data_128),
                             self.user_data_64, self.user_data_32, self.ledger, self.code,
                             self.flags, self.reserved, self.timestamp, *self.reserved2)

    @classmethod
    def decode(cls, data, offset=0):
        f = _ACCOUNT.unpack_from(data, offset)
        return cls(id=_join(f[0], f[1]), debits_pending=f[2], debits_posted=f[3],
                   credits_pending=f[4], credits_posted=f[5], debits_reserved=f[6],
                   credits_reserved=f[7], user_data_128=_join(f[8], f[9]), user_data_64=f[10],
                   user_data_32=f[11], ledger=f[12], code=f[13], flags=f[14], reserved=f[15],
                   timestamp=f[16], reserved2=(f[17], f[18]))

    @property
    def found(self):
        return self.timestamp != 0

    @property
    def balance(self):
        """credits posted minus debits posted (may be negative)."""
        return self.credits_posted - self.debits_posted


# id debit_account_id credit_account_id amount pending_id user_data_128
# user_data_64 user_data_32 timeout ledger code flags timestamp reserved
_TRANSFER = struct.Struct("<QQ QQ QQ Q QQ QQ Q I I I H H Q Q")
assert _TRANSFER.size == TRANSFER_SIZE


@dataclasses.dataclass
class Transfer:
    id: int = 0
    debit_account_id: int = 0
    credit_account_id: int = 0
    amount: int = 0
    pending_id: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    timeout: int = 0
    ledger: int = 0
    code: int = 0
    flags: int = 0
    timestamp: int = 0
    reserved: int = 0

    def encode(self):
        return _TRANSFER.pack(*_split(self.id), *_split(self.debit_account_id),
                              *_split(self.credit_account_id), self.amount,
                              *_split(self.pending_id), *_split(self.user_data_128),
                              self.user_data_64, self.user_data_32, self.timeout, self.ledger,
                              self.code, self.flags, self.timestamp, self.reserved)

    @classmethod
    def decode(cls, data, offset=0):
        f = _TRANSFER.unpack_from(data, offset)
        return cls(id=_join(f[0], f[1]), debit_account_id=_join(f[2], f[3]),
                   credit_account_id=_join(f[4], f[5]), amount=f[6],
                   pending_id=_join(f[7], f[8]), user_data_128=_join(f[9], f[10]),
                   user_data_64=f[11], user_data_32=f[12], timeout=f[13], ledger=f[14],
                   code=f[15], flags=f[16], timestamp=f[17], reserved=f[18])

    @property
    def found(self):
        return self.timestamp != 0


_RESULT = struct.Struct("<IIQ")
assert _RESULT.size == RESULT_SIZE


@dataclasses.dataclass
class Result:
    index: int = 0
    result: int = 0
    timestamp: int = 0

    def encode(self):
        return _RESULT.pack(self.index, self.result, self.timestamp)

    @classmethod
    def decode(cls, data, offset=0):
        return cls(*_RESULT.unpack_from(data, offset))

    @property
    def name(self):
        return result_name(self.result)


_ID = struct.Struct("<QQ")
assert _ID.size == ID_SIZE


def encode_id(value):
    return _ID.pack(*_split(value))


def decode_id(data, offset=0):
    lo, hi = _ID.unpack_from(data, offset)
    return _join(lo, hi)


_FILTER = struct.Struct("<QQ Q Q I I QQQ")
assert _FILTER.size == FILTER_SIZE


@dataclasses.dataclass
class Filter:
    account_id: int = 0
    timestamp_min: int = 0
    timestamp_max: int = 0
    limit: int = 8190
    flags: int = FILTER_DEBITS | FILTER_CREDITS
    reserved: tuple = (0, 0, 0)

    def encode(self):
        return _FILTER.pack(*_split(self.account_id), self.timestamp_min, self.timestamp_max,
                            self.limit, self.flags, *self.reserved)

    @classmethod
    def decode(cls, data, offset=0):
        f = _FILTER.unpack_from(data, offset)
        return cls(account_id=_join(f[0], f[1]), timestamp_min=f[2], timestamp_max=f[3],
                   limit=f[4], flags=f[5], reserved=tuple(f[6:9]))


# name(32) epoch accounts transfers requests commits durability(u32)
# ring_shards(u32) inflight in_doubt last_timestamp dropped malformed
# wrong_shard pid(u32) state(u32) uptime_ms store_keys_written
# store_bytes_written wal_bytes wal_syncs checkpoints alarms deadline_ms(u32)
# prepare_timeout_ms(u32) deadline_errors arcs_unreceived insecure(u32)
# keys(u32) handshakes_refused unauthorized epoch_jumps_refused reserved
_STATUS = struct.Struct("<32s QQQQQ II QQQQQQ II Q QQQQQ Q II QQ II QQ QQ")
assert _STATUS.size == STATUS_SIZE


@dataclasses.dataclass
class Status:
    name: str = ""
    epoch: int = 0
    accounts: int = 0
    transfers: int = 0
    requests: int = 0
    commits: int = 0
    durability: int = 0
    ring_shards: int = 0
    inflight: int = 0
    in_doubt: int = 0
    last_timestamp: int = 0
    dropped: int = 0
    malformed: int = 0
    wrong_shard: int = 0
    pid: int = 0
    state: int = 0
    uptime_ms: int = 0
    store_keys_written: int = 0
    store_bytes_written: int = 0
    wal_bytes: int = 0
    wal_syncs: int = 0
    checkpoints: int = 0
    alarms: int = 0
    deadline_ms: int = 0
    prepare_timeout_ms: int = 0
    deadline_errors: int = 0
    arcs_unreceived: int = 0
    insecure: int = 0
    keys: int = 0
    handshakes_refused: int = 0
    unauthorized: int = 0
    epoch_jumps_refused: int = 0
    reserved: int = 0

    def encode(self):
        name = self.name.encode("utf-8")
        if len(name) > 31:
            raise ValueError("status name longer than 31 bytes")
        return _STATUS.pack(name, self.epoch, self.accounts, self.transfers, self.requests,
                            self.commits, self.durability, self.ring_shards, self.inflight,
                            self.in_doubt, self.last_timestamp, self.dropped, self.malformed,
                            self.wrong_shard, self.pid, self.state, self.uptime_ms,
                            self.store_keys_written, self.store_bytes_written, self.wal_bytes,
                            self.wal_syncs, self.checkpoints, self.alarms, self.deadline_ms,
                            self.prepare_timeout_ms, self.deadline_errors, self.arcs_unreceived,
                            self.insecure, self.keys, self.handshakes_refused, self.unauthorized,
                            self.epoch_jumps_refused, self.reserved)

    @classmethod
    def decode(cls, data, offset=0):
        f = _STATUS.unpack_from(data, offset)
        name = f[0][:31].split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(name, *f[1:33])


# Messages -------------------------------------------------------------------

# Body kinds per operation: (request, reply). "blob" is one opaque body of
# 1..RING_BLOB_SIZE_MAX bytes with record_count 1; None is no body.
_BODY = {
    1: (Account, Result),
    2: (Transfer, Result),
    3: ("id", Account),
    4: ("id", Transfer),
    5: (Filter, Transfer),
    6: (None, Status),
    7: ("blob", None),
    8: (None, "blob"),
}
_SIZES = {Account: ACCOUNT_SIZE, Transfer: TRANSFER_SIZE, Result: RESULT_SIZE,
          Filter: FILTER_SIZE, Status: STATUS_SIZE, "id": ID_SIZE}


def body_kind(operation, is_reply):
    """The record class (or "id", "blob", None) of a body; KeyError for an
    operation this version does not serve."""
    return _BODY[operation][1 if is_reply else 0]


def encode_body(kind, records):
    if kind is None:
        return b""
    if kind == "blob":
        return bytes(records)
    if kind == "id":
        return b"".join(encode_id(r) for r in records)
    return b"".join(r.encode() for r in records)


def decode_body(kind, data, count):
    """Records of a body, after checking its size against the count."""
    if kind is None:
        if data:
            raise ValueError("body where none belongs: %d bytes" % len(data))
        return []
    if kind == "blob":
        if count != 1 or not 1 <= len(data) <= RING_BLOB_SIZE_MAX:
            raise ValueError("bad blob: count %d, %d bytes" % (count, len(data)))
        return data
    size = _SIZES[kind]
    if len(data) != count * size:
        raise ValueError("body of %d bytes for %d records of %d" % (len(data), count, size))
    if kind == "id":
        return [decode_id(data, i * size) for i in range(count)]
    return [kind.decode(data, i * size) for i in range(count)]


def encode_message(header, records=(), is_reply=False):
    """Header + body. record_count is taken from the records (1 for a blob)
    unless the header's is already set. A header with a non-ok status, or
    an operation this version does not serve, gets no body."""
    kind = None
    if header.status == 0 and header.operation in _BODY:
        kind = body_kind(header.operation, is_reply)
    body = encode_body(kind, records) if kind is not None else b""
    if header.record_count == 0 and body:
        header = dataclasses.replace(
            header, record_count=1 if kind == "blob" else len(records))
    return header.encode() + body


def decode_message(frame, is_reply):
    """(Header, records). A header with a non-ok status carries no body.
    Raises ValueError when the frame breaks the layout."""
    header = Header.decode(frame)
    body = frame[HEADER_SIZE:]
    if header.magic != MAGIC:
        raise ValueError("bad magic 0x%08x" % header.magic)
    if header.status != 0 or header.operation not in _BODY:
        if body:
            raise ValueError("error reply or unknown operation with a body")
        return header, []
    return header, decode_body(body_kind(header.operation, is_reply), body, header.record_count)


# Client ---------------------------------------------------------------------

class Timeout(Exception):
    """No reply within the timeout: the outcome of a create is unknown;
    retry with the same ids."""


class StatusError(Exception):
    """The reply's message-level status is not ok: nothing was applied
    (storage_error: outcome unknown)."""

    def __init__(self, status, header):
        super().__init__("%s (%d)" % (status_name(status), status))
        self.status = status
        self.header = header


# Security ---------------------------------------------------------------------

CURVE = {"cert": None, "default_key": None, "keys": {}}


def read_cert(path):
    """(public, secret) Z85 keys (bytes) of a zcert file; secret is None in a
    public certificate."""
    public = secret = None
    with open(path) as f:
        for line in f:
            words = line.split("=", 1)
            if len(words) != 2:
                continue
            name, value = words[0].strip(), words[1].strip().strip('"')
            if name == "public-key" and len(value) == 40:
                public = value.encode()
            elif name == "secret-key" and len(value) == 40:
                secret = value.encode()
    if public is None:
        raise ValueError("%s holds no public-key" % path)
    return public, secret


def server_key(spec):
    """A server's public key: the path of a certificate file, or 40 Z85 characters."""
    try:
        return read_cert(spec)[0]
    except OSError:
        if len(spec) == 40:
            return spec.encode() if isinstance(spec, str) else spec
        raise


def set_curve(cert_path, default_server_key=None):
    """Every client made afterwards speaks CURVE with this certificate."""
    public, secret = read_cert(cert_path)
    if secret is None:
        raise ValueError("%s is not a secret certificate" % cert_path)
    CURVE["cert"] = (public, secret)
    CURVE["default_key"] = server_key(default_server_key) if default_server_key else None


def add_server_key(endpoint, key):
    CURVE["keys"][endpoint] = server_key(key)


def clear_curve():
    CURVE.update(cert=None, default_key=None, keys={})


class Client:
    """One DEALER socket connected to one or more endpoints (comma-separated);
    each call sends one request and waits for the reply with its request id.
    Replies to earlier calls that timed out are recognised and dropped."""

    def __init__(self, endpoints, timeout_ms=8000, context=None):
        import zmq  # only the client needs pyzmq; the codec above does not
        self._zmq = zmq
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        cert = CURVE["cert"]
        for endpoint in endpoints.split(","):
            if cert:
                key = CURVE["keys"].get(endpoint, CURVE["default_key"])
                if key is None:
                    self.socket.close(0)
                    raise ValueError("no server key for %s" % endpoint)
                self.socket.curve_publickey, self.socket.curve_secretkey = cert
                self.socket.curve_serverkey = key
            self.socket.connect(endpoint)
        self.timeout_ms = timeout_ms
        self._ids = itertools.count(random.getrandbits(40) << 20 | 1)
        self.epoch = 0          # epoch of the last reply
        self.stale_replies = 0

    def close(self):
        self.socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, frame):
        self.socket.send(frame)

    def recv_raw(self, timeout_ms=None):
        """The next reply frame, or None after the timeout."""
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        if self.socket.poll(timeout_ms, self._zmq.POLLIN):
            return self.socket.recv()
        return None

    def call(self, operation, records=(), timeout_ms=None, record_count=None):
        """Sends one request; returns (reply header, reply records). Raises
        Timeout, StatusError (non-ok status) or ValueError (bad reply)."""
        request_id = next(self._ids)
        kind = body_kind(operation, False)
        body = encode_body(kind, records)
        if record_count is None:
            record_count = 1 if kind == "blob" else len(records)
        header = Header(operation=operation, request_id=request_id, record_count=record_count)
        self.socket.send(header.encode() + body)
        timeout_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or not self.socket.poll(left_ms, self._zmq.POLLIN):
                raise Timeout("no reply to %s within %d ms" % (OP_NAMES.get(operation),
                                                                timeout_ms))
            frame = self.socket.recv()
            reply = Header.decode(frame)
            if reply.request_id != request_id:
                self.stale_replies += 1
                continue
            self.epoch = reply.epoch
            if reply.status != 0:
                raise StatusError(reply.status, reply)
            if reply.operation != operation:
                raise ValueError("reply for operation %d to %d" % (reply.operation, operation))
            return decode_message(frame, is_reply=True)

    def create_accounts(self, accounts, **kw):
        _, results = self.call(OPS["create_accounts"], accounts, **kw)
        return self._check_results(results, len(accounts))

    def create_transfers(self, transfers, **kw):
        _, results = self.call(OPS["create_transfers"], transfers, **kw)
        return self._check_results(results, len(transfers))

    def lookup_accounts(self, ids, **kw):
        _, accounts = self.call(OPS["lookup_accounts"], list(ids), **kw)
        return accounts

    def lookup_transfers(self, ids, **kw):
        _, transfers = self.call(OPS["lookup_transfers"], list(ids), **kw)
        return transfers

    def get_account_transfers(self, account_id, limit=8190, flags=FILTER_DEBITS | FILTER_CREDITS,
                              timestamp_min=0, timestamp_max=0, **kw):
        f = Filter(account_id=account_id, limit=limit, flags=flags,
                   timestamp_min=timestamp_min, timestamp_max=timestamp_max)
        _, transfers = self.call(OPS["get_account_transfers"], [f], **kw)
        return transfers

    def history(self, account_id, **kw):
        """Every transfer of an account, oldest first, paging as the doc says."""
        out, since = [], 0
        while True:
            page = self.get_account_transfers(account_id, timestamp_min=since, **kw)
            out.extend(page)
            if len(page) < kw.get("limit", 8190):
                return out
            since = page[-1].timestamp + 1

    def status(self, **kw):
        _, records = self.call(OPS["status"], (), **kw)
        return records[0]

    def get_ring(self, **kw):
        _, blob = self.call(OPS["get_ring"], (), **kw)
        return blob

    def load_ring(self, blob, **kw):
        header, _ = self.call(OPS["load_ring"], blob, **kw)
        return header.epoch

    @staticmethod
    def _check_results(results, count):
        if len(results) != count or any(r.index != i for i, r in enumerate(results)):
            raise ValueError("results do not match the request: %r" % (results,))
        return results
