"""The exceptions of the client.

Per-record outcomes of a create are data, never exceptions: one Result per
record, with a ResultCode (docs/protocol.md, "Result codes"). Exceptions
say that the request as a whole did not get a definite answer:

    RingledgerError
    +-- TransportError      no usable reply: the outcome is UNKNOWN
    |   +-- Timeout         no reply within the time (nothing sent, or lost)
    |   +-- BadReply        a reply that does not decode
    +-- StatusError         the server refused the request as a whole
    +-- Incomplete          the retry deadline passed with records still open
    +-- CodecError          (also a ValueError) bytes that break the layout

Arguments that cannot be encoded (an id out of range, a name too long, a
string where a number belongs) raise ValueError or TypeError naming the
field, before anything is sent.
"""


class RingledgerError(Exception):
    """Base of every error the package raises on purpose (except the
    ValueError/TypeError of bad arguments)."""


class CodecError(RingledgerError, ValueError):
    """Bytes that are not a valid message or record of the protocol."""


class TransportError(RingledgerError):
    """No usable reply arrived. For a create the outcome is unknown: send
    the same records (the same ids) again; never pay again with new ids."""


class Timeout(TransportError):
    """No reply within the timeout (the server may be down, stalled, or
    may have refused the CURVE handshake: libzmq says nothing then)."""


class BadReply(TransportError):
    """A reply arrived but does not decode, or does not answer the request."""


class StatusError(RingledgerError):
    """The reply's message-level status is not ok: the server refused the
    request as a whole, and nothing of it was applied (storage_error: the
    outcome is unknown). ``status`` is a StatusCode, ``epoch`` the epoch
    the server answered with. For a create split in several batches,
    ``results`` holds what the earlier batches got (the records not settled
    say outcome_unknown)."""

    def __init__(self, status, epoch=0, results=None):
        super().__init__("%s (%d)" % (status.wire_name, int(status)))
        self.status = status
        self.epoch = epoch
        self.results = results


class Incomplete(RingledgerError):
    """The deadline passed and some records are still open. ``results``
    holds one Result per record, in order: definite ones as answered, open
    ones with a retryable code (outcome_unknown when no reply came).
    ``open`` lists the indices of the open records. Call again later with
    the SAME records: ok and exists both mean the record is there."""

    def __init__(self, results, open_indices, cause=None):
        super().__init__("%d of %d records still open after the deadline%s"
                         % (len(open_indices), len(results),
                            " (last: %s)" % cause if cause else ""))
        self.results = results
        self.open = open_indices
        self.cause = cause
