"""Records and messages of the wire protocol, as typed dataclasses.

Layout (docs/protocol.md): every message is one ZeroMQ frame (after any
routing envelope) holding a 32-byte little-endian header and record_count
fixed-size little-endian records. Ids and other u128 fields are Python
ints here (a ``uuid.UUID`` is accepted and stored as its ``int``, the
number its text spells, which is the protocol's UUID convention); on the
wire they are 16 little-endian bytes.

Records are frozen: a record is built valid or not at all. Every field is
checked for its type and range when the record is made (ValueError or
TypeError naming the field); what the server checks (ids not zero, flags
not reserved, ...) is left to the server, whose answer is a ResultCode.
"""

import dataclasses
import struct
import uuid
from typing import ClassVar, List, Tuple

from .errors import CodecError
from .protocol import (ACCOUNT_SIZE, EVENT_SIZE, EVENTS_LIMIT_MAX, EVENTS_REQ_SIZE, FILTER_SIZE,
                       HEADER_SIZE, ID_SIZE, MAGIC, REPL_SIZE, RESULT_SIZE, RING_BLOB_SIZE_MAX,
                       SHARD_NAME_SIZE_MAX, STATUS_SIZE, TRANSFER_SIZE, VERSION, AccountFlags,
                       Burns, Durability, FilterFlags, Operation, ResultCode, ShardState,
                       TransferFlags)

_BITS = {"u16": 16, "u32": 32, "u64": 64, "u128": 128}
_U64 = (1 << 64) - 1


def _check_int(owner, name, kind, value):
    if isinstance(value, uuid.UUID) and kind == "u128":
        return value.int
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s.%s must be an int (%s), not %s"
                        % (owner, name, kind, type(value).__name__))
    if not 0 <= value < (1 << _BITS[kind]):
        raise ValueError("%s.%s = %d does not fit %s (0..2**%d-1)"
                         % (owner, name, value, kind, _BITS[kind]))
    return value


def _validate(record):
    """Checks and normalises every field named in the record's _KINDS."""
    owner = type(record).__name__
    for name, kind in record._KINDS:
        value = getattr(record, name)
        if isinstance(kind, tuple):  # a fixed tuple of u64 words
            if not isinstance(value, (tuple, list)) or len(value) != kind[1]:
                raise ValueError("%s.%s must be %d ints" % (owner, name, kind[1]))
            value = tuple(_check_int(owner, "%s[%d]" % (name, i), kind[0], v)
                          for i, v in enumerate(value))
        elif isinstance(kind, type):  # an enum of the protocol
            bits = _BITS["u32" if kind in (FilterFlags, ResultCode, Durability,
                                           ShardState) else "u16"]
            value = kind(_check_int(owner, name, "u%d" % bits, value))
        else:
            value = _check_int(owner, name, kind, value)
        object.__setattr__(record, name, value)


def _split(value):
    return value & _U64, value >> 64


def _join(lo, hi):
    return lo | (hi << 64)


def _need(data, offset, size, what):
    if offset < 0 or len(data) - offset < size:
        raise CodecError("%s needs %d bytes at offset %d, the buffer has %d"
                         % (what, size, offset, len(data)))


# Header ---------------------------------------------------------------------

_HEADER = struct.Struct("<IHHQIIQ")
assert _HEADER.size == HEADER_SIZE


@dataclasses.dataclass(frozen=True)
class Header:
    """The 32-byte header of every request and reply. ``operation`` and
    ``status`` stay plain ints here: a header may carry any value."""

    operation: int
    request_id: int
    record_count: int = 0
    status: int = 0
    epoch: int = 0
    magic: int = MAGIC
    version: int = VERSION

    _KINDS: ClassVar = (("operation", "u16"), ("request_id", "u64"), ("record_count", "u32"),
                        ("status", "u32"), ("epoch", "u64"), ("magic", "u32"),
                        ("version", "u16"))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _HEADER.pack(self.magic, self.version, self.operation, self.request_id,
                            self.record_count, self.status, self.epoch)

    @classmethod
    def decode(cls, data, offset=0) -> "Header":
        _need(data, offset, HEADER_SIZE, "a header")
        magic, version, operation, request_id, count, status, epoch = \
            _HEADER.unpack_from(data, offset)
        return cls(operation=operation, request_id=request_id, record_count=count,
                   status=status, epoch=epoch, magic=magic, version=version)


