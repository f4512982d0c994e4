"""Reversals (refunds) of transfers, by the rules of docs/payments.md.

    from ringledger import reversal

    r = reversal.reverse(client, payment_id)                # in full
    r = reversal.reverse(client, payment_id, amount=1500)   # a partial refund
    if r.outcome is reversal.Outcome.SENT and r.result.result.is_success:
        ...                                                 # refunded

A reversal of an original transfer O debits O's credit account and credits
O's debit account, in O's ledger. Its id is reversal_id(O, k): BLAKE2b
with a 16-byte digest, no key, the personalisation b"ringledger.rev.1",
over O's id in wire form (16 bytes, little-endian) and k (u32,
little-endian); its user_data_128 is O and its user_data_64 is k.

reverse() looks O up, probes every k at once (a create_transfers of
K_MAX records with amount 0, which the shard answers from the id alone:
exists_with_different_amount for a taken id, amount_must_not_be_zero for
a free one, applying and burning nothing), looks up the taken ids, and
sends the reversal with the smallest free k (or the k given, to retry
one) if the reversals that took effect, this one included, stay within
O's amount. A refusal is data: Reversal.outcome names it, nothing that can
apply was sent. The C library (common/reversal.c) does the same.
"""
import dataclasses
import enum
import hashlib
from typing import Optional

from .codec import Result, Transfer
from .protocol import ID_INT_MAX, Burns, ResultCode, TransferFlags

K_MAX = 256  # reversal ids per original: k in 0..K_MAX - 1 (RL_REVERSAL_K_MAX)
PERSONAL = b"ringledger.rev.1"  # the domain tag: BLAKE2b's 16-byte personalisation


class Outcome(enum.Enum):
    """What reverse() did; every outcome but SENT sent nothing that can apply."""

    SENT = "sent"  # the reversal was sent: Reversal.result is the cluster's answer
    ORIGINAL_NOT_FOUND = "original_not_found"  # unknown, or burned by a failure
    NOT_REVERSIBLE = "not_reversible"  # a pending transfer or a void
    K_NOT_NEXT = "k_not_next"  # k is free but a smaller k is free too
    EXCEEDS_ORIGINAL = "exceeds_original"  # the reversals would sum above the original
    OPEN = "open"  # a reversal of the original is in flight or unanswered: retry later
    EXHAUSTED = "exhausted"  # every k is taken
    DISORDER = "disorder"  # a k above a free one is taken: ids made outside the rules


@dataclasses.dataclass
class Reversal:
    """The answer of reverse()."""

    outcome: Outcome
    k: Optional[int] = None  # the k used (or that would have been)
    original: Optional[Transfer] = None  # as looked up (None: not found)
    transfer: Optional[Transfer] = None  # the reversing transfer (sent when SENT)
    result: Optional[Result] = None  # SENT: the cluster's answer
    reversed: int = 0  # minor units: the reversals before k that took effect
    taken: int = 0  # reversal ids of the original taken (applied or burned)
    open_k: Optional[int] = None  # OPEN: a k whose outcome is open
    open_result: Optional[ResultCode] = None  # OPEN: what its probe answered


def _check_id(value, what):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if value <= 0 or value >= ID_INT_MAX:
        raise ValueError("%s %#x is not a valid id (1 .. 2^128 - 2)" % (what, value))


def reversal_id(original: int, k: int) -> int:
    """The id of reversal k of transfer ``original`` (docs/payments.md)."""
    _check_id(original, "original")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < K_MAX:
        raise ValueError("k must be an int in 0..%d, not %r" % (K_MAX - 1, k))
    digest = hashlib.blake2b(original.to_bytes(16, "little") + k.to_bytes(4, "little"),
                             digest_size=16, person=PERSONAL).digest()
    rid = int.from_bytes(digest, "little")
    if rid == 0 or rid == ID_INT_MAX:  # 2^-127: never seen
        raise ValueError("reversal %d of %#x derives an invalid id" % (k, original))
    return rid


