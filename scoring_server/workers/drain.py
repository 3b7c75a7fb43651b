"""Stopping the whole server without resetting a connection (SIGTERM to the master).

gunicorn's master closes its listening sockets and sends SIGTERM to the workers, which stop
accepting and finish what they hold. The connections still waiting in the kernel's listen queue
(a client connected, maybe sent its request, and no worker accepted it yet) are then reset when
the last process closes the socket, and clients keep connecting until that moment.

Here the master, on SIGTERM and before anything else, (1) marks the server as stopping in a page
shared with the workers (their ``/ping`` answers 503 from then on) and (2) attaches a socket
filter to each listening socket that drops new connection attempts (a SYN without ACK): a
handshake already under way still completes, and a client connecting later is refused once the
socket is closed (nothing was sent, so it may retry elsewhere). The workers then accept what is
already queued, answer it with ``Connection: close``, and close the socket only when the queue is
empty. Linux only; elsewhere the filter is skipped and the old behaviour remains.

Only when the master owns its sockets alone: not when gunicorn is being upgraded in place (USR2:
the new master shares them), not with systemd socket activation (systemd keeps the socket for the
next instance), not with ``reuse_port``.
"""
from __future__ import annotations

import ctypes
import signal
import socket
import struct
import sys
from typing import Any

from . import context

_SO_ATTACH_FILTER = 26  # linux/asm-generic/socket.h; not in Python's socket module
# Classic BPF, run on each packet for the listening socket with offset 0 at the TCP header:
#   A = flags byte (offset 13); A &= SYN|ACK; if A == SYN: drop, else: keep.
_DROP_NEW_CONNECTIONS = (
    (0x30, 0, 0, 13),          # ldb [13]
    (0x54, 0, 0, 0x12),        # and #0x12
    (0x15, 0, 1, 0x02),        # jeq #0x02, next, skip one
    (0x06, 0, 0, 0),           # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep the whole packet
)
_filter_buffers: list[Any] = []  # the kernel copies the program; kept anyway for the call's duration


def refuse_new_connections(sock: socket.socket) -> bool:
    """Drop new connection attempts to the listening ``sock`` (queued ones stay acceptable);
    whether it could be done here."""
    if not sys.platform.startswith("linux") or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in _DROP_NEW_CONNECTIONS))
    _filter_buffers.append(program)
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER,
                        struct.pack("HL", len(_DROP_NEW_CONNECTIONS), ctypes.addressof(program)))
    except OSError:
        return False
    return True


def install_stop_hook(arbiter: Any) -> None:
    """gunicorn ``when_ready`` hook (the master, after it set its signal handlers): on SIGTERM,
    mark the server stopping and stop new connections before gunicorn's own handling."""
    context.share_stop_flag()  # the workers are forked after this hook
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        context.mark_server_stopping()
        if arbiter.reexec_pid == arbiter.master_pid == 0 and not arbiter.systemd and not arbiter.cfg.reuse_port:
            for listener in arbiter.LISTENERS:
                sock = getattr(listener, "sock", None)
                if sock is not None:
                    refuse_new_connections(sock)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