# Records --------------------------------------------------------------------

# id(16) debits_pending debits_posted credits_pending credits_posted
# debits_reserved credits_reserved user_data_128(16) user_data_64
# user_data_32 ledger code flags reserved timestamp reserved2(2 x u64)
_ACCOUNT = struct.Struct("<QQ QQQQQQ QQ Q I I H H I Q QQ")
assert _ACCOUNT.size == ACCOUNT_SIZE


@dataclasses.dataclass(frozen=True)
class Account:
    """An account (128 bytes). To create one, set id, ledger, code and
    flags; the balances and the timestamp are the server's."""

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
    flags: AccountFlags = AccountFlags(0)
    reserved: int = 0
    timestamp: int = 0
    reserved2: Tuple[int, int] = (0, 0)

    _KINDS: ClassVar = (("id", "u128"), ("debits_pending", "u64"), ("debits_posted", "u64"),
                        ("credits_pending", "u64"), ("credits_posted", "u64"),
                        ("debits_reserved", "u64"), ("credits_reserved", "u64"),
                        ("user_data_128", "u128"), ("user_data_64", "u64"),
                        ("user_data_32", "u32"), ("ledger", "u32"), ("code", "u16"),
                        ("flags", AccountFlags), ("reserved", "u32"), ("timestamp", "u64"),
                        ("reserved2", ("u64", 2)))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _ACCOUNT.pack(*_split(self.id), self.debits_pending, self.debits_posted,
                             self.credits_pending, self.credits_posted, self.debits_reserved,
                             self.credits_reserved, *_split(self.user_data_128),
                             self.user_data_64, self.user_data_32, self.ledger, self.code,
                             self.flags, self.reserved, self.timestamp, *self.reserved2)

    @classmethod
    def decode(cls, data, offset=0) -> "Account":
        _need(data, offset, ACCOUNT_SIZE, "an account")
        f = _ACCOUNT.unpack_from(data, offset)
        return cls(id=_join(f[0], f[1]), debits_pending=f[2], debits_posted=f[3],
                   credits_pending=f[4], credits_posted=f[5], debits_reserved=f[6],
                   credits_reserved=f[7], user_data_128=_join(f[8], f[9]), user_data_64=f[10],
                   user_data_32=f[11], ledger=f[12], code=f[13], flags=f[14], reserved=f[15],
                   timestamp=f[16], reserved2=(f[17], f[18]))

    @property
    def found(self) -> bool:
        """False for the record a lookup answers for an unknown id."""
        return self.timestamp != 0

    @property
    def balance(self) -> int:
        """credits posted minus debits posted (negative for an operator)."""
        return self.credits_posted - self.debits_posted


# id debit_account_id credit_account_id amount pending_id user_data_128
# user_data_64 user_data_32 timeout ledger code flags timestamp reserved
_TRANSFER = struct.Struct("<QQ QQ QQ Q QQ QQ Q I I I H H Q Q")
assert _TRANSFER.size == TRANSFER_SIZE


