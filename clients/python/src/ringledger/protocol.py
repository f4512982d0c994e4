"""The numbers of the ringledger wire protocol, version 1 (docs/protocol.md).

Every code is an enum whose member name is the protocol's lower-case name
in capitals: ``ResultCode.EXCEEDS_CREDITS.name.lower() == "exceeds_credits"``.
The tables are written here by hand from the document, and the package's
test compares each of them with the document's tables, so the two cannot
drift apart unnoticed.

A code this version does not know (a newer server) still decodes: it
becomes a member named ``UNKNOWN_<value>``, and a result code it does not
know counts as open (retry with the same id), as the protocol says.
"""

import enum

MAGIC = 0x67646C72  # the bytes 72 6c 64 67, "rldg"
VERSION = 1
HEADER_SIZE = 32
ACCOUNT_SIZE = 128
TRANSFER_SIZE = 128
ID_SIZE = 16
RESULT_SIZE = 16
FILTER_SIZE = 64
STATUS_SIZE = 256
REPL_SIZE = 256  # the repl_status reply record
BATCH_RECORDS_MAX = 8190
HISTORY_LIMIT_MAX = 8190
EVENTS_REQ_SIZE = 64
EVENT_SIZE = 160
EVENTS_LIMIT_MAX = 8190
MESSAGE_SIZE_MAX = HEADER_SIZE + BATCH_RECORDS_MAX * 256
RING_BLOB_SIZE_MAX = 4 << 20
SHARD_NAME_SIZE_MAX = 32
CLIENT_TIMEOUT_MS = 8000  # RL_CLIENT_TIMEOUT_MS: above the router's default deadline
ROUTER_DEADLINE_MS = 4000  # RL_ROUTER_DEADLINE_MS, the router's default --deadline-ms
RETRY_BACKOFF_MS_MIN = 10
RETRY_BACKOFF_MS_MAX = 1000
ID_INT_MAX = (1 << 128) - 1  # all ff bytes: never a valid id


