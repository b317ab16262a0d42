"""Client processes forked from one process that has already imported the libraries.

A client at rest is mostly its libraries: torch, transformers, peft and grpc take close to 300 MiB
of private memory per process. Forked from a *zygote* that imported them once (and froze its
objects out of the garbage collector's reach), every client shares those pages copy-on-write,
so dozens of clients fit on one machine. Each client is still its own process with its own
connection, state and data; only the loaded code is shared.

The zygote is started by `Zygote` and speaks JSON lines: on standard input, requests to start a
command (`protoken` arguments, a log file); on standard output, the pid of each process started
and the exit code of each that ended. Nothing is unpickled. The zygote forks from its only
thread (it starts none), which is what makes forking after importing torch and grpc safe; it
reaps its children and, when its standard input closes, terminates them and exits.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

PRELOAD = ("torch", "transformers", "peft", "grpc", "protoken.cli", "protoken.client.daemon",
           "protoken.client.trainer", "protoken.client.probes")


class ForkedProcess:
    """A process started by the zygote, with the part of `subprocess.Popen` the launcher uses."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self._zygote = zygote
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        return self._zygote.exit_code(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._zygote.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """Starts the zygote process and forks `protoken` commands from it."""

    def __init__(self, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "protoken.zygote"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        self._changed = threading.Condition()
        self._started: list[int] = []
        self._exits: dict[int, int] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            event = json.loads(line)
            with self._changed:
                if "started" in event:
                    self._started.append(int(event["started"]))
                else:
                    self._exits[int(event["exited"])] = int(event["code"])
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def start(self, args: list[str], log: Path, timeout: float = 120) -> ForkedProcess:
        """Fork `protoken ARGS` with its output appended to `log`."""
        with self._changed:
            known = len(self._started)
            self._proc.stdin.write(json.dumps({"args": args, "log": str(log)}) + "\n")
            self._proc.stdin.flush()
            if not self._changed.wait_for(lambda: len(self._started) > known or self._proc.poll() is not None,
                                          timeout):
                raise RuntimeError(f"the zygote did not start a process within {timeout:g} s")
            if len(self._started) == known:
                raise RuntimeError(f"the zygote exited with code {self._proc.returncode}")
            return ForkedProcess(self, self._started[known])

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self._reader.is_alive(), timeout)
            return self._exits.get(pid)

    def close(self, timeout: float = 30) -> None:
        """Close the zygote's input: it terminates the processes still running and exits."""
        if self._proc.stdin and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)


# --- the zygote process ---------------------------------------------------------------------------

def _child(request: dict, zygote_fds: list[int]) -> None:
    """In the forked process: output to the log, run the command, exit with its code."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in zygote_fds:
            os.close(fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        gc.unfreeze()
        from protoken.cli import main

        code = main(list(request["args"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _emit(channel: int, event: dict) -> None:
    os.write(channel, (json.dumps(event) + "\n").encode())


def _reap(channel: int, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _emit(channel, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _serve() -> None:
    channel = os.dup(1)  # the events; whatever a library prints goes to standard error instead
    os.dup2(2, 1)
    for module in PRELOAD:
        __import__(module)
    gc.collect()
    gc.freeze()  # the collector never writes to these objects again, so their pages stay shared
    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "request")
    selector.register(wakeup_r, selectors.EVENT_READ, "child")
    children: set[int] = set()
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.data == "child":
                os.read(wakeup_r, 4096)
                _reap(channel, children)
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                _shut_down(channel, children)
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    _child(request, [channel, wakeup_r, wakeup_w])
                children.add(pid)
                _emit(channel, {"started": pid})


def _shut_down(channel: int, children: set[int], grace_s: float = 15) -> None:
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while children and time.time() < deadline:
        _reap(channel, children)
        time.sleep(0.1)
    for pid in children:
        os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    _serve()