@dataclasses.dataclass(frozen=True)
class Transfer:
    """A transfer (128 bytes). The id is the idempotency key, scoped to the
    debit account: keep it until the outcome is definite, never reuse it
    with another debit account."""

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
    flags: TransferFlags = TransferFlags(0)
    timestamp: int = 0
    reserved: int = 0

    _KINDS: ClassVar = (("id", "u128"), ("debit_account_id", "u128"),
                        ("credit_account_id", "u128"), ("amount", "u64"), ("pending_id", "u128"),
                        ("user_data_128", "u128"), ("user_data_64", "u64"),
                        ("user_data_32", "u32"), ("timeout", "u32"), ("ledger", "u32"),
                        ("code", "u16"), ("flags", TransferFlags), ("timestamp", "u64"),
                        ("reserved", "u64"))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _TRANSFER.pack(*_split(self.id), *_split(self.debit_account_id),
                              *_split(self.credit_account_id), self.amount,
                              *_split(self.pending_id), *_split(self.user_data_128),
                              self.user_data_64, self.user_data_32, self.timeout, self.ledger,
                              self.code, self.flags, self.timestamp, self.reserved)

    @classmethod
    def post_pending(cls, id, pending, amount=0, **fields) -> "Transfer":
        """A post of ``pending`` (the pending Transfer): amount 0 posts all
        of it, a smaller amount posts that much and releases the rest. The
        credit account, ledger and code are left 0: the pending transfer's."""
        return cls(id=id, debit_account_id=pending.debit_account_id, pending_id=pending.id,
                   amount=amount, flags=TransferFlags.POST_PENDING_TRANSFER, **fields)

    @classmethod
    def void_pending(cls, id, pending, **fields) -> "Transfer":
        """A void of ``pending``: releases all of it."""
        return cls(id=id, debit_account_id=pending.debit_account_id, pending_id=pending.id,
                   flags=TransferFlags.VOID_PENDING_TRANSFER, **fields)

    @property
    def is_pending(self) -> bool:
        """Flagged pending: it reserved its amount, posted nothing."""
        return bool(self.flags & TransferFlags.PENDING)

    @property
    def posts(self) -> bool:
        """Does this record move posted balances when it is ok? A pending
        transfer and a void do not; a post moves the amount it holds."""
        return not self.flags & (TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER)

    @classmethod
    def decode(cls, data, offset=0) -> "Transfer":
        _need(data, offset, TRANSFER_SIZE, "a transfer")
        f = _TRANSFER.unpack_from(data, offset)
        return cls(id=_join(f[0], f[1]), debit_account_id=_join(f[2], f[3]),
                   credit_account_id=_join(f[4], f[5]), amount=f[6],
                   pending_id=_join(f[7], f[8]), user_data_128=_join(f[9], f[10]),
                   user_data_64=f[11], user_data_32=f[12], timeout=f[13], ledger=f[14],
                   code=f[15], flags=f[16], timestamp=f[17], reserved=f[18])

    @property
    def found(self) -> bool:
        return self.timestamp != 0


_RESULT = struct.Struct("<IIQ")
assert _RESULT.size == RESULT_SIZE


@dataclasses.dataclass(frozen=True)
class Result:
    """The result of one record of a create: ``index`` is its position in
    the request, ``timestamp`` the one assigned (ok) or the original's
    (exists)."""

    index: int = 0
    result: ResultCode = ResultCode.OK
    timestamp: int = 0

    _KINDS: ClassVar = (("index", "u32"), ("result", ResultCode), ("timestamp", "u64"))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _RESULT.pack(self.index, self.result, self.timestamp)

    @classmethod
    def decode(cls, data, offset=0) -> "Result":
        _need(data, offset, RESULT_SIZE, "a result")
        return cls(*_RESULT.unpack_from(data, offset))

    @property
    def ok(self) -> bool:
        """ok or exists: the record is there, exactly once."""
        return self.result.is_success

    @property
    def name(self) -> str:
        return self.result.wire_name