class _Coded(enum.IntEnum):
    """An IntEnum that also holds values it does not name (UNKNOWN_<n>)."""

    @classmethod
    def _missing_(cls, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        member = int.__new__(cls, value)
        member._name_ = "UNKNOWN_%d" % value
        member._value_ = value
        return member

    @property
    def known(self):
        """False for a value this version does not name."""
        return self._name_ in type(self).__members__

    @property
    def wire_name(self):
        """The protocol's name: ``exceeds_credits``, or ``unknown(123)``."""
        if not self.known:
            return "unknown(%d)" % self._value_
        return self._name_.lower()

    def __str__(self):
        return self.wire_name


class Operation(_Coded):
    """Operation codes of the header (protocol.md, "Operations"): the ones
    a client sends."""

    CREATE_ACCOUNTS = 1
    CREATE_TRANSFERS = 2
    LOOKUP_ACCOUNTS = 3
    LOOKUP_TRANSFERS = 4
    GET_ACCOUNT_TRANSFERS = 5
    STATUS = 6
    LOAD_RING = 7
    GET_RING = 8
    EVENTS_READ = 65  # served by shards only (docs/events.md)
    PROMOTE = 80  # admin: make a standby the primary (docs/replication.md)
    DEGRADE = 81  # admin: switch a semi-synchronous primary to async by hand
    FENCE = 82  # admin: withdraw a standby for a promotion among several
    REPL_STATUS = 83  # replication: the quorum and each standby's position


class StatusCode(_Coded):
    """Message-level status of a reply header: the request as a whole."""

    OK = 0
    MALFORMED = 1
    BAD_MAGIC = 2
    BAD_VERSION = 3
    UNKNOWN_OPERATION = 4
    TOO_MANY_RECORDS = 5
    BUSY = 6
    STORAGE_ERROR = 7
    EPOCH_NOT_NEWER = 8
    BAD_RING = 9
    BAD_FILTER = 10
    UNAVAILABLE = 11
    TIMEOUT = 12
    DUPLICATE_ID = 13
    WRONG_SHARD = 14
    FROZEN = 15
    UNAUTHORIZED = 16
    EPOCH_TOO_FAR = 17
    MIGRATION_REFUSED = 18
    RESYNC = 23  # events_read: drop this shard's events, read again from the beginning
    BAD_POSITION = 24
    LEASE_HELD = 84  # migrate_*: another rebalancing plan holds the shard's migration lease
    FENCED = 85  # a former primary: its standby was promoted; send to the new primary

    @property
    def is_retryable(self):
        """True when the same request (same ids) may be sent again later:
        backpressure, a router's deadline, a store failure (outcome unknown),
        a ring change in progress."""
        return self in _RETRYABLE_STATUSES


_RETRYABLE_STATUSES = frozenset((StatusCode.BUSY, StatusCode.STORAGE_ERROR,
                                 StatusCode.UNAVAILABLE, StatusCode.TIMEOUT,
                                 StatusCode.WRONG_SHARD, StatusCode.FROZEN))


class Burns(enum.Enum):
    """What a result does to the record's id (protocol.md, "burns id")."""

    NO = "no"  # the id stays free: a retry may apply the record
    YES = "yes"  # a business failure, remembered: a retry gets it again
    SUCCESS = "success"  # the id holds the applied record
    TAKEN = "taken"  # the id already holds another record


class ResultCode(_Coded):
    """Per-record result of create_accounts and create_transfers."""

    OK = 0
    EXISTS = 1
    WRONG_SHARD = 2
    BUSY = 3
    ABORTED = 4
    OUTCOME_UNKNOWN = 5
    IN_PROGRESS = 6
    IN_DOUBT = 7
    FROZEN = 8
    STORAGE_ERROR = 9
    LINKED_EVENT_FAILED = 10
    LINKED_EVENT_CHAIN_OPEN = 11
    UNAUTHORIZED = 12  # two-phase replies only: a client sees aborted
    ID_MUST_NOT_BE_ZERO = 16
    ID_MUST_NOT_BE_INT_MAX = 17
    EXISTS_WITH_DIFFERENT_FLAGS = 20
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = 21
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = 22
    EXISTS_WITH_DIFFERENT_AMOUNT = 23
    EXISTS_WITH_DIFFERENT_PENDING_ID = 24
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = 25
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = 26
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = 27
    EXISTS_WITH_DIFFERENT_TIMEOUT = 28
    EXISTS_WITH_DIFFERENT_LEDGER = 29
    EXISTS_WITH_DIFFERENT_CODE = 30
    TIMESTAMP_MUST_BE_ZERO = 40
    RESERVED_FIELD = 41
    RESERVED_FLAG = 42
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = 43
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 44
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 45
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 46
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 47
    ACCOUNTS_MUST_BE_DIFFERENT = 48
    PENDING_ID_MUST_BE_ZERO = 49
    PENDING_ID_MUST_NOT_BE_ZERO = 50
    PENDING_ID_MUST_NOT_BE_INT_MAX = 51
    PENDING_ID_MUST_BE_DIFFERENT = 52
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = 53
    AMOUNT_MUST_NOT_BE_ZERO = 54
    LEDGER_MUST_NOT_BE_ZERO = 55
    CODE_MUST_NOT_BE_ZERO = 56
    NOT_SUPPORTED = 57
    DEBIT_ACCOUNT_NOT_FOUND = 60
    CREDIT_ACCOUNT_NOT_FOUND = 61
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = 64
    TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = 65
    PENDING_TRANSFER_NOT_FOUND = 68
    PENDING_TRANSFER_NOT_PENDING = 69
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = 70
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = 71
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = 72
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = 73
    EXCEEDS_PENDING_TRANSFER_AMOUNT = 74
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = 75
    PENDING_TRANSFER_ALREADY_POSTED = 76
    PENDING_TRANSFER_ALREADY_VOIDED = 77
    PENDING_TRANSFER_EXPIRED = 78
    OVERFLOWS_DEBITS_PENDING = 80
    OVERFLOWS_CREDITS_PENDING = 81
    OVERFLOWS_DEBITS_POSTED = 82
    OVERFLOWS_CREDITS_POSTED = 83
    OVERFLOWS_DEBITS = 84
    OVERFLOWS_CREDITS = 85
    OVERFLOWS_TIMEOUT = 86
    EXCEEDS_CREDITS = 87
    EXCEEDS_DEBITS = 88
    DEBITS_PENDING_MUST_BE_ZERO = 100
    DEBITS_POSTED_MUST_BE_ZERO = 101
    CREDITS_PENDING_MUST_BE_ZERO = 102
    CREDITS_POSTED_MUST_BE_ZERO = 103

    @property
    def burns(self):
        """What this result does to the id (a Burns)."""
        v = self._value_
        if v <= 1:
            return Burns.SUCCESS
        if 20 <= v <= 30:
            return Burns.TAKEN
        if 60 <= v <= 88 and self.known:
            return Burns.YES
        return Burns.NO

    @property
    def is_success(self):
        """ok or exists: the record is there (exactly once)."""
        return self._value_ <= 1

    @property
    def is_open(self):
        """An infrastructure code (2..15) or a code this version does not
        know: the outcome is not definite; retry with the same id, never
        with a new one."""
        return 2 <= self._value_ <= 15 or not self.known


class AccountFlags(enum.IntFlag):
    """account.flags (u16). Both balance limits at once is
    flags_are_mutually_exclusive; LINKED is not served on accounts
    (not_supported)."""

    LINKED = 0x0001
    DEBITS_MUST_NOT_EXCEED_CREDITS = 0x0002
    CREDITS_MUST_NOT_EXCEED_DEBITS = 0x0004


class TransferFlags(enum.IntFlag):
    """transfer.flags (u16). PENDING authorises (reserves the amount),
    POST_PENDING_TRANSFER and VOID_PENDING_TRANSFER settle the transfer
    named by pending_id (docs/protocol.md, "Pending transfers"; at most one
    of the three). LINKED chains a record to the next: they succeed or fail
    together (docs/payments.md, "Linked chains"). The balancing bits name
    reserved features: a server answers not_supported until they ship."""

    LINKED = 0x0001
    PENDING = 0x0002
    POST_PENDING_TRANSFER = 0x0004
    VOID_PENDING_TRANSFER = 0x0008
    BALANCING_DEBIT = 0x0010
    BALANCING_CREDIT = 0x0020


class FilterFlags(enum.IntFlag):
    """filter.flags (u32) of get_account_transfers."""

    DEBITS = 0x0001
    CREDITS = 0x0002
    REVERSED = 0x0004


class Durability(_Coded):
    """status.durability."""

    SYNC = 1
    NOSYNC = 2  # benchmark only
    SYNC_MANUAL_FLUSH = 3  # tests: the WAL stays in memory until each group commit


class ShardState(_Coded):
    """status.state."""

    SERVING = 0
    FAILED = 1  # a write or sync failed: storage_error until restarted
    STANDBY = 2  # a standby: answers status and promote only
    STALLED = 3  # a semi-synchronous primary whose standby is silent: busy
    FENCED = 4  # a former primary whose standby was promoted: fenced until re-seeded
