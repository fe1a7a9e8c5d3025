"""The C library calls the IPC workloads need and Python does not wrap: POSIX message queues,
POSIX named semaphores, SysV shared memory and semaphores (through ctypes)."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    @classmethod
    def of(cls, seconds: float) -> Timespec:
        return cls(int(seconds), int((seconds % 1) * 1e9))


class MqAttr(ctypes.Structure):
    _fields_ = [("mq_flags", ctypes.c_long), ("mq_maxmsg", ctypes.c_long),
                ("mq_msgsize", ctypes.c_long), ("mq_curmsgs", ctypes.c_long),
                ("_reserved", ctypes.c_long * 4)]


class Sembuf(ctypes.Structure):
    _fields_ = [("sem_num", ctypes.c_ushort), ("sem_op", ctypes.c_short),
                ("sem_flg", ctypes.c_short)]


def _check(result: Any, what: str, failed: Any = -1) -> Any:
    if result == failed:
        err = ctypes.get_errno()
        if err in (11, 110):  # EAGAIN, ETIMEDOUT
            raise TimeoutError(f"{what}: {os.strerror(err)}")
        raise OSError(err, f"{what}: {os.strerror(err)}")  # FileExistsError for EEXIST, ...
    return result


# --- POSIX message queues -----------------------------------------------------------------------

_libc.mq_open.restype = ctypes.c_int
_libc.mq_timedsend.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                               ctypes.POINTER(Timespec)]
_libc.mq_timedreceive.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                                  ctypes.c_void_p, ctypes.POINTER(Timespec)]
_libc.mq_timedreceive.restype = ctypes.c_ssize_t


def mq_open(name: str, create: bool, maxmsg: int = 4, msgsize: int = 1024) -> int:
    if create:
        attr = MqAttr(0, maxmsg, msgsize, 0)
        fd = _libc.mq_open(name.encode(), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600,
                           ctypes.byref(attr))
    else:
        fd = _libc.mq_open(name.encode(), os.O_RDWR)
    return int(_check(fd, f"mq_open {name}"))


def mq_send(mqd: int, data: bytes) -> None:
    _check(_libc.mq_timedsend(mqd, data, len(data), 0, ctypes.byref(Timespec.of(time.time() + 5))),
           "mq_send")


def mq_receive(mqd: int, size: int, timeout: float | None = None) -> bytes:
    buf = ctypes.create_string_buffer(size)
    deadline = ctypes.byref(Timespec.of(time.time() + timeout)) if timeout is not None else None
    n = _check(_libc.mq_timedreceive(mqd, buf, size, None, deadline), "mq_receive")
    return buf.raw[:n]


def mq_unlink(name: str) -> None:
    _libc.mq_unlink(name.encode())


# --- POSIX named semaphores ---------------------------------------------------------------------

_libc.sem_open.restype = ctypes.c_void_p
_libc.sem_post.argtypes = [ctypes.c_void_p]
_libc.sem_wait.argtypes = [ctypes.c_void_p]
_libc.sem_timedwait.argtypes = [ctypes.c_void_p, ctypes.POINTER(Timespec)]


def sem_open(name: str, create: bool) -> int:
    if create:
        sem = _libc.sem_open(name.encode(), os.O_CREAT | os.O_EXCL, 0o600, 0)
    else:
        sem = _libc.sem_open(name.encode(), 0)
    return int(_check(sem, f"sem_open {name}", failed=None))


def sem_post(sem: int) -> None:
    _check(_libc.sem_post(sem), "sem_post")


def sem_wait(sem: int, timeout: float | None = None) -> None:
    while True:
        if timeout is None:
            rc = _libc.sem_wait(sem)
        else:
            rc = _libc.sem_timedwait(sem, ctypes.byref(Timespec.of(time.time() + timeout)))
        if rc == 0:
            return
        if ctypes.get_errno() != 4:  # EINTR (a SIGSTOP/SIGCONT): wait again
            _check(rc, "sem_wait")


# --- SysV shared memory and semaphores ----------------------------------------------------------

IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.semtimedop.argtypes = [ctypes.c_int, ctypes.POINTER(Sembuf), ctypes.c_size_t,
                             ctypes.POINTER(Timespec)]


def shmget(key: int, size: int) -> int:
    return int(_check(_libc.shmget(key, size, IPC_CREAT | IPC_EXCL | 0o600), f"shmget {key:#x}"))


def shmat(shmid: int) -> int:
    return int(_check(_libc.shmat(shmid, None, 0), f"shmat {shmid}", failed=ctypes.c_void_p(-1).value))


def shm_remove(shmid: int) -> None:
    _libc.shmctl(shmid, IPC_RMID, None)


def semget(key: int, nsems: int) -> int:
    return int(_check(_libc.semget(key, nsems, IPC_CREAT | IPC_EXCL | 0o600), f"semget {key:#x}"))


def sem_remove(semid: int) -> None:
    _libc.semctl(semid, 0, IPC_RMID)


def semop(semid: int, num: int, op: int, timeout: float | None = None) -> None:
    buf = Sembuf(num, op, 0)
    while True:
        spec = ctypes.byref(Timespec.of(timeout)) if timeout is not None else None
        rc = _libc.semtimedop(semid, ctypes.byref(buf), 1, spec)
        if rc == 0:
            return
        if ctypes.get_errno() != 4:  # EINTR
            _check(rc, f"semop {semid}")


def peek(address: int, size: int) -> bytes:
    return ctypes.string_at(address, size)


def poke(address: int, data: bytes) -> None:
    ctypes.memmove(address, data, len(data))