def reply_burns(transfers, results) -> List[Burns]:
    """What one create_transfers reply leaves of each transfer's id, linked
    chains counted (docs/payments.md, "Linked chains", rule 1): a Burns per
    record, in order. ``results[i].result.burns``, except for a member of a
    linked chain (a record flagged linked, or the one that closes a
    chain), which is never ``Burns.YES``: a chain that fails stores
    nothing, so its failing member's own code (exceeds_credits, ...)
    leaves its id free, like the others' linked_event_failed
    (``Burns.NO``). Decide "burned or retryable" from this, never from a
    member's code alone. A member whose id a record sent alone burned
    earlier is answered that old failure: this reply burned nothing, so it
    reads ``Burns.NO`` too, and a retry of the chain gets that failure (or
    exists_with_different_*) again.

    ``transfers``: the Transfers sent, ``results``: the Results of
    ``create_transfers`` for them (one per transfer, in the same order)."""
    transfers, results = list(transfers), list(results)
    if len(transfers) != len(results):
        raise ValueError("%d results for %d transfers: one result per transfer, in order"
                         % (len(results), len(transfers)))
    out = []
    for i, (t, r) in enumerate(zip(transfers, results)):
        if not isinstance(t, Transfer) or not isinstance(r, Result):
            raise TypeError("record %d: expected a Transfer and its Result, got a %s and a %s"
                            % (i, type(t).__name__, type(r).__name__))
        member = bool(t.flags & TransferFlags.LINKED) or (
            i > 0 and bool(transfers[i - 1].flags & TransferFlags.LINKED))
        burns = r.result.burns
        out.append(Burns.NO if member and burns is Burns.YES else burns)
    return out


_ID = struct.Struct("<QQ")
assert _ID.size == ID_SIZE


def encode_id(value) -> bytes:
    """16 little-endian bytes of an id (int or uuid.UUID)."""
    return _ID.pack(*_split(_check_int("id", "value", "u128", value)))


def decode_id(data, offset=0) -> int:
    _need(data, offset, ID_SIZE, "an id")
    lo, hi = _ID.unpack_from(data, offset)
    return _join(lo, hi)


_FILTER = struct.Struct("<QQ Q Q I I QQQ")
assert _FILTER.size == FILTER_SIZE


@dataclasses.dataclass(frozen=True)
class Filter:
    """get_account_transfers: the transfers of one account, oldest first
    (newest first with REVERSED), timestamps within [min, max] (0: no
    bound), at most ``limit``."""

    account_id: int = 0
    timestamp_min: int = 0
    timestamp_max: int = 0
    limit: int = 8190
    flags: FilterFlags = FilterFlags.DEBITS | FilterFlags.CREDITS
    reserved: Tuple[int, int, int] = (0, 0, 0)

    _KINDS: ClassVar = (("account_id", "u128"), ("timestamp_min", "u64"),
                        ("timestamp_max", "u64"), ("limit", "u32"), ("flags", FilterFlags),
                        ("reserved", ("u64", 3)))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _FILTER.pack(*_split(self.account_id), self.timestamp_min, self.timestamp_max,
                            self.limit, self.flags, *self.reserved)

    @classmethod
    def decode(cls, data, offset=0) -> "Filter":
        _need(data, offset, FILTER_SIZE, "a filter")
        f = _FILTER.unpack_from(data, offset)
        return cls(account_id=_join(f[0], f[1]), timestamp_min=f[2], timestamp_max=f[3],
                   limit=f[4], flags=f[5], reserved=tuple(f[6:9]))


_EVENTS_REQ = struct.Struct("<QQQII4Q")
assert _EVENTS_REQ.size == EVENTS_REQ_SIZE

LEG_BOTH, LEG_DEBIT, LEG_CREDIT = 0, 1, 2  # Event.leg


