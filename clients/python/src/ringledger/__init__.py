"""ringledger: a Python client of the ringledger cluster (docs/client-python.md).

    import ringledger as rl

    keys = rl.Keypair.load("keys/private/app.key_secret")
    with rl.Client("tcp://127.0.0.1:7100", keypair=keys,
                   server_key="keys/router/router.key") as client:
        client.create_accounts([rl.Account(id=1, ledger=840, code=10)])

Modules: protocol (codes and limits), codec (records and messages), keys
(CURVE keys and rings), errors, client (Client), aio (AsyncClient).
"""

from .client import DEADLINE_S, Client
from .codec import (Account, Filter, Header, Result, StatusRecord, Transfer, decode_id,
                    decode_message, encode_id, encode_message, reply_burns)
from .errors import (BadReply, CodecError, Incomplete, RingledgerError, StatusError, Timeout,
                     TransportError)
from .keys import Keypair, Ring, RingShard, load_public_key
from .protocol import (BATCH_RECORDS_MAX, CLIENT_TIMEOUT_MS, HEADER_SIZE, ID_INT_MAX, MAGIC,
                       VERSION, AccountFlags, Burns, Durability, FilterFlags, Operation,
                       ResultCode, ShardState, StatusCode, TransferFlags)

__version__ = "0.1.0"


def __getattr__(name):
    if name == "AsyncClient":  # imports zmq.asyncio only when asked for
        from .aio import AsyncClient
        return AsyncClient
    raise AttributeError("module 'ringledger' has no attribute %r" % name)


__all__ = ["Account", "AccountFlags", "AsyncClient", "BATCH_RECORDS_MAX", "BadReply", "Burns",
           "CLIENT_TIMEOUT_MS", "Client", "CodecError", "DEADLINE_S", "Durability", "Filter",
           "FilterFlags", "HEADER_SIZE", "Header", "ID_INT_MAX", "Incomplete", "Keypair", "MAGIC",
           "Operation", "Result", "ResultCode", "Ring", "RingShard", "RingledgerError",
           "ShardState", "StatusCode", "StatusError", "StatusRecord", "Timeout", "Transfer",
           "TransferFlags", "TransportError", "VERSION", "decode_id", "decode_message",
           "encode_id", "encode_message", "load_public_key", "reply_burns"]
