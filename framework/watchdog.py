"""A rank that stops responding ends the job, named, instead of hanging the others.

Every rank of a multi-process job runs one daemon thread that, every ``interval`` seconds,
increments its own counter in the process group's key-value store (the rendezvous store
torchrun or rank 0 serves) and reads the other ranks' counters. A rank whose counter has
not moved for ``timeout_s`` seconds, by the reader's own clock (no clock agreement needed),
has stopped: a SIGSTOP, a frozen host, a process stuck with the GIL held. The first rank to
see it kills it when it runs on the same host (a stopped process ignores the launcher's
SIGTERM), prints ``error: rank R stopped responding ...`` and exits with
:data:`EXIT_CODE`; the launcher then stops the rest. A rank that finishes marks itself done at exit, so a
peer that is still saving or evaluating does not mistake it for a stopped one.

Heartbeats come from a thread, so a rank that is only slow (a long compile, a big
checkpoint, a collective waiting on a stopped peer) keeps beating; collectives time out
on their own after the process group's timeout (:func:`framework.distributed.init_distributed`).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Optional

PREFIX = "framework/heartbeat/"
EXIT_CODE = 3
_STARTED: list["Watchdog"] = []


def _beat_key(rank: int) -> str:
    return f"{PREFIX}beat/{rank}"


def _done_key(rank: int) -> str:
    return f"{PREFIX}done/{rank}"


def _where_key(rank: int) -> str:
    return f"{PREFIX}where/{rank}"


def _end_job(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    os._exit(EXIT_CODE)  # from a thread: sys.exit would end only the thread


class Watchdog:
    """Heartbeats of ``rank`` and checks of every other rank's, through ``store``."""

    def __init__(self, store: Any, rank: int, world_size: int, timeout_s: float, *,
                 interval_s: Optional[float] = None, on_stall: Callable[[str], None] = _end_job) -> None:
        self.store, self.rank, self.world_size, self.timeout_s = store, rank, world_size, timeout_s
        self.interval_s = interval_s if interval_s is not None else max(0.2, min(5.0, timeout_s / 10))
        self.on_stall = on_stall
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="framework-watchdog", daemon=True)

    def start(self) -> "Watchdog":
        self.store.set(_where_key(self.rank), f"{socket.gethostname()} {os.getpid()}")
        self.store.add(_beat_key(self.rank), 1)  # the first beat before anyone checks it
        self._thread.start()
        return self

    def stop(self, *, done: bool = True) -> None:
        """Stop beating; with ``done``, tell the other ranks this one finished on purpose."""
        self._stop.set()
        if done:
            try:
                self.store.set(_done_key(self.rank), "1")
            except Exception:  # the store's host may have exited first
                pass

    def stalled(self, peers: dict[int, tuple[int, float]], now: float) -> Optional[tuple[int, float]]:
        """Beat once, update ``peers`` (rank -> (counter, when it last moved)) and return
        the first peer silent for ``timeout_s`` and not done, with its silence in seconds."""
        self.store.add(_beat_key(self.rank), 1)
        for peer in range(self.world_size):
            if peer == self.rank:
                continue
            count = self.store.add(_beat_key(peer), 0)
            last = peers.get(peer)
            if last is None or count != last[0]:
                peers[peer] = (count, now)
            elif now - last[1] > self.timeout_s and not self.store.check([_done_key(peer)]):
                return peer, now - last[1]
        return None

    def kill_if_local(self, peer: int) -> None:
        """SIGKILL a stopped peer on this host: a stopped process takes no SIGTERM, so the
        launcher would wait out its grace period (30 s for torchrun) before killing it."""
        try:
            if not self.store.check([_where_key(peer)]):
                return
            host, pid = self.store.get(_where_key(peer)).decode().split()
            if host == socket.gethostname():
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError, RuntimeError):  # gone already, or the store is
            pass

    def _loop(self) -> None:
        peers: dict[int, tuple[int, float]] = {}
        while not self._stop.wait(self.interval_s):
            try:
                found = self.stalled(peers, time.monotonic())
            except Exception:  # the store is gone: the job is ending anyway
                return
            if found is not None and not self._stop.is_set():
                peer, silent = found
                self.kill_if_local(peer)
                self.on_stall(f"error: rank {peer} stopped responding (no heartbeat for {silent:.0f} s, "
                              f"train.collective_timeout_s={self.timeout_s:g}); rank {self.rank} ends the job")
                return


def start_watchdog(store: Any, rank: int, world_size: int, timeout_s: float) -> Optional[Watchdog]:
    """Start this process's watchdog once (no-op for one process); it marks the rank done at exit."""
    if world_size < 2 or _STARTED:
        return _STARTED[0] if _STARTED else None
    watchdog = Watchdog(store, rank, world_size, timeout_s).start()
    _STARTED.append(watchdog)
    atexit.register(watchdog.stop)
    return watchdog
