"""The asyncio client (pyzmq's zmq.asyncio): the same calls as Client,
each a coroutine.

    async with AsyncClient("tcp://127.0.0.1:7100", keypair=keys,
                           server_key="keys/router/router.key") as client:
        results = await client.create_transfers(transfers)

The logic of every call is Client's (client.py, invariant 4); only the
waiting differs. Several coroutines may share one AsyncClient: each
request has its own id, and whichever coroutine reads a reply hands it
to the one that waits for it.
"""

import asyncio
import time

from . import codec
from .client import _Api, _open_socket
from .codec import Header
from .errors import StatusError, Timeout, TransportError
from .protocol import Operation


class AsyncClient(_Api):
    """Client's constructor and calls; ``await`` each call."""

    def __init__(self, endpoints, *, context=None, **kw):
        super().__init__(endpoints, **kw)
        import zmq
        import zmq.asyncio
        self._zmq = zmq
        self.context = context or zmq.asyncio.Context.instance()
        self.socket = _open_socket(zmq, self.context, self.keypair, self._curve)
        self._waiting = {}  # request id -> future of its reply frame
        self._reader = None  # made in the loop that uses it (Python 3.9 binds it)

    def close(self):
        self.socket.close(0)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    async def _run(self, flow):
        try:
            step = next(flow)
            while True:
                if step[0] == "sleep":
                    await asyncio.sleep(step[1])
                    step = flow.send(None)
                    continue
                try:
                    outcome = await self._call_once(*step[1:])
                except (TransportError, StatusError) as e:
                    outcome = e
                step = flow.send(outcome)
        except StopIteration as stop:
            return stop.value

    async def _call_once(self, operation, body, count, timeout_ms):
        request_id, frame = self._request(operation, body, count)
        end = time.monotonic() + timeout_ms / 1000.0
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            try:
                await asyncio.wait_for(self.socket.send(frame), timeout_ms / 1000.0)
            except asyncio.TimeoutError:
                raise Timeout("nothing sent: no connection within %d ms" % timeout_ms) from None
            try:
                reply = await asyncio.wait_for(self._reply(future),
                                               max(end - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                raise Timeout("no reply to %s within %d ms"
                              % (Operation(operation).wire_name, timeout_ms)) from None
        finally:
            self._waiting.pop(request_id, None)
        return self._decode_reply(reply, operation)

    async def _reply(self, future):
        """Reads replies (one reader at a time) until this one is there."""
        if self._reader is None:
            self._reader = asyncio.Lock()
        while not future.done():
            async with self._reader:
                if future.done():
                    break
                frame = await self.socket.recv()
                waiter = None
                if len(frame) >= codec.HEADER_SIZE:
                    waiter = self._waiting.get(Header.decode(frame).request_id)
                if waiter is None or waiter.done():
                    self.stale_replies += 1
                else:
                    waiter.set_result(frame)
        return future.result()
