"""Who used the CPU during a measurement: this benchmark (its servers, their stubs, perf_analyzer, itself) or other
processes on the shared machine. The load average counts both; `foreign_cores` is what others took (in cores:
1.0 = one core busy all the time), so a figure can be read as "quiet" or "contended"."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, utime + stime ticks) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[-1].split()
        return int(rest[1]), int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return None


def snapshot() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(entry)
            if st is not None:
                out[int(entry)] = st
    return out


def descendants(snap: dict[int, tuple[int, int]], roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in snap.items():
        children.setdefault(ppid, []).append(pid)
    out, frontier = set(), list(roots)
    while frontier:
        p = frontier.pop()
        if p in out:
            continue
        out.add(p)
        frontier += children.get(p, [])
    return out


class CpuWatch:
    """`with CpuWatch(own_roots) as w: ...` then `w.own_cores`, `w.foreign_cores` (average cores busy)."""

    def __init__(self, own_roots: Iterable[int] = ()) -> None:
        self.roots = {os.getpid(), *own_roots}
        self.own_cores = self.foreign_cores = 0.0

    def __enter__(self) -> CpuWatch:
        self.t0, self.s0 = time.monotonic(), snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        s1 = snapshot()
        own = descendants(s1, self.roots) | descendants(self.s0, self.roots)
        used_own = used_foreign = 0
        for pid, (_, ticks) in s1.items():
            before = self.s0.get(pid, (0, 0))[1]
            delta = max(ticks - before, 0) if pid in self.s0 else ticks if pid in own else 0
            if pid in own:
                used_own += delta
            else:
                used_foreign += delta
        self.own_cores = round(used_own / TICKS / elapsed, 2)
        self.foreign_cores = round(used_foreign / TICKS / elapsed, 2)
