"""A minimal memory cgroup model: each process belongs to one cgroup (``Process.cgroup``, a
path such as ``/workload``), and every page it maps is charged to that cgroup.

Enough for DAMOS: the ``memcg`` ops filter (a page's own cgroup, exactly, as the kernel
compares ``folio_memcg`` ids) and the ``node_memcg_{used,free}_bp`` goal metrics (the
cgroup's mapped pages on a node, hierarchically, as memcg's lruvec statistics are). acma has
no memcg limits, no per-memcg LRU and no unmapped page cache, so charged = mapped.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._core import ffi, lib
from ..errors import ConfigError

ROOT = "/"


def set_cgroup(process, path: str) -> None:
    """Move a process (and the charge of its pages) to the cgroup ``path``."""
    check_path("cgroup", path)
    process.cgroup = normalize(path)


def check_path(field: str, path) -> None:
    if not isinstance(path, str) or not path.startswith("/") or "//" in path:
        raise ConfigError(field, path, "an absolute cgroup path such as '/workload'")


def normalize(path: str) -> str:
    return "/" + path.strip("/") if path.strip("/") else ROOT


def cgroup_ids(guest) -> dict[str, int]:
    """A stable id per cgroup in use: the root is 0, the others numbered in path order
    (the kernel's mem_cgroup ids are as arbitrary; only equality matters)."""
    paths = sorted({normalize(p.cgroup) for p in guest.processes} - {ROOT})
    return {ROOT: 0, **{p: i + 1 for i, p in enumerate(paths)}}


def vma_cgroup_ids(guest) -> np.ndarray:
    """The cgroup id of every VMA, indexed by the C core's VMA id (acma_damos_req.vma_memcg)."""
    ids = cgroup_ids(guest)
    out = np.zeros(sum(len(p.vmas) for p in guest.processes), dtype=np.uint32)
    for p in guest.processes:
        for v in p.vmas:
            if v.id >= len(out):
                out = np.concatenate([out, np.zeros(v.id + 1 - len(out), np.uint32)])
            out[v.id] = ids[normalize(p.cgroup)]
    return out


def under(path: str, ancestor: str) -> bool:
    """Whether cgroup ``path`` is ``ancestor`` or below it."""
    path, ancestor = normalize(path), normalize(ancestor)
    return ancestor == ROOT or path == ancestor or path.startswith(ancestor + "/")


def memcg_pages(guest, path: str, nid: int | None = None) -> int:
    """Pages charged to cgroup ``path`` and its descendants (on node ``nid``, or every node)."""
    check_path("memcg_path", path)
    mask = np.zeros(len(vma_cgroup_ids(guest)), dtype=np.uint32)
    for p in guest.processes:
        if under(p.cgroup, path):
            for v in p.vmas:
                mask[v.id] = 1
    if nid is not None and not (isinstance(nid, int) and 0 <= nid < guest.nr_nodes):
        return 0
    out = ffi.new("uint64_t *")
    buf = _core._buf(mask, np.uint32, None, "mask")
    _core._check("memcg_pages", lib.acma_memcg_pages(guest.core._m, buf, len(mask), 1,
                                                     lib.ACMA_MAX_NODES if nid is None else nid, out))
    return int(out[0])
