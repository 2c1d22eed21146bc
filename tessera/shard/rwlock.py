"""A readers-writer lock: searches run side by side, an update runs alone.

Writers are preferred: once a writer waits, new readers queue behind it, so a stream of
searches cannot starve updates.

A reader or writer on a thread that must never block (the REST event loop running a quick
read or write, see `api.quick_requests`) sets `NO_WAIT`: where it would wait it gets
`WouldWait` instead, whose `when_free` calls back once the lock is free for it (a read: no
writer holds or waits for it; a write: nobody holds or waits for it), and the request may
run again then. A write clears `NO_WAIT` once it holds the lock: from there it changes
things, and must finish where it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NO_WAIT: ContextVar[bool] = ContextVar("rwlock_no_wait", default=False)


class WouldWait(Exception):
    """A request under `NO_WAIT` would wait: a read for a writer holding or waiting for the
    lock, a write for any holder (or, with no `lock`, for something else)."""

    def __init__(self, lock: RWLock | None = None, writing: bool = False) -> None:
        super().__init__("the read or write would wait")
        self.lock = lock
        self.writing = writing

    def when_free(self, callback: Callable[[], None]) -> None:
        """`callback()` once the lock is free for what stopped: a read once no writer holds
        or waits for it (RWLock.when_free), a write once nobody does (RWLock.when_idle); at
        once when what was in the way was no lock."""
        if self.lock is None:
            callback()
        elif self.writing:
            self.lock.when_idle(callback)
        else:
            self.lock.when_free(callback)


class RWLock:
    def __init__(self) -> None:
        # Readers take the mutex itself (a C context manager; the Condition's own
        # __enter__ is a Python call): every search takes and releases a shared hold.
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0  # guarded by _cond
        self._writer = False  # guarded by _cond
        self._waiting_writers = 0  # guarded by _cond
        self._when_free: list[Callable[[], None]] = []  # guarded by _cond
        self._when_idle: list[Callable[[], None]] = []  # guarded by _cond
        self._reading = Reading(self)

    def read(self) -> Reading:
        """`with lock.read():` a shared hold (a plain object, not a generator: every search
        takes one)."""
        return self._reading

    def acquire_read(self) -> None:
        with self._mutex:
            if (self._writer or self._waiting_writers) and NO_WAIT.get():
                raise WouldWait(self)
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def when_free(self, callback: Callable[[], None]) -> None:
        """Call `callback` once no writer holds or waits for the lock: now when none does,
        else on the thread of the last writer to release it. It must be quick and must not
        raise (it runs inside that writer's release)."""
        with self._cond:
            if self._writer or self._waiting_writers:
                self._when_free.append(callback)
                return
        callback()

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call `callback` once nobody holds or waits for the lock: now when so, else on the
        thread of the last reader or writer to release it. Quick and never raising, as for
        `when_free`. It only says the lock was idle then: by the time the callback's
        caller acts, another may hold it again."""
        with self._cond:
            if self._writer or self._readers or self._waiting_writers:
                self._when_idle.append(callback)
                return
        callback()

    def release_read(self) -> None:
        woken: list[Callable[[], None]] = []
        with self._mutex:
            self._readers -= 1
            if self._readers == 0:
                if self._waiting_writers:  # only writers wait for the readers to leave
                    self._cond.notify_all()
                elif self._when_idle:
                    woken, self._when_idle = self._when_idle, []
        for callback in woken:
            callback()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            if (self._writer or self._readers or self._waiting_writers) and NO_WAIT.get():
                raise WouldWait(self, writing=True)
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
                woken: list[Callable[[], None]] = []
                if not self._waiting_writers:
                    woken = [*self._when_free, *self._when_idle]
                    self._when_free, self._when_idle = [], []
            for callback in woken:
                callback()


class Reading:
    """A shared hold of an RWLock as a context manager; it keeps no state of its own, so
    one serves every reader of the lock."""

    __slots__ = ("_lock",)

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_read()

    def __exit__(self, *exc: object) -> None:
        self._lock.release_read()
