"""The only module that imports the compiled C core: thin checked wrappers around it.

Every wrapper checks dtype, contiguity and length of numpy buffers before they reach C (cffi
checks only byte counts), turns C error codes into exceptions, and gives each C object an
owner the moment it is created.
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import AcmaError, ConfigError, SimulationError
from .units import finite_in

try:
    from ._acma_core import ffi, lib
except ImportError as e:  # pragma: no cover - only without a build
    raise ImportError(
        "acma's C core is not built: install the package with `pip install .` "
        "(or run `python build_ffi.py` in a source checkout)"
    ) from e

PS_FREE, PS_ANON, PS_FILE, PS_KERNEL, PS_DRIVER, PS_OFFLINE = range(6)
STATE_NAMES = ("free", "anon", "file", "kernel", "driver", "offline")
MT_UNMOVABLE, MT_MOVABLE, MT_ISOLATE = 0, 1, 2
ZONE_NORMAL, ZONE_MOVABLE = 0, 1
MAX_ORDER = lib.ACMA_MAX_ORDER
PAGEBLOCK_ORDER = lib.ACMA_PAGEBLOCK_ORDER
PG_YOUNG, PG_REFERENCED, PG_ACTIVE, PG_DIRTY = 1, 2, 4, 8
PG_WORKINGSET, PG_BUDDY, PG_REPORTED, PG_ISOLATED = 16, 32, 64, 128
STALL_KINDS = ("refault", "direct_reclaim", "kswapd", "compact", "minor_fault", "major_fault")
COUNTER_NAMES = (
    "pgfault", "pgmajfault", "pswpin", "pswpout",
    "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
    "pgactivate", "pgdeactivate", "pgrotated", "allocstall",
    "workingset_refault", "workingset_activate", "workingset_restore",
    "pgmigrate_success", "pgmigrate_fail", "oom_kill", "kswapd_wake",
    "fallback_steal", "fallback_claim", "pgfree", "pgalloc",
    "trace_events", "file_dropped",
)
assert len(COUNTER_NAMES) == lib.ACMA_C_NR

_CHECK_NAMES = (
    "ok", "state counts", "pageblock counters", "free list", "overlapping free blocks",
    "free page not on a free list", "zone free count", "LRU list", "mapped page not on an LRU",
    "reverse map", "page table", "fault heap", "VMA counts", "swap accounting", "no memory",
    "Reported flag on a page that is not a free block head",
    "host backing: a page holding guest data is discarded, or the counts disagree",
    "balloon page that is not a driver page",
)


class CoreError(AcmaError, RuntimeError):
    """The C core refused an operation; ``code`` is its ACMA_E* value."""

    def __init__(self, op: str, code: int):
        self.op = op
        self.code = code
        super().__init__(f"{op}: {ffi.string(lib.acma_strerror(code)).decode()}")


class SegfaultError(SimulationError):
    """A touch reached a virtual page that is not in use (the program would get SIGSEGV)."""


class GuestOOM(SimulationError):
    """The guest had no free page even after reclaim (the kernel would OOM-kill)."""


def _check(op: str, rc: int) -> None:
    if rc == 0:
        return
    if rc == lib.ACMA_EOOM:
        raise GuestOOM(f"{op}: the guest is out of memory, even after direct reclaim")
    if rc == lib.ACMA_ENOMEM:
        raise MemoryError(f"{op}: the host process could not allocate memory")
    raise CoreError(op, rc)


@functools.lru_cache(maxsize=None)
def _c_array_type(dtype) -> tuple[np.dtype, str]:
    """numpy dtype and cffi array type for a dtype spec (cached: _buf sits on hot paths)."""
    dt = np.dtype(dtype)
    return dt, f"{dt.name}_t[]"


def _buf(arr, dtype, n: int | None, field: str, writable: bool = False):
    """A C pointer to a contiguous numpy array of exactly ``dtype`` (and length ``n``); an
    output buffer must be writable (cffi would hand C a read-only buffer without a word)."""
    dt, ctype = _c_array_type(dtype)
    if not isinstance(arr, np.ndarray) or arr.dtype != dt or arr.ndim != 1:
        raise ConfigError(field, type(arr).__name__, f"a 1-D numpy array of {dt}")
    if not arr.flags.c_contiguous:
        raise ConfigError(field, "non-contiguous array", "a C-contiguous array")
    if writable and not arr.flags.writeable:
        raise ConfigError(field, "read-only array", "a writable array (C writes into it)")
    if n is not None and arr.shape[0] != n:
        raise ConfigError(field, arr.shape[0], f"length {n}")
    return ffi.from_buffer(ctype, arr) if arr.size else ffi.NULL


def _u32(x: int, field: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or not 0 <= int(x) < 2**32:
        raise ConfigError(field, x, "an integer in [0, 2**32)")
    return int(x)


def _u64(x: int, field: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or not 0 <= int(x) < 2**64:
        raise ConfigError(field, x, "an integer in [0, 2**64)")
    return int(x)


class CoreMem:
    """Owner of one C guest-memory context; methods map one-to-one onto csrc/acma.h."""

    def __init__(self, nr_pages: int, block_pages: int, nr_nodes: int, seed: int,
                 swap_pages: int, swappiness: int, costs: dict, block_node, block_zone,
                 block_online):
        cfg = ffi.new("acma_mem_config *")
        cfg.nr_pages = _u64(nr_pages, "nr_pages")
        cfg.block_pages = _u32(block_pages, "block_pages")
        cfg.nr_nodes = _u32(nr_nodes, "nr_nodes")
        cfg.seed = _u64(seed, "seed")
        cfg.swap_pages = _u64(swap_pages, "swap_pages")
        cfg.swappiness = _u32(swappiness, "swappiness")
        for k, v in costs.items():
            setattr(cfg.costs, k, float(v))
        nb = nr_pages // block_pages
        bn = np.ascontiguousarray(block_node, dtype=np.uint8)
        bz = np.ascontiguousarray(block_zone, dtype=np.uint8)
        bo = np.ascontiguousarray(block_online, dtype=np.uint8)
        out = ffi.new("acma_mem **")
        _check("acma_mem_new", lib.acma_mem_new(
            cfg, _buf(bn, np.uint8, nb, "block_node"), _buf(bz, np.uint8, nb, "block_zone"),
            _buf(bo, np.uint8, nb, "block_online"), out))
        self._m = ffi.gc(out[0], lib.acma_mem_free)
        self.nr_pages = nr_pages
        self.nr_nodes = nr_nodes
        self._trace_keepalive = None

    # --- time and events
    @property
    def now(self) -> int:
        return lib.acma_now(self._m)

    def run(self, t_end: int) -> None:
        if _u64(t_end, "t_end") < self.now:
            raise ConfigError("t_end", t_end, f"a time >= now ({self.now} µs)")
        rc = lib.acma_run(self._m, t_end)
        if rc == lib.ACMA_ESTATE:
            raise SegfaultError(f"run: at {self.now} µs a trace event touched a page outside the in-use part "
                                "of its VMA (the program would get SIGSEGV); the event was consumed")
        _check("run", rc)

    def set_trace(self, t_us: np.ndarray, gvpn_w: np.ndarray) -> None:
        n = len(t_us)
        _buf(t_us, np.uint64, n, "trace.time"), _buf(gvpn_w, np.uint64, n, "trace.gvpn")
        t_own, g_own = t_us.copy(), gvpn_w.copy()   # C keeps pointers: into arrays only we hold
        _check("set_trace", lib.acma_set_trace(self._m, _buf(t_own, np.uint64, n, "trace.time"),
                                               _buf(g_own, np.uint64, n, "trace.gvpn"), n))
        self._trace_keepalive = (t_own, g_own)

    def trace_pos(self) -> int:
        out = ffi.new("uint64_t *")
        _check("trace_pos", lib.acma_trace_pos(self._m, out))
        return out[0]

    def touch(self, gvpn: int, write: bool) -> None:
        rc = lib.acma_touch(self._m, _u64(gvpn, "gvpn"), bool(write))
        if rc == lib.ACMA_ESTATE:
            raise SegfaultError(f"touch: virtual page {gvpn} is not in use (the program would get SIGSEGV)")
        _check("touch", rc)

    def drain_stalls(self) -> np.ndarray:
        """The PSI stall log since the last drain: structured array (t_us, dur_ns, kind)."""
        chunks = []
        while True:
            buf = np.zeros(4096, dtype=[("t_us", "<u8"), ("dur_ns", "<u8"), ("kind", "<u4"), ("pad", "<u4")])
            n = lib.acma_stall_drain(self._m, ffi.cast("acma_stall *", ffi.from_buffer(buf)), len(buf))
            chunks.append(buf[:n])
            if n < len(buf):
                return np.concatenate(chunks)

    # --- VMAs
    def vma_add(self, kind: int, npages: int, nalloc: int, node: int, explicit_only: bool) -> tuple[int, int]:
        vid, gbase = ffi.new("uint32_t *"), ffi.new("uint64_t *")
        _check("vma_add", lib.acma_vma_add(self._m, _u32(kind, "kind"), _u32(npages, "npages"),
                                           _u32(nalloc, "nalloc"), _u32(node, "node"),
                                           bool(explicit_only), vid, gbase))
        return vid[0], gbase[0]

    def vma_set_rate(self, vma: int, rate_hz: float, write_frac: float) -> None:
        if not finite_in(rate_hz, 0, 1e9):
            raise ConfigError("rate_hz", rate_hz, "touches per second per page in [0, 1e9]")
        if not finite_in(write_frac, 0, 1):
            raise ConfigError("write_fraction", write_frac, "a fraction in [0, 1]")
        _check("vma_set_rate", lib.acma_vma_set_rate(self._m, _u32(vma, "vma"), float(rate_hz), float(write_frac)))

    def vma_resize(self, vma: int, nalloc: int) -> None:
        _check("vma_resize", lib.acma_vma_resize(self._m, _u32(vma, "vma"), _u32(nalloc, "nalloc")))

    def vma_info(self, vma: int) -> dict:
        out = np.zeros(8, dtype=np.uint64)
        _check("vma_info", lib.acma_vma_info(self._m, _u32(vma, "vma"), _buf(out, np.uint64, 8, "out")))
        keys = ("gbase", "npages", "nalloc", "present", "swapped", "file_evicted", "fresh", "next_fault_us")
        return dict(zip(keys, (int(x) for x in out)))

    def _vma_npages(self, vma: int, npages: int) -> int:
        """The VMA's own page count (C writes that many), which the caller's must equal."""
        real = self.vma_info(vma)["npages"]
        if _u64(npages, "npages") != real:
            raise ConfigError("npages", npages, f"the VMA's page count ({real})")
        return real

    def vma_ptes(self, vma: int, npages: int) -> np.ndarray:
        out = np.zeros(self._vma_npages(vma, npages), dtype=np.uint32)
        _check("vma_ptes", lib.acma_vma_ptes(self._m, _u32(vma, "vma"), _buf(out, np.uint32, npages, "out")))
        return out

    def vma_lambda(self, vma: int, t: int) -> float:
        return lib.acma_vma_lambda(self._m, _u32(vma, "vma"), _u64(t, "t"))

    def truth_accessed(self, vma: int, npages: int, t0: int, t1: int) -> np.ndarray:
        out = np.zeros(self._vma_npages(vma, npages), dtype=np.uint8)
        _check("truth_accessed", lib.acma_truth_accessed(self._m, _u32(vma, "vma"), _u64(t0, "t0"),
                                                         _u64(t1, "t1"), _buf(out, np.uint8, npages, "out")))
        return out.astype(bool)

    # --- allocation, blocks, migration
    def alloc_pages(self, order: int, mt: int, state: int, node: int) -> int:
        pfn = ffi.new("uint32_t *")
        _check("alloc_pages", lib.acma_alloc_pages(self._m, _u32(order, "order"), _u32(mt, "mt"),
                                                   _u32(state, "state"), _u32(node, "node"), pfn))
        return pfn[0]

    def free_pages(self, pfn: int, order: int) -> None:
        _check("free_pages", lib.acma_free_pages(self._m, _u32(pfn, "pfn"), _u32(order, "order")))

    def block_online(self, block: int, zone_type: int) -> None:
        _check("block_online", lib.acma_block_online(self._m, _u32(block, "block"), _u32(zone_type, "zone")))

    def block_offline(self, block: int) -> None:
        _check("block_offline", lib.acma_block_offline(self._m, _u32(block, "block")))

    def migrate_page(self, pfn: int) -> int:
        out = ffi.new("uint32_t *")
        _check("migrate_page", lib.acma_migrate_page(self._m, _u32(pfn, "pfn"), out))
        return out[0]

    def reclaim(self, node: int, nr: int) -> int:
        out = ffi.new("uint64_t *")
        _check("reclaim", lib.acma_reclaim(self._m, _u32(node, "node"), _u64(nr, "nr"), out))
        return out[0]

    # --- accessed bits
    def young_pfns(self, pfns: np.ndarray, clear: bool = True) -> np.ndarray:
        out = np.zeros(len(pfns), dtype=np.uint8)
        _check("young_pfns", lib.acma_young_pfns(self._m, _buf(pfns, np.uint32, None, "pfns"), len(pfns),
                                                 _buf(out, np.uint8, None, "out"), bool(clear)))
        return out.astype(bool)

    def young_gvpns(self, gvpns: np.ndarray, clear: bool = True) -> np.ndarray:
        out = np.zeros(len(gvpns), dtype=np.uint8)
        _check("young_gvpns", lib.acma_young_gvpns(self._m, _buf(gvpns, np.uint64, None, "gvpns"), len(gvpns),
                                                   _buf(out, np.uint8, None, "out"), bool(clear)))
        return out.astype(bool)

    def idle_bitmap(self, pfn_start: int, npages: int) -> np.ndarray:
        pfn_start, npages = _u64(pfn_start, "pfn_start"), _u64(npages, "npages")
        if pfn_start > self.nr_pages or npages > self.nr_pages - pfn_start:
            raise ConfigError("npages", npages, f"a range inside the guest's {self.nr_pages} pages")
        out = np.zeros((npages + 63) // 64, dtype=np.uint64)
        _check("idle_bitmap", lib.acma_idle_bitmap(self._m, _u64(pfn_start, "pfn_start"), _u64(npages, "npages"),
                                                   _buf(out, np.uint64, None, "bitmap")))
        return out

    # --- views
    def zone_info(self, zone: int) -> dict:
        out = np.zeros(6, dtype=np.uint64)
        _check("zone_info", lib.acma_zone_info(self._m, _u32(zone, "zone"), _buf(out, np.uint64, 6, "out")))
        return dict(zip(("free", "managed", "present", "min", "low", "high"), (int(x) for x in out)))

    def set_watermarks(self, zone: int, wmin: int, low: int, high: int) -> None:
        _check("set_watermarks", lib.acma_zone_set_watermarks(self._m, _u32(zone, "zone"), _u64(wmin, "min"),
                                                              _u64(low, "low"), _u64(high, "high")))

    def state_counts(self) -> dict:
        out = np.zeros(lib.ACMA_PS_NSTATES, dtype=np.uint64)
        _check("state_counts", lib.acma_state_counts(self._m, _buf(out, np.uint64, None, "out")))
        return dict(zip(STATE_NAMES, (int(x) for x in out)))

    def counters(self) -> dict:
        out = np.zeros(lib.ACMA_C_NR, dtype=np.uint64)
        _check("counters", lib.acma_counters(self._m, _buf(out, np.uint64, None, "out")))
        return dict(zip(COUNTER_NAMES, (int(x) for x in out)))

    def node_lru(self, node: int) -> dict:
        out = np.zeros(4, dtype=np.uint64)
        _check("node_lru", lib.acma_node_lru(self._m, _u32(node, "node"), _buf(out, np.uint64, 4, "out")))
        return dict(zip(("inactive_anon", "active_anon", "inactive_file", "active_file"), (int(x) for x in out)))

    def swap_used(self) -> int:
        out = ffi.new("uint64_t *")
        _check("swap_used", lib.acma_swap_used(self._m, out))
        return out[0]

    def stall_totals_ns(self) -> dict:
        out = np.zeros(6, dtype=np.uint64)
        _check("stall_totals", lib.acma_stall_totals(self._m, _buf(out, np.uint64, 6, "out")))
        return dict(zip(STALL_KINDS, (int(x) for x in out)))

    def buddyinfo(self, zone: int) -> list[int]:
        out = np.zeros(MAX_ORDER + 1, dtype=np.uint64)
        _check("buddyinfo", lib.acma_buddyinfo(self._m, _u32(zone, "zone"), _buf(out, np.uint64, None, "out")))
        return [int(x) for x in out]

    def pages(self, start: int = 0, n: int | None = None) -> dict:
        start = _u64(start, "start")
        n = self.nr_pages - min(start, self.nr_pages) if n is None else _u64(n, "n")
        if start > self.nr_pages or n > self.nr_pages - start:
            raise ConfigError("n", n, f"a range inside the guest's {self.nr_pages} pages")
        st, fl, od = (np.zeros(n, dtype=np.uint8) for _ in range(3))
        ow = np.zeros(n, dtype=np.uint32)
        _check("copy_pages", lib.acma_copy_pages(self._m, _u64(start, "start"), _u64(n, "n"),
                                                 _buf(st, np.uint8, n, "state"), _buf(fl, np.uint8, n, "flags"),
                                                 _buf(od, np.uint8, n, "order"), _buf(ow, np.uint32, n, "owner")))
        return {"state": st, "flags": fl, "order": od, "owner": ow}

    def pageblocks(self) -> dict:
        npb = self.nr_pages >> PAGEBLOCK_ORDER
        mt = np.zeros(npb, dtype=np.uint8)
        nf, nm, nu = (np.zeros(npb, dtype=np.uint16) for _ in range(3))
        _check("copy_pageblocks", lib.acma_copy_pageblocks(
            self._m, _buf(mt, np.uint8, npb, "mt"), _buf(nf, np.uint16, npb, "nfree"),
            _buf(nm, np.uint16, npb, "nmovable"), _buf(nu, np.uint16, npb, "nunmovable")))
        return {"mt": mt, "free": nf, "movable": nm, "unmovable": nu}

    def free_list(self, zone: int, order: int, mt: int) -> np.ndarray:
        if _u32(order, "order") > MAX_ORDER:
            raise ConfigError("order", order, f"an order in [0, {MAX_ORDER}]")
        cap = self.nr_pages >> int(order)
        out = np.zeros(max(cap, 1), dtype=np.uint32)
        n = ffi.new("uint64_t *")
        _check("free_list", lib.acma_free_list(self._m, _u32(zone, "zone"), _u32(order, "order"), _u32(mt, "mt"),
                                               _buf(out, np.uint32, None, "out"), len(out), n))
        return out[: n[0]].copy()

    def scan_pageblocks(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Bitmaps (one bit per 2 MiB pageblock) of fully-free and movable-only blocks."""
        words = ((self.nr_pages >> PAGEBLOCK_ORDER) + 63) // 64
        ff, mo = np.zeros(words, dtype=np.uint64), np.zeros(words, dtype=np.uint64)
        nf, nm = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        _check("scan_pageblocks", lib.acma_scan_pageblocks(self._m, _buf(ff, np.uint64, None, "ff"),
                                                           _buf(mo, np.uint64, None, "mo"), nf, nm))
        return ff, mo, nf[0], nm[0]

    def scan_pageblocks_into(self, ff: np.ndarray, mo: np.ndarray) -> tuple[int, int]:
        """The same search into caller buffers (the batch path benchmarks use)."""
        words = ((self.nr_pages >> PAGEBLOCK_ORDER) + 63) // 64
        nf, nm = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        _check("scan_pageblocks", lib.acma_scan_pageblocks(self._m, _buf(ff, np.uint64, words, "ff", True),
                                                           _buf(mo, np.uint64, words, "mo", True), nf, nm))
        return nf[0], nm[0]

    # --- checkpoints
    def save(self) -> bytes:
        """The whole C state as bytes (the trace stream is saved by __getstate__, not here)."""
        n = ffi.new("uint64_t *")
        lib.acma_mem_save(self._m, ffi.NULL, 0, n)
        buf = bytearray(n[0])
        _check("mem_save", lib.acma_mem_save(self._m, ffi.from_buffer(buf), len(buf), n))
        return bytes(buf)

    def __getstate__(self) -> dict:
        return {"blob": self.save(), "nr_pages": self.nr_pages, "nr_nodes": self.nr_nodes,
                "trace": self._trace_keepalive, "trace_pos": self.trace_pos()}

    def __setstate__(self, st: dict) -> None:
        blob = st["blob"]
        out = ffi.new("acma_mem **")
        rc = lib.acma_mem_load(ffi.from_buffer(blob), len(blob), out)
        if rc == lib.ACMA_EINVAL:
            raise ConfigError("checkpoint", f"{len(blob)} bytes", "a checkpoint written by CoreMem.save, intact")
        _check("mem_load", rc)
        self._m = ffi.gc(out[0], lib.acma_mem_free)
        self.nr_pages, self.nr_nodes = st["nr_pages"], st["nr_nodes"]
        self._trace_keepalive = None
        if st["trace"] is not None:
            self.set_trace(*st["trace"])
            _check("trace_seek", lib.acma_trace_seek(self._m, st["trace_pos"]))

    def host_bytes(self) -> int:
        return lib.acma_mem_bytes(self._m)

    def check(self) -> None:
        """Raise AssertionError naming the first broken invariant, if any."""
        what = ffi.new("uint64_t *")
        rc = lib.acma_check(self._m, what)
        if rc == lib.ACMA_ENOMEM:
            raise MemoryError("acma_check: no memory for the check")
        if rc:
            raise AssertionError(f"guest memory invariant broken: {_CHECK_NAMES[what[0]]}")


def first_arrival_after(seed: int, gvpn: int, x: float) -> float:
    """The C access model's next touch (on the lambda axis) of page ``gvpn`` after ``x``."""
    try:
        xf = float(x)
    except (OverflowError, TypeError, ValueError):
        raise ConfigError("x", x, "a real number (a float's range)") from None
    return lib.acma_first_arrival_after(_u64(seed, "seed"), _u64(gvpn, "gvpn"), xf)