@dataclasses.dataclass(frozen=True)
class EventsRequest:
    """events_read (docs/events.md): the records after a position (the
    serving shard's incarnation and nonce, and a timestamp; all zeros: the
    beginning), at most ``limit``."""

    incarnation: int = 0
    nonce: int = 0
    timestamp: int = 0
    limit: int = EVENTS_LIMIT_MAX
    flags: int = 0
    reserved: Tuple[int, int, int, int] = (0, 0, 0, 0)

    _KINDS: ClassVar = (("incarnation", "u64"), ("nonce", "u64"), ("timestamp", "u64"),
                        ("limit", "u32"), ("flags", "u32"), ("reserved", ("u64", 4)))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _EVENTS_REQ.pack(self.incarnation, self.nonce, self.timestamp, self.limit,
                                self.flags, *self.reserved)

    @classmethod
    def decode(cls, data, offset=0) -> "EventsRequest":
        _need(data, offset, EVENTS_REQ_SIZE, "an events request")
        f = _EVENTS_REQ.unpack_from(data, offset)
        return cls(*f[:5], reserved=tuple(f[5:9]))


_EVENT_TAIL = struct.Struct("<QQIIQ")
assert TRANSFER_SIZE + _EVENT_TAIL.size == EVENT_SIZE


@dataclasses.dataclass(frozen=True)
class Event:
    """One stored transfer record of a shard's change stream: ``result``
    ok moved balances (``leg``: LEG_BOTH both accounts, LEG_DEBIT the debit
    leg of a cross-shard transfer, LEG_CREDIT its credit leg); any other
    result burned the id and moved nothing. Its position is
    (incarnation, nonce, transfer.timestamp)."""

    transfer: Transfer = Transfer()
    incarnation: int = 0
    nonce: int = 0
    result: ResultCode = ResultCode.OK
    leg: int = 0
    reserved: int = 0

    _KINDS: ClassVar = (("incarnation", "u64"), ("nonce", "u64"), ("result", ResultCode),
                        ("leg", "u32"), ("reserved", "u64"))

    def __post_init__(self):
        if not isinstance(self.transfer, Transfer):
            raise TypeError("Event.transfer must be a Transfer")
        _validate(self)

    @property
    def position(self):
        return (self.incarnation, self.nonce, self.transfer.timestamp)

    def encode(self) -> bytes:
        return self.transfer.encode() + _EVENT_TAIL.pack(self.incarnation, self.nonce,
                                                         self.result, self.leg, self.reserved)

    @classmethod
    def decode(cls, data, offset=0) -> "Event":
        _need(data, offset, EVENT_SIZE, "an event")
        f = _EVENT_TAIL.unpack_from(data, offset + TRANSFER_SIZE)
        return cls(Transfer.decode(data, offset), *f)


# name(32) epoch accounts transfers requests commits durability(u32)
# ring_shards(u32) inflight in_doubt last_timestamp dropped malformed
# wrong_shard pid(u32) state(u32) uptime_ms store_keys_written
# store_bytes_written wal_bytes wal_syncs checkpoints alarms deadline_ms(u32)
# prepare_timeout_ms(u32) deadline_errors arcs_unreceived insecure(u32)
# keys(u32) handshakes_refused unauthorized epoch_jumps_refused turn_p99_us(u32)
# in_doubt_oldest_ms(u32)
_STATUS = struct.Struct("<32s QQQQQ II QQQQQQ II Q QQQQQ Q II QQ II QQ Q II")
assert _STATUS.size == STATUS_SIZE

_STATUS_INTS = (("epoch", "u64"), ("accounts", "u64"), ("transfers", "u64"),
                ("requests", "u64"), ("commits", "u64"), ("durability", Durability),
                ("ring_shards", "u32"), ("inflight", "u64"), ("in_doubt", "u64"),
                ("last_timestamp", "u64"), ("dropped", "u64"), ("malformed", "u64"),
                ("wrong_shard", "u64"), ("pid", "u32"), ("state", ShardState),
                ("uptime_ms", "u64"), ("store_keys_written", "u64"),
                ("store_bytes_written", "u64"), ("wal_bytes", "u64"), ("wal_syncs", "u64"),
                ("checkpoints", "u64"), ("alarms", "u64"), ("deadline_ms", "u32"),
                ("prepare_timeout_ms", "u32"), ("deadline_errors", "u64"),
                ("arcs_unreceived", "u64"), ("insecure", "u32"), ("keys", "u32"),
                ("handshakes_refused", "u64"), ("unauthorized", "u64"),
                ("epoch_jumps_refused", "u64"), ("turn_p99_us", "u32"),
                ("in_doubt_oldest_ms", "u32"))


