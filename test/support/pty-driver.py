#!/usr/bin/env python3
"""Drive a program through a real pseudo-terminal, like `expect`.

usage: pty-driver.py SCRIPT_JSON -- PROGRAM ARGS...
SCRIPT_JSON is a list of {"expect": "text"} and {"send": "text"} steps.
Prints the whole transcript to stdout; exits with the program's status
(or 99 when an expected text did not appear within 20 seconds).
Node has no pty support of its own; Python's standard library does.
"""
import json
import os
import pty
import select
import sys
import time

script = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

transcript = b""


def read_some(timeout):
    global transcript
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    transcript += data
    return True


for step in script:
    if "send" in step:
        os.write(fd, step["send"].encode())
    else:
        want = step["expect"].encode()
        deadline = time.time() + 20
        while want not in transcript:
            if time.time() > deadline or read_some(deadline - time.time()) is None:
                sys.stdout.write(transcript.decode(errors="replace"))
                sys.stdout.write("\n[pty-driver] timed out waiting for %r\n" % step["expect"])
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                sys.exit(99)

while read_some(5):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(transcript.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 98)
