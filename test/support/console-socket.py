#!/usr/bin/env python3
"""The caller's side of runc's --console-socket, as conmon and containerd's shim do it:
listen on a unix socket, receive the pty master (SCM_RIGHTS), then copy what the
container writes to its terminal to stdout until it closes.

usage: console-socket.py SOCKET-PATH READY-FILE
READY-FILE is created once the socket listens; the master's output follows on stdout."""
import os
import socket
import sys

path, ready = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
open(ready, "w").close()
conn, _ = server.accept()
_, fds, _, _ = socket.recv_fds(conn, 1024, 1)
if not fds:
    sys.exit("no descriptor received")
while True:
    try:
        data = os.read(fds[0], 4096)
    except OSError:  # EIO: every slave end is closed
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