@dataclasses.dataclass(frozen=True)
class StatusRecord:
    """The 256-byte status record of a shard (or of a router)."""

    name: str = ""
    epoch: int = 0
    accounts: int = 0
    transfers: int = 0
    requests: int = 0
    commits: int = 0
    durability: Durability = Durability(0)
    ring_shards: int = 0
    inflight: int = 0
    in_doubt: int = 0
    last_timestamp: int = 0
    dropped: int = 0
    malformed: int = 0
    wrong_shard: int = 0
    pid: int = 0
    state: ShardState = ShardState.SERVING
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
    turn_p99_us: int = 0
    in_doubt_oldest_ms: int = 0

    _KINDS: ClassVar = _STATUS_INTS

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError("StatusRecord.name must be a str")
        if len(self.name.encode("utf-8")) >= SHARD_NAME_SIZE_MAX:
            raise ValueError("StatusRecord.name longer than %d bytes" % (SHARD_NAME_SIZE_MAX - 1))
        _validate(self)

    def encode(self) -> bytes:
        return _STATUS.pack(self.name.encode("utf-8"),
                            *(getattr(self, n) for n, _ in _STATUS_INTS))

    @classmethod
    def decode(cls, data, offset=0) -> "StatusRecord":
        _need(data, offset, STATUS_SIZE, "a status record")
        f = _STATUS.unpack_from(data, offset)
        name = f[0][:SHARD_NAME_SIZE_MAX - 1].split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(name, *f[1:])


# role state stream position quorum_position quorum(u32) standbys(u32)
# incarnation nonce lease_ms mode(u32) flags(u32) timeout_ms reserved[6] endpoint
_REPL = struct.Struct("<IIQQQIIQQQIIQ6Q128s")
assert _REPL.size == REPL_SIZE


@dataclasses.dataclass(frozen=True)
class ReplRecord:
    """A repl_status record (docs/protocol.md): a primary's quorum and
    position, one of its standby links, or a standby's copy."""

    role: int = 0
    state: int = 0
    stream: int = 0
    position: int = 0
    quorum_position: int = 0
    quorum: int = 0
    standbys: int = 0
    incarnation: int = 0
    nonce: int = 0
    lease_ms: int = 0
    mode: int = 0
    flags: int = 0
    timeout_ms: int = 0
    endpoint: str = ""

    _KINDS: ClassVar = (("role", "u32"), ("state", "u32"), ("stream", "u64"),
                        ("position", "u64"), ("quorum_position", "u64"), ("quorum", "u32"),
                        ("standbys", "u32"), ("incarnation", "u64"), ("nonce", "u64"),
                        ("lease_ms", "u64"), ("mode", "u32"), ("flags", "u32"),
                        ("timeout_ms", "u64"))

    def __post_init__(self):
        _validate(self)

    def encode(self) -> bytes:
        return _REPL.pack(*(getattr(self, n) for n, _ in self._KINDS), 0, 0, 0, 0, 0, 0,
                          self.endpoint.encode("utf-8"))

    @classmethod
    def decode(cls, data, offset=0) -> "ReplRecord":
        _need(data, offset, REPL_SIZE, "a repl record")
        f = _REPL.unpack_from(data, offset)
        endpoint = f[19][:REPL_SIZE - 129].split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(*f[:13], endpoint=endpoint)


# Messages -------------------------------------------------------------------

BLOB = "blob"  # one opaque body (a ring) of 1..RING_BLOB_SIZE_MAX bytes, count 1
ID = "id"  # a lookup id: an int

