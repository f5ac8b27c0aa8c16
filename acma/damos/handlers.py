"""The DAMOS action registry: what each action name does to one region of one target.

A handler is the ops layer's ``apply_scheme`` for one action (mm/damon/paddr.c, vaddr.c):
it gets an :class:`ActionRequest` (the guest, the ops set, the target, the byte range and the
scheme with its ops filters) and returns an :class:`ActionResult` (bytes walked, passed by the
ops filters and applied, and the work's cost in ns). The engine (acma.damos.engine) does
everything around it as the kernel's core does: patterns, quotas, scores, core filters,
charging and stats. Other modules add actions with :func:`register_action` (docs/damos-engine.md).

The kernel's actions are built in; their per-page loops are C (csrc/damos_ops.c).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import _core
from .._core import ffi, lib
from ..errors import ConfigError
from ..mm.memcg import cgroup_ids, normalize
from ..units import PAGE_SIZE
from . import scheme as _scheme
from .scheme import Filter, Scheme


@dataclass(frozen=True)
class ActionRequest:
    """One application of one scheme's action to ``[start, end)`` of target ``target_idx``.

    ``start``/``end`` are bytes: virtual addresses of ``target.process`` for vaddr/fvaddr,
    physical addresses for paddr. ``ops_filters`` are the scheme's ops-layer filters in order
    (first hit decides) and ``ops_filters_default_reject`` what happens when none hits.
    ``vma_memcg`` is the cgroup id of each VMA (acma.mm.memcg) for memcg filters.
    """

    guest: object
    ops: str
    target: object
    target_idx: int
    start: int
    end: int
    scheme: Scheme
    ops_filters: tuple[Filter, ...]
    ops_filters_default_reject: bool
    vma_memcg: np.ndarray

    @property
    def size(self) -> int:
        return self.end - self.start

    def vma_pieces(self) -> list[tuple[object, int, int]]:
        """vaddr/fvaddr: (Vma, first page offset, pages) of each VMA the range overlaps."""
        out = []
        for v in sorted(self.target.process.vmas, key=lambda v: v.start):
            lo, hi = max(self.start, v.start), min(self.end, v.end)
            if lo < hi:
                first = (lo - v.start) // PAGE_SIZE
                out.append((v, first, -(-(hi - v.start) // PAGE_SIZE) - first))
        return out

    def pfn_range(self) -> tuple[int, int]:
        """paddr: the page frames [first, last) the range covers, within the guest."""
        lo = min(self.start // PAGE_SIZE, self.guest.nr_pages)
        return lo, max(lo, min(-(-self.end // PAGE_SIZE), self.guest.nr_pages))


@dataclass(frozen=True)
class ActionResult:
    """What a handler did: bytes of pages it walked, that passed the ops filters and that it
    applied the action to, and its cost (the kdamond's work) in nanoseconds of guest time.
    The engine charges ``applied`` to the quota (with fail_charge_num/denom) and adds
    ``cost_ns`` to the quota's time; sz_tried is the region size, as in the kernel."""

    walked: int = 0
    passed: int = 0
    applied: int = 0
    cost_ns: float = 0.0


Handler = Callable[[ActionRequest], ActionResult]
_HANDLERS: dict[str, Handler] = {}


def register_action(name: str, handler: Handler, score: str | None = None,
                    ops=_scheme.OPS_ALL) -> None:
    """Make ``name`` a DAMOS action that schemes may use, applied by ``handler``.

    ``score`` is the quota prioritisation the action uses (``get_scheme_score``): "cold"
    (older, idler regions first), "hot" (busier first), or None (every region scores 99, so
    only the size of the quota limits it). ``ops`` are the operations sets it supports.
    Registering a name again with a different handler is an error (ConfigError).
    """
    if not callable(handler):
        raise ConfigError(f"action[{name}].handler", handler, "a callable taking an ActionRequest")
    if name in _HANDLERS and _HANDLERS[name] is not handler:
        raise ConfigError("action.name", name, f"a name without a handler yet ({sorted(_HANDLERS)})")
    _scheme.register_action(name, ops, score)
    _HANDLERS[name] = handler


def handler_of(name: str) -> Handler:
    """The handler of action ``name``; ConfigError listing the actions that have one."""
    try:
        return _HANDLERS[name]
    except KeyError:
        raise ConfigError("action", name, f"an action with a handler ({sorted(_HANDLERS)})") from None


# --- the kernel's actions, in C --------------------------------------------------------------

_ACTION_CODES = {name: i for i, name in enumerate(_scheme.KERNEL_ACTIONS)}
_MADVISE = ("willneed", "cold", "pageout", "hugepage", "nohugepage")
_FILTER_CODES = {"anon": lib.ACMA_DAMOS_F_ANON, "active": lib.ACMA_DAMOS_F_ACTIVE,
                 "memcg": lib.ACMA_DAMOS_F_MEMCG, "young": lib.ACMA_DAMOS_F_YOUNG,
                 "hugepage_size": lib.ACMA_DAMOS_F_HUGEPAGE_SIZE, "unmapped": lib.ACMA_DAMOS_F_UNMAPPED}
NO_NODE = 0xFFFFFFFF


def c_filters(filters, memcg_ids: dict[str, int]):
    """The ops filters as a C array (acma_damos_filter[])."""
    arr = ffi.new("acma_damos_filter[]", max(1, len(filters)))
    for c, f in zip(arr, filters):
        c.type, c.matching, c.allow = _FILTER_CODES[f.type], bool(f.matching), bool(f.allow)
        if f.type == "memcg":   # a cgroup nobody is in gets an id no page has
            c.memcg = memcg_ids.get(normalize(f.memcg_path), 0xFFFFFFFF)
        if f.type == "hugepage_size":
            c.min_sz, c.max_sz = min(f.hugepage_size[0], 2**64 - 1), min(f.hugepage_size[1], 2**64 - 1)
    return arr


def _effective_filters(req: ActionRequest) -> tuple[tuple[Filter, ...], bool]:
    """The ops filters the kernel really applies to this action (see the module table)."""
    action, filters = req.scheme.action, req.ops_filters
    if req.ops != "paddr" and action in _MADVISE:
        return (), False                      # damos_madvise: no ops filters on vaddr
    if req.ops == "paddr" and action == "pageout" and not any(f.type == "young" for f in filters):
        # damon_pa_pageout's implicit filter: skip (and mkold) recently accessed pages
        filters = filters + (Filter("young", matching=True, allow=False),)
    return filters, req.ops_filters_default_reject


_REQ_CACHE: dict = {}


def build_request(guest, ops: str, action: str, starts, lens, ilx, filters, default_reject: bool,
                  vma_memcg, target_nid: int = -1, migrate_dests=()):
    """An acma_damos_req for the arguments of :func:`c_apply`, with the buffers it points to
    (keep them alive while the request is used). Everything but the range is built once per
    distinct scheme setting and reused (the engine calls this for every region)."""
    memcg = np.ascontiguousarray(vma_memcg if len(vma_memcg) else [0], dtype=np.uint32)
    ids = cgroup_ids(guest) if any(f.type == "memcg" for f in filters) else {}
    key = (ops, action, tuple(filters), bool(default_reject), memcg.tobytes(), tuple(sorted(ids.items())),
           target_nid, tuple(migrate_dests))
    hit = _REQ_CACHE.get(key)
    if hit is None:
        if len(_REQ_CACHE) > 256:
            _REQ_CACHE.clear()
        q = ffi.new("acma_damos_req *")
        q.ops = lib.ACMA_OPS_PADDR if ops == "paddr" else lib.ACMA_OPS_VADDR
        q.action = _ACTION_CODES[action]
        cf = c_filters(filters, ids)
        q.filters, q.nr_filters, q.default_reject = cf, len(filters), bool(default_reject)
        q.vma_memcg, q.nr_vma_memcg = ffi.cast("uint32_t *", ffi.from_buffer(memcg)), len(vma_memcg)
        q.target_nid = NO_NODE if target_nid < 0 else target_nid
        dests = np.ascontiguousarray([d[0] for d in migrate_dests] or [0], dtype=np.uint32)
        weights = np.ascontiguousarray([d[1] for d in migrate_dests] or [0], dtype=np.uint32)
        q.dest_nid, q.dest_weight = (ffi.cast("uint32_t *", ffi.from_buffer(a)) for a in (dests, weights))
        q.nr_dests = len(migrate_dests)
        hit = _REQ_CACHE[key] = (q, (cf, memcg, dests, weights))
    q, keep = hit
    seg = np.zeros((3, max(1, len(starts))), dtype=np.uint64)
    seg[0, :len(starts)], seg[1, :len(starts)], seg[2, :len(starts)] = starts, lens, ilx
    base = ffi.cast("uint64_t *", ffi.from_buffer(seg))
    n = seg.shape[1]
    q.seg_start, q.seg_len, q.seg_ilx = base, base + n, base + 2 * n
    q.nr_segs = len(starts)
    return q, (keep, seg)


def c_apply(guest, ops: str, action: str, starts, lens, ilx, filters, default_reject: bool,
            vma_memcg, target_nid: int = -1, migrate_dests=()) -> tuple[int, int, int, float]:
    """One acma_damos_apply call: (pages visited, passed, applied, cost ns). ``starts``/
    ``lens`` are gvpn pieces (vaddr, with ``ilx``) or pfn ranges (paddr); ``filters`` are
    Filter objects applied exactly as given."""
    q, _keep = build_request(guest, ops, action, starts, lens, ilx, filters, default_reject, vma_memcg,
                             target_nid, migrate_dests)
    res = ffi.new("acma_damos_res *")
    _core._check(f"damos {action}", lib.acma_damos_apply(guest.core._m, q, res))
    return res.visited, res.passed, res.applied, res.cost_ns


def _fully_mapped(req: ActionRequest) -> bool:
    """True when VMAs cover the whole range, so madvise() on it succeeds (no -ENOMEM hole)."""
    covered = sum(min(req.end, v.end) - max(req.start, v.start) for v in req.target.process.vmas
                  if max(req.start, v.start) < min(req.end, v.end))
    return covered >= req.size


def kernel_action(req: ActionRequest) -> ActionResult:
    """A kernel action through csrc/damos_ops.c, with the vaddr/paddr differences of §3."""
    action = req.scheme.action
    if action in ("hugepage", "nohugepage"):
        raise NotImplementedError(f"DAMOS {action}: acma has no THP model yet (docs/damos-engine.md)")
    filters, default_reject = _effective_filters(req)
    if req.ops == "paddr":
        lo, hi = req.pfn_range()
        starts, lens, ilx = [lo], [hi - lo], [0]
    else:
        pieces = req.vma_pieces()
        starts = [v.gbase + first for v, first, _ in pieces]
        lens = [n for _, _, n in pieces]
        # the interleave index: vm_pgoff plus the page offset; an anon VMA's pgoff is its
        # start page, a file VMA maps its file from offset 0
        ilx = [(v.start // PAGE_SIZE if v.kind == "anon" else 0) + first for v, first, _ in pieces]
    s = req.scheme
    visited, passed, applied, cost = c_apply(req.guest, req.ops, action, starts, lens, ilx, filters,
                                             default_reject, req.vma_memcg, s.target_nid, s.migrate_dests)
    passed *= PAGE_SIZE
    if action == "stat" and not filters:
        passed = 0                            # stat counts passed bytes only under ops filters
    if req.ops != "paddr" and action in _MADVISE:
        # damos_madvise counts the length only when do_madvise() returns 0; madvise_walk_vmas
        # still advises the mapped parts of a range with holes, but returns -ENOMEM for it
        applied, passed = (req.size if _fully_mapped(req) else 0), 0
    else:
        applied *= PAGE_SIZE
    return ActionResult(walked=visited * PAGE_SIZE, passed=passed, applied=applied, cost_ns=cost)


for _name in _scheme.KERNEL_ACTIONS:
    _HANDLERS[_name] = kernel_action