def _slot(code):
    """'free', 'taken' or 'open': what a probe's result says of its id."""
    if code == ResultCode.AMOUNT_MUST_NOT_BE_ZERO:
        return "free"
    if code.burns in (Burns.TAKEN, Burns.SUCCESS):
        return "taken"
    return "open"


def reverse(client, original, *, k=None, amount=None, code=None, user_data_32=0,
            timeout_ms=None) -> Reversal:
    """Reverses transfer ``original`` through ``client`` (a Client, best
    connected to a router). k None: the smallest free k; an int 0..255 to
    retry that reversal. amount None: what is left of the original; else
    1..2^64 - 1 minor units. code None: the original's. Raises ValueError
    or TypeError for bad arguments (nothing sent), the client's errors when
    the cluster does not answer (if Reversal was not returned, the reversal
    may have been sent: call again with the same k and amount)."""
    _check_id(original, "original")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < K_MAX):
        raise ValueError("k must be None or an int in 0..%d, not %r" % (K_MAX - 1, k))
    if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)
                               or not 0 < amount < 1 << 64):
        raise ValueError("amount must be None or an int in 1..2^64 - 1, not %r" % (amount,))
    if code is not None and (not isinstance(code, int) or not 0 < code < 1 << 16):
        raise ValueError("code must be None or an int in 1..65535, not %r" % (code,))
    if not isinstance(user_data_32, int) or not 0 <= user_data_32 < 1 << 32:
        raise ValueError("user_data_32 must be an int in 0..2^32 - 1, not %r" % (user_data_32,))

    # 1. The original: found means it took effect.
    o = client.lookup_transfers([original], timeout_ms=timeout_ms)[0]
    if not o.found:
        return Reversal(Outcome.ORIGINAL_NOT_FOUND, k)
    if o.flags & (TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER):
        return Reversal(Outcome.NOT_REVERSIBLE, k, original=o)
    base = dict(debit_account_id=o.credit_account_id, credit_account_id=o.debit_account_id,
                user_data_128=original, user_data_32=user_data_32, ledger=o.ledger,
                code=code if code is not None else o.code)

    # 2. The probe: every k at once, amount 0 (one request to the debit shard).
    ids = [reversal_id(original, i) for i in range(K_MAX)]
    probe = [Transfer(id=ids[i], amount=0, user_data_64=i, **base) for i in range(K_MAX)]
    results = client.create_transfers(probe, retry=False, timeout_ms=timeout_ms)
    slots = [_slot(r.result) for r in results]
    taken = [i for i in range(K_MAX) if slots[i] == "taken"]

    # 3. The taken ids: found is applied, not found is burned.
    found = {}
    if taken:
        for i, t in zip(taken, client.lookup_transfers([ids[i] for i in taken],
                                                       timeout_ms=timeout_ms)):
            if t.found:
                found[i] = t
    answer = Reversal(Outcome.SENT, k, original=o, taken=len(taken))
    first_free = None
    for i in range(K_MAX):
        if slots[i] == "open":
            answer.outcome, answer.open_k, answer.open_result = Outcome.OPEN, i, results[i].result
            return answer
        if slots[i] == "free" and first_free is None:
            first_free = i
        if slots[i] == "taken" and first_free is not None:
            answer.outcome, answer.k = Outcome.DISORDER, i
            return answer
    use = first_free if k is None else k
    answer.k = use
    if use is None:
        answer.outcome = Outcome.EXHAUSTED
        return answer
    answer.reversed = sum(t.amount for i, t in found.items() if i < use)
    rest = o.amount - answer.reversed
    value = amount if amount is not None else rest
    answer.transfer = Transfer(id=ids[use], amount=value, user_data_64=use, **base)
    if slots[use] == "free":
        if use != first_free:
            answer.outcome = Outcome.K_NOT_NEXT
            return answer
        if value == 0 or value > rest:
            answer.outcome = Outcome.EXCEEDS_ORIGINAL
            return answer
    # else a retry of a taken k: the cluster answers its outcome, applies nothing.

    # 4. The reversal, with its own id (a retry after a timeout is the same record).
    answer.result = client.create_transfers([answer.transfer], timeout_ms=timeout_ms)[0]
    return answer