# Body kinds per operation: (request, reply); None is no body.
_BODY = {
    Operation.CREATE_ACCOUNTS: (Account, Result),
    Operation.CREATE_TRANSFERS: (Transfer, Result),
    Operation.LOOKUP_ACCOUNTS: (ID, Account),
    Operation.LOOKUP_TRANSFERS: (ID, Transfer),
    Operation.GET_ACCOUNT_TRANSFERS: (Filter, Transfer),
    Operation.STATUS: (None, StatusRecord),
    Operation.LOAD_RING: (BLOB, None),
    Operation.GET_RING: (None, BLOB),
    Operation.EVENTS_READ: (EventsRequest, Event),
    Operation.PROMOTE: (None, None),
    Operation.DEGRADE: (None, None),
    Operation.FENCE: (None, None),
    Operation.REPL_STATUS: (None, ReplRecord),
}
_SIZES = {Account: ACCOUNT_SIZE, Transfer: TRANSFER_SIZE, Result: RESULT_SIZE,
          Filter: FILTER_SIZE, StatusRecord: STATUS_SIZE, ID: ID_SIZE,
          EventsRequest: EVENTS_REQ_SIZE, Event: EVENT_SIZE, ReplRecord: REPL_SIZE}


def body_kind(operation, is_reply):
    """The record class (or ID, BLOB, None) of a body; KeyError for an
    operation this version does not serve to clients."""
    return _BODY[operation][1 if is_reply else 0]


def encode_body(kind, records) -> bytes:
    if kind is None:
        if records:
            raise ValueError("this operation takes no records")
        return b""
    if kind == BLOB:
        if not isinstance(records, (bytes, bytearray, memoryview)):
            raise TypeError("a ring blob must be bytes")
        return bytes(records)
    if kind == ID:
        return b"".join(encode_id(r) for r in records)
    for r in records:
        if not isinstance(r, kind):
            raise TypeError("expected %s records, got %s" % (kind.__name__, type(r).__name__))
    return b"".join(r.encode() for r in records)


def decode_body(kind, data, count):
    """Records of a body, after checking its size against the count."""
    if kind is None:
        if data:
            raise CodecError("a body of %d bytes where none belongs" % len(data))
        return []
    if kind == BLOB:
        if count != 1 or not 1 <= len(data) <= RING_BLOB_SIZE_MAX:
            raise CodecError("bad blob: count %d, %d bytes" % (count, len(data)))
        return bytes(data)
    size = _SIZES[kind]
    if len(data) != count * size:
        raise CodecError("a body of %d bytes for %d records of %d" % (len(data), count, size))
    if kind == ID:
        return [decode_id(data, i * size) for i in range(count)]
    return [kind.decode(data, i * size) for i in range(count)]


def encode_message(header, records=(), is_reply=False) -> bytes:
    """Header + body. record_count comes from the records (1 for a blob)
    unless the header's is already set. A header with a non-ok status, or
    an operation this version does not serve, gets no body."""
    kind = None
    if header.status == 0 and header.operation in _BODY:
        kind = body_kind(header.operation, is_reply)
    body = encode_body(kind, records) if kind is not None else b""
    if header.record_count == 0 and body:
        header = dataclasses.replace(header, record_count=1 if kind == BLOB else len(records))
    return header.encode() + body


def decode_message(frame, is_reply) -> Tuple[Header, List]:
    """(Header, records): records are dataclasses, ints (ids) or bytes (a
    blob). A header with a non-ok status carries no body. Raises CodecError
    when the frame breaks the layout."""
    header = Header.decode(frame)
    body = frame[HEADER_SIZE:]
    if header.magic != MAGIC:
        raise CodecError("bad magic 0x%08x" % header.magic)
    if header.status != 0 or header.operation not in _BODY:
        if body:
            raise CodecError("an error reply or an unknown operation with a body")
        return header, []
    return header, decode_body(body_kind(header.operation, is_reply), body, header.record_count)
