"""The pool's socket protocol: each message is an 8-byte big-endian length, then that many bytes of pickle.

The parent (`openrs.procpool.pool`) writes and reads non-blocking, through `Outbox` and `Decoder`; a worker
(`openrs.procpool.child`) blocks, through `send` and `recv`. Messages: the worker's `READY`, then
`(task_id, payload)` from the parent and `(task_id, ok, value)` back, one reply per task, in order.
"""

from __future__ import annotations

import pickle
import socket
import struct
from collections import deque
from typing import Any

READY = "__ready__"  # a worker's first message
_HEADER = struct.Struct("!Q")
_CHUNK = 1 << 18  # bytes asked of the socket per read; about what a Unix socket buffers
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)  # a closed peer raises BrokenPipeError, never SIGPIPE


def encode(obj: Any) -> bytes:
    """One whole message: length prefix and pickle."""
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class Outbox:
    """Messages waiting to go out on a non-blocking socket, the first possibly written in part."""

    def __init__(self) -> None:
        self._frames: deque[memoryview] = deque()

    def __bool__(self) -> bool:
        return bool(self._frames)

    def put(self, obj: Any) -> None:
        self._frames.append(memoryview(encode(obj)))

    def clear(self) -> None:
        self._frames.clear()

    def flush(self, sock: socket.socket) -> None:
        """Write as much as the socket takes now, without waiting; OSError when the peer is gone."""
        while self._frames:
            try:
                n = sock.send(self._frames[0], _SEND_FLAGS)
            except BlockingIOError:
                return
            if n < len(self._frames[0]):
                self._frames[0] = self._frames[0][n:]
                return
            self._frames.popleft()


class Decoder:
    """Reassembles messages from a non-blocking socket, however the bytes arrive."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def read(self, sock: socket.socket) -> list[Any]:
        """Take what the socket has (without waiting) and return the messages now complete, in order.

        Raises EOFError when the peer has closed its end (once the messages it sent before are taken).
        """
        closed = False
        while True:
            try:
                data = sock.recv(_CHUNK)
            except BlockingIOError:
                break
            if not data:
                closed = True
                break
            self._buf += data
            if len(data) < _CHUNK:  # drained, most likely: spare the call that would say so
                break
        messages = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            with memoryview(self._buf) as view, view[_HEADER.size : end] as body:
                messages.append(pickle.loads(body))
            del self._buf[:end]  # drops the front in place: no copy of the rest
        if closed and not messages:
            raise EOFError
        return messages


def send(sock: socket.socket, obj: Any) -> None:
    """Write one message, blocking until the peer has taken it all (worker side)."""
    sock.sendall(encode(obj))


def recv(sock: socket.socket) -> Any:
    """Read one message, blocking (worker side); EOFError when the peer has closed its end."""
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return pickle.loads(_recv_exact(sock, size))


def _recv_exact(sock: socket.socket, size: int) -> bytearray:
    buf = bytearray(size)
    with memoryview(buf) as view:
        got = 0
        while got < size:
            n = sock.recv_into(view[got:])
            if not n:
                raise EOFError
            got += n
    return buf
