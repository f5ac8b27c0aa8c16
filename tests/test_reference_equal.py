"""Every C kernel equals its small Python reference (acma/_reference) on generated inputs.

buddy: allocations, frees, faults, unmaps and block online/offline driven in lockstep on the
C core and on acma._reference.buddy, comparing every returned pfn, free list (entry order
included), pageblock, zone count and page state after every step. access: the access model's
hash realisation, young bits and page_idle. pageblocks: the 2 MiB search. replay: the trace
path of acma_run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acma import _core
from acma._core import CoreError, GuestOOM, SegfaultError
from acma._reference import access as ra
from acma._reference import pageblocks as rp
from acma._reference import replay as rr
from acma._reference.buddy import OK, BuddyRef
from acma.mm.guest import Guest, GuestConfig, NodeConfig

PTE_NP = 0x80000000
U64 = (1 << 64) - 1
QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]


def examples(n: int) -> int:
    """n examples under the default profile; more when a soak profile (tests/conftest.py) asks."""
    return max(n, settings.default.max_examples) if settings.default.max_examples > 100 else n


def runs(n: int) -> settings:
    return settings(max_examples=examples(n), deadline=None, suppress_health_check=QUIET)


def zero_watermarks(g: Guest) -> None:
    for z in range(g.nr_nodes * 2):
        g.core.set_watermarks(z, 0, 0, 0)


def rc_of(fn, *args) -> int:
    """The ACMA_E* code a core call failed with (0 on success)."""
    try:
        fn(*args)
    except GuestOOM:
        return _core.lib.ACMA_EOOM
    except CoreError as e:
        return e.code
    return 0


# =========================================================================== buddy

BUDDY_CONFIGS = [
    GuestConfig(size="64 MiB", block_size="4 MiB", swap=0),
    GuestConfig(size="64 MiB", block_size="4 MiB", swap=0,
                nodes=(NodeConfig(size="64 MiB", movable="16 MiB", offline="8 MiB"),)),
    GuestConfig(size="128 MiB", block_size="4 MiB", swap=0,
                nodes=(NodeConfig(size="64 MiB", movable="16 MiB", offline="8 MiB"),
                       NodeConfig(size="64 MiB", offline="8 MiB"))),
    GuestConfig(size="64 MiB", block_size="8 MiB", swap=0,
                nodes=(NodeConfig(size="32 MiB", offline="8 MiB"),
                       NodeConfig(size="32 MiB", movable="16 MiB"))),
    GuestConfig(size="64 MiB", block_size="4 MiB", swap=0,
                nodes=(NodeConfig(size="64 MiB", movable="8 MiB", offline="40 MiB"),)),
]
VMA_PAGES = 2048
ORDERS = st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4, 5, 7, 8, 9, 10])


def assert_same_buddy(g: Guest, ref: BuddyRef, vmas) -> None:
    """Every free list (head to tail), pageblock, zone count, page state and mapping."""
    for z in range(g.nr_nodes * 2):
        for o in range(_core.MAX_ORDER + 1):
            for mt in (0, 1):
                c = g.core.free_list(z, o, mt).tolist()
                assert c == ref.free_list(z, o, mt), f"free list zone {z} order {o} mt {mt}"
        info = g.core.zone_info(z)
        assert (info["free"], info["managed"], info["present"]) == \
            (ref.zone_free[z], ref.managed[z], ref.present[z]), f"zone {z}"
        assert g.core.buddyinfo(z) == [ref.nr_free(z, o) for o in range(_core.MAX_ORDER + 1)]
    pb, rpb = g.core.pageblocks(), ref.pageblocks()
    for k in ("mt", "free", "movable", "unmovable"):
        assert pb[k].tolist() == rpb[k], f"pageblock {k}"
    assert bytes(g.core.pages()["state"]) == bytes(ref.state)
    counters = g.core.counters()
    for k, v in ref.counters.items():
        assert counters[k] == v, k
    ptes = [v.ptes() for v in vmas]
    for pfn, (vi, off) in ref.mapped.items():
        assert ptes[vi][off] == pfn
    assert sum(int(((p & PTE_NP) == 0).sum()) for p in ptes) == len(ref.mapped)
    g.check()


class BuddyLockstep:
    """A guest (watermarks zero, one explicit-only VMA per node) and its BuddyRef, driven
    one operation at a time; every operation checks its own result against the reference."""

    def __init__(self, cfg: GuestConfig):
        self.g = Guest(cfg)
        zero_watermarks(self.g)
        self.ref = BuddyRef.from_guest(self.g)
        proc = self.g.spawn()
        # faults of these VMAs are movable order-0 allocations from their node
        self.vmas = [proc.mmap(VMA_PAGES * 4096, explicit=True, node=n) for n in range(self.g.nr_nodes)]
        self.allocated: list[tuple[int, int]] = []
        self.nblocks = self.g.nr_pages // self.g.block_pages

    def alloc(self, order, node, movable, driver):
        node %= self.g.nr_nodes
        state = _core.PS_DRIVER if driver else _core.PS_KERNEL
        try:
            if driver:
                pfn = self.g.core.alloc_pages(order, int(movable), state, node)
            else:
                pfn = self.g.kernel_alloc(order, node, movable)
        except GuestOOM:
            pfn = None
        rc, rpfn = self.ref.alloc_pages(order, int(movable), state, node)
        assert pfn == rpfn, f"alloc order {order} node {node} movable {movable}"
        assert (rc == OK) == (pfn is not None)
        if pfn is not None:
            self.allocated.append((pfn, order))

    def bulk(self, order, count, node, movable):
        for _ in range(count):
            self.alloc(order, node, movable, False)

    def free(self, i):
        if self.allocated:
            pfn, order = self.allocated.pop(i % len(self.allocated))
            self.g.kernel_free(pfn, order)
            assert self.ref.free_pages(pfn, order) == OK

    def touch(self, vi, start, n):
        """Touches of not-present pages (faults) in [start, start + n), until one OOMs."""
        vi %= len(self.vmas)
        v = self.vmas[vi]
        before = v.ptes()
        offs = [o for o in range(start, min(VMA_PAGES, start + n)) if before[o] & PTE_NP]
        done = 0
        for off in offs:
            try:
                v.touch(off)
            except GuestOOM:
                break
            done += 1
        after = v.ptes()
        for k, off in enumerate(offs):
            rc, pfn = self.ref.map_page(vi % self.g.nr_nodes, (vi, off))
            if k == done:
                assert rc != OK and after[off] & PTE_NP
                break
            assert rc == OK and pfn == after[off]

    def shrink(self, vi, keep):
        """munmap the tail of a VMA (pages freed in offset order), then grow it back."""
        v = self.vmas[vi % len(self.vmas)]
        ptes = v.ptes()
        v.resize(keep)
        for off in range(keep, VMA_PAGES):
            if not ptes[off] & PTE_NP:
                self.ref.unmap_page(int(ptes[off]))
        v.resize(VMA_PAGES)

    def online(self, k, zone_type):
        offline = [b for b in range(self.nblocks) if not self.ref.blk_online[b]]
        b = offline[k % len(offline)] if offline else k % self.nblocks
        assert rc_of(self.g.core.block_online, b, zone_type) == self.ref.block_online(b, zone_type)

    def offline(self, b):
        b %= self.nblocks
        assert rc_of(self.g.core.block_offline, b) == self.ref.block_offline(b)

    def check(self):
        assert_same_buddy(self.g, self.ref, self.vmas)


IDX = st.integers(0, 1 << 16)
BUDDY_OPS = st.one_of(
    st.tuples(st.just("alloc"), ORDERS, st.integers(0, 1), st.booleans(), st.booleans()),
    st.tuples(st.just("alloc"), ORDERS, st.integers(0, 1), st.booleans(), st.just(False)),
    st.tuples(st.just("alloc"), st.sampled_from([0, 0, 1, 2, 3]), st.integers(0, 1), st.booleans(),
              st.booleans()),
    st.tuples(st.just("bulk"), st.integers(4, 10), st.integers(1, 12), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("free"), IDX),
    st.tuples(st.just("free"), IDX),
    st.tuples(st.just("touch"), st.integers(0, 1), st.integers(0, VMA_PAGES - 1), st.integers(1, 400)),
    st.tuples(st.just("touch"), st.integers(0, 1), st.integers(0, VMA_PAGES - 1), st.integers(1, 40)),
    st.tuples(st.just("shrink"), st.integers(0, 1), st.integers(0, VMA_PAGES)),
    st.tuples(st.just("online"), IDX, st.sampled_from([0, 1])),
    st.tuples(st.just("offline"), st.integers(0, 31)),
)


@runs(120)
@given(cfg=st.sampled_from(BUDDY_CONFIGS), ops=st.lists(BUDDY_OPS, min_size=30, max_size=120))
def test_buddy_equal(cfg, ops):
    """Allocations, frees, faults, unmaps, online and offline: C == BuddyRef after each."""
    m = BuddyLockstep(cfg)
    m.check()
    for op in ops:
        getattr(m, op[0])(*op[1:])
        m.check()


@runs(15)
@given(movable_fill=st.booleans(), fill_order=st.integers(0, 3), freed=st.floats(0.02, 0.6),
       seed=st.integers(0, 2**32), orders=st.lists(st.integers(0, 5), min_size=5, max_size=40))
def test_buddy_fallback_under_pressure(movable_fill, fill_order, freed, seed, orders):
    """Memory full of one type with scattered holes, then requests of the other type: the
    claim is refused (too few free or alike pages, or the blocks are too small) and the
    steal path splits the smallest fallback block."""
    rng = np.random.default_rng(seed)
    m = BuddyLockstep(BUDDY_CONFIGS[-1])
    while True:
        n = len(m.allocated)
        m.alloc(fill_order, 0, movable_fill, movable_fill)   # movable fill: driver pages
        if len(m.allocated) == n:
            break
    m.check()
    for i in sorted(rng.choice(len(m.allocated), int(len(m.allocated) * freed), replace=False))[::-1]:
        m.free(int(i))
    m.check()
    for order in orders:
        m.alloc(order, 0, not movable_fill, False)
    m.check()
    while m.allocated:                           # and back: merges retype pageblocks
        m.free(int(rng.integers(len(m.allocated))))
    m.check()


@pytest.mark.parametrize("case,claimed", [("free256", True), ("free255", False),
                                          ("order4_blocks", True)])
def test_buddy_claim_boundaries(case, claimed):
    """A movable request whose only fallback is one unmovable pageblock: claimed at exactly
    256 free + alike pages and when its largest free block is order 4, stolen below."""
    m = BuddyLockstep(BUDDY_CONFIGS[0])
    m.alloc(0, 0, False, False)                 # pfn 0: claims pageblocks 0 and 1
    for _ in range(15):
        m.alloc(10, 0, True, False)             # every other block: no movable list left
    m.alloc(9, 0, False, False)                 # pageblock 1
    if case == "free256":
        for order in range(7, -1, -1):
            m.alloc(order, 0, False, False)     # pageblock 0 keeps just [256, 512)
    elif case == "free255":
        m.alloc(8, 0, False, False)             # pageblock 0 keeps [1, 256) in 8 blocks
    else:
        for order in range(4):
            m.alloc(order, 0, False, False)
        for _ in range(31):
            m.alloc(4, 0, False, False)         # [16, 512) in 16-page chunks
        for pfn, order in list(m.allocated):
            if order == 4 and pfn % 32 == 16:   # every other chunk: 16 free order-4 blocks
                m.free(m.allocated.index((pfn, order)))
    assert m.g.core.pageblocks()["free"][0] == (255 if case == "free255" else 256)
    before = m.g.core.counters()
    m.alloc(0, 0, True, False)
    m.check()
    after = m.g.core.counters()
    assert after["fallback_claim"] - before["fallback_claim"] == int(claimed)
    assert after["fallback_steal"] - before["fallback_steal"] == int(not claimed)


def _fill(g: Guest, ref: BuddyRef, node: int, allocated: list) -> None:
    """Unmovable kernel allocations, largest orders first, until ZONE_NORMAL has no page left."""
    for order in range(_core.MAX_ORDER, -1, -1):
        while True:
            rc, rpfn = ref.alloc_pages(order, 0, _core.PS_KERNEL, node)
            try:
                pfn = g.kernel_alloc(order, node)
            except GuestOOM:
                pfn = None
            assert pfn == rpfn
            if pfn is None:
                break
            allocated.append((pfn, order))


@runs(12)
@given(mapped=st.integers(1, 600), spare=st.integers(0, 6), movable=st.booleans(),
       seed=st.integers(0, 2**32))
def test_offline_undo_when_migration_fails(mapped, spare, movable, seed):
    """offline_pages with too few free pages in the zones migration may use: a few pages
    migrate, then the isolation is undone (unisolate frees to the tail) and EBUSY comes
    back. A page of ZONE_NORMAL never migrates into a free ZONE_MOVABLE."""
    rng = np.random.default_rng(seed)
    node = NodeConfig(size="64 MiB", movable="8 MiB" if movable else 0)
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0, nodes=(node,)))
    zero_watermarks(g)
    ref = BuddyRef.from_guest(g)

    def kalloc(order, mov):
        pfn = g.kernel_alloc(order, 0, mov)
        assert ref.alloc_pages(order, int(mov), _core.PS_KERNEL, 0) == (OK, pfn)
        return pfn

    def kfree(pfn, order):
        g.kernel_free(pfn, order)
        assert ref.free_pages(pfn, order) == OK

    # fill ZONE_MOVABLE for now, so that the faults below land in block 0 of ZONE_NORMAL
    in_movable = [kalloc(10, True) for _ in range(2 if movable else 0)]
    v = g.spawn().mmap(VMA_PAGES * 4096, explicit=True)
    allocated: list[tuple[int, int]] = []
    for off in range(mapped):                  # mapped pages with kernel pages between them
        v.touch(off)
        assert ref.map_page(0, (0, off)) == (OK, int(v.ptes()[off]))
        for _ in range(int(rng.integers(0, 3))):
            allocated.append((kalloc(0, bool(rng.integers(0, 2))), 0))
    _fill(g, ref, 0, allocated)
    for pfn in in_movable:
        kfree(pfn, 10)
    # free the kernel pages inside block 0 (so it can be isolated), and `spare` others
    block0 = [a for a in allocated if a[0] < g.block_pages]
    others = [a for a in allocated if a[0] >= g.block_pages and a[1] == 0]
    spares = [others[i] for i in rng.permutation(len(others))[:spare]]
    for pfn, order in block0 + spares:
        kfree(pfn, order)
    assert_same_buddy(g, ref, [v])
    want = ref.block_offline(0)
    assert rc_of(g.core.block_offline, 0) == want
    assert want == (OK if len(spares) >= mapped else _core.lib.ACMA_EBUSY)
    assert_same_buddy(g, ref, [v])
    assert g.core.counters()["pgmigrate_success"] == min(len(spares), mapped)


def test_claim_moves_every_free_block_of_the_pageblock():
    """Regression for claim_pageblock (commit a3da1c4 took the 2nd..nth free block of the
    pageblock off the new type's list instead of the old one's, corrupting both lists)."""
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0))
    zero_watermarks(g)
    ref = BuddyRef.from_guest(g)
    ops = [(0, True)] + [(10, True)] * 15 + [(9, True), (0, False)]
    for order, movable in ops:
        pfn = g.kernel_alloc(order, 0, movable)
        assert (OK, pfn) == ref.alloc_pages(order, int(movable), _core.PS_KERNEL, 0)
    assert g.core.counters()["fallback_claim"] == 1
    assert g.core.pageblocks()["mt"][0] == _core.MT_UNMOVABLE
    assert_same_buddy(g, ref, [])


# =========================================================================== access model

SEEDS = st.integers(0, U64)
GVPNS = st.integers(0, U64)
XS = st.one_of(st.floats(-10.0, 1e6, allow_nan=False),
               st.integers(0, 10**6).map(float),
               st.floats(1e6, 1e12, allow_nan=False),
               st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 1e300, 2e300]))


@runs(300)
@given(seed=SEEDS, gvpn=GVPNS, x=XS)
def test_first_arrival_after_equal(seed, gvpn, x):
    c = _core.first_arrival_after(seed, gvpn, x)
    r = ra.first_arrival_after(seed, gvpn, x)
    assert c == r
    assert ra.first_arrival_after_np(seed, np.array([gvpn], np.uint64), x)[0] == c
    if x < ra.INF_KEY:
        assert c > x and c < ra.INF_KEY
        # from exactly a touch: strictly after it
        c2 = _core.first_arrival_after(seed, gvpn, c)
        assert c2 > c and ra.first_arrival_after(seed, gvpn, c) == c2
        assert ra.first_arrival_after_np(seed, np.array([gvpn], np.uint64), c)[0] == c2
    else:
        assert c == ra.INF_KEY


@runs(15)
@given(seed=SEEDS, gvpn=GVPNS, x=st.floats(1e12, 1.8e19))
def test_first_arrival_after_equal_far_on_the_lambda_axis(seed, gvpn, x):
    """Past 2**53 a cell's positions round onto few doubles; all three still agree (x stays
    below 2**64: the C conversion of x to a cell index is undefined from there on)."""
    c = _core.first_arrival_after(seed, gvpn, x)
    assert c > x and ra.first_arrival_after(seed, gvpn, x) == c
    assert ra.first_arrival_after_np(seed, np.array([gvpn], np.uint64), x)[0] == c


@runs(100)
@given(seed=SEEDS, gvpns=st.lists(GVPNS, min_size=1, max_size=60), data=st.data())
def test_first_arrival_after_np_equal(seed, gvpns, data):
    xs = data.draw(st.lists(XS, min_size=len(gvpns), max_size=len(gvpns)))
    want = np.array([_core.first_arrival_after(seed, g, x) for g, x in zip(gvpns, xs)])
    got = ra.first_arrival_after_np(seed, np.array(gvpns, np.uint64), np.array(xs))
    assert np.array_equal(got, want)
    x0 = xs[0]
    assert np.array_equal(ra.first_arrival_after_np(seed, np.array(gvpns, np.uint64), x0),
                          [_core.first_arrival_after(seed, g, x0) for g in gvpns])


@runs(300)
@given(seed=SEEDS, gvpn=GVPNS, x=st.floats(-5.0, 1e5, allow_nan=False),
       frac=st.floats(0.0, 1.0, exclude_max=True))
def test_first_arrival_after_monotone(seed, gvpn, x, frac):
    """For x < y < first(x), first(y) == first(x): no touch hides in (x, y]."""
    f = _core.first_arrival_after(seed, gvpn, x)
    y = x + frac * (f - x)
    if x < y < f:
        assert _core.first_arrival_after(seed, gvpn, y) == f
    assert _core.first_arrival_after(seed, gvpn, f) > f


def test_poisson1_np_matches_loop_at_every_boundary():
    """The table search stops where the inversion loop does, cap included."""
    us = [0.0, 1.0 - 2.0 ** -53, 1.0, 2.0]       # u01 never reaches 1.0: the cap needs u > 1
    for c in ra._CDF:
        us += [c, np.nextafter(c, 0.0), np.nextafter(c, 2.0)]
    us = np.array(us)
    assert ra.poisson1_np(us).tolist() == [ra.poisson1(float(u)) for u in us]
    assert ra.poisson1(2.0) == ra.POISSON_CAP


# =========================================================================== young / idle


class _YoungTracker:
    """YoungModel kept in step with a C guest: states, flags and owners are the C core's
    inputs, last_clear is the model's own (unknown for a newly mapped page)."""

    def __init__(self, g: Guest, seed: int, vmas):
        self.g, self.seed, self.vmas = g, seed, vmas
        self.model = None

    def sync(self) -> ra.YoungModel:
        pg = self.g.core.pages()
        old = self.model
        lc = [None] * self.g.nr_pages
        if old is not None:
            for pfn in range(self.g.nr_pages):
                if (old.state[pfn] in (1, 2) and pg["state"][pfn] == old.state[pfn]
                        and pg["owner"][pfn] == old.owner[pfn]):
                    lc[pfn] = old.last_clear[pfn]
        self.model = ra.YoungModel(self.seed, self.vmas, pg["state"], pg["flags"], pg["owner"], lc,
                                   self.g.now_us)
        if old is not None and hasattr(old, "flags2"):   # page_idle's flags carry over too
            self.model.flags2 = [f if lc[i] is not None else 0 for i, f in enumerate(old.flags2)]
        return self.model

    def assert_flags(self):
        assert self.g.core.pages()["flags"].tolist() == self.model.flags


@runs(30)
@given(seed=SEEDS, npages=st.integers(64, 1024), in_use=st.floats(0.3, 1.0),
       r1=st.floats(0.5, 60.0), r2=st.floats(0.0, 60.0), r3=st.floats(0.0, 60.0),
       t1=st.integers(1_000, 400_000), d2=st.integers(0, 300_000), d3=st.integers(1, 300_000),
       d4=st.integers(0, 300_000), touched=st.sets(st.integers(0, 15), max_size=8),
       data=st.data())
def test_young_and_idle_equal(seed, npages, in_use, r1, r2, r3, t1, d2, d3, d4, touched, data):
    """young_pfns, young_gvpns and idle_bitmap against YoungModel, through rate changes and
    explicit touches; the flags left behind (YOUNG cleared or not) must agree too."""
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0, seed=seed))
    p = g.spawn()
    v = p.mmap(npages * 4096, in_use=max(1, int(npages * in_use)) * 4096)
    ve = p.mmap(16 * 4096, explicit=True)
    mv = ra.VmaModel.new(v.gbase, v.npages, g.now_us)
    me = ra.VmaModel.new(ve.gbase, ve.npages, g.now_us, explicit_only=True)
    tr = _YoungTracker(g, seed, [mv, me])

    def set_rate(r):
        v.set_rate(r, 0.5)
        mv.set_rate(g.now_us, r)

    set_rate(r1)
    for off in touched:
        ve.touch(off, write=bool(off & 1))
    pfns = np.arange(g.nr_pages, dtype=np.uint32)

    # 1: every mapped page's YOUNG flag is still set from its fault
    g.run_until(t1)
    m = tr.sync()
    assert g.young_pfns(pfns, clear=True).tolist() == m.young_pfns(range(g.nr_pages), True)
    tr.assert_flags()

    # 2: new rate, explicit touches, then a peek (no clear) and a clearing pass by gvpn
    set_rate(r2)
    for off in touched:
        if off % 3 == 0:
            ve.touch(off)
    g.run_until(t1 + d2)
    set_rate(r3)
    g.run_until(t1 + d2 + d3)
    m = tr.sync()
    sub = np.array(sorted(data.draw(st.sets(st.integers(0, g.nr_pages - 1), max_size=400))), np.uint32)
    assert g.young_pfns(sub, clear=False).tolist() == m.young_pfns(sub, False)
    tr.assert_flags()
    gv = np.arange(v.gbase, ve.gbase + ve.npages, dtype=np.uint64)
    pte = np.concatenate([v.ptes(), ve.ptes()])
    got = g.core.young_gvpns(gv, clear=True).tolist()
    assert got == m.young_gvpns(gv, lambda gg: pte[gg - v.gbase], True)
    tr.assert_flags()
    for t in (0, t1 - 1, t1, t1 + d2, t1 + d2 + d3 // 2, t1 + d2 + d3, 10**9):
        assert v.lambda_at(t) == mv.lam(t)

    # 3: page_idle over the whole guest, then again at the same instant (nothing young)
    g.run_until(t1 + d2 + d3 + d4)
    m = tr.sync()
    assert g.idle_bitmap(0, g.nr_pages).tolist() == m.idle_bitmap(0, g.nr_pages)
    tr.assert_flags()
    m = tr.sync()
    start = data.draw(st.integers(0, g.nr_pages - 1))
    n = data.draw(st.integers(0, g.nr_pages - start))
    assert g.idle_bitmap(start, n).tolist() == m.idle_bitmap(start, n)
    assert g.core.counters()["pgscan_kswapd"] == 0      # the model assumes no reclaim ran


# =========================================================================== pageblocks


@runs(30)
@given(seed=st.integers(0, 2**32), allocs=st.lists(st.tuples(ORDERS, st.booleans()), max_size=40),
       npages=st.integers(0, 8000), rate=st.floats(1.0, 100.0), t=st.integers(0, 500_000),
       frees=st.integers(0, 40))
def test_scan_pageblocks_equal(seed, allocs, npages, rate, t, frees):
    """The 2 MiB search on a guest with kernel allocations and faulted-in anon pages: C, the
    pure-Python and the NumPy scans agree, and the counters match the page states."""
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0, seed=seed))
    got = []
    for order, movable in allocs:
        try:
            got.append((g.kernel_alloc(order, 0, movable), order))
        except GuestOOM:
            pass
    if npages:
        g.spawn().mmap(npages * 4096).set_rate(rate)
    try:
        g.run_until(t)
    except GuestOOM:
        pass                                    # a fault found no page: the books stay right
    for pfn, order in got[:frees]:
        g.kernel_free(pfn, order)
    pb = g.core.pageblocks()
    f, mv, um = rp.pageblock_counters_np(g.core.pages()["state"])
    assert np.array_equal(f, pb["free"]) and np.array_equal(mv, pb["movable"])
    assert np.array_equal(um, pb["unmovable"])
    ff, mo, nf, nm = g.core.scan_pageblocks()
    pff, pmo, pnf, pnm = rp.scan_pageblocks(pb["free"], pb["movable"])
    assert ff.tolist() == pff and mo.tolist() == pmo and (nf, nm) == (pnf, pnm)
    nff, nmo, nnf, nnm = rp.scan_pageblocks_np(pb["free"], pb["movable"])
    assert np.array_equal(nff, ff) and np.array_equal(nmo, mo) and (nnf, nnm) == (nf, nm)
    iff, imo = g.scan_pageblocks()
    assert np.array_equal(iff, rp.bitmap_indices(ff)) and np.array_equal(imo, rp.bitmap_indices(mo))
    assert len(iff) == nf and len(imo) == nm


# =========================================================================== trace replay

NP_VMA, NP_INUSE = 256, 200


@runs(60)
@given(touched=st.sets(st.integers(0, NP_INUSE - 1), min_size=1, max_size=120),
       writes=st.sets(st.integers(0, NP_INUSE - 1), max_size=30),
       data=st.data())
def test_trace_replay_equal(touched, writes, data):
    """acma_run's trace path up to the first event on a non-present page: the same flags and
    trace position as the reference; that event then faults (or SIGSEGVs outside in_use)."""
    g = Guest(GuestConfig(size="64 MiB", block_size="4 MiB", swap=0))
    v = g.spawn().mmap(NP_VMA * 4096, in_use=NP_INUSE * 4096, explicit=True)
    for off in sorted(touched):
        v.touch(off, write=off in writes)
    pte = v.ptes()
    present = pte[(pte & PTE_NP) == 0]
    g.young_pfns(present, clear=True)          # YOUNG off, DIRTY kept: the replay sets them
    tset = sorted(touched)
    off_st = st.one_of(st.sampled_from(tset), st.sampled_from(tset), st.sampled_from(tset),
                       st.integers(0, NP_VMA - 1))
    ev = data.draw(st.lists(st.tuples(st.integers(0, 50), off_st, st.booleans()), max_size=150))
    t = np.cumsum([e[0] for e in ev], dtype=np.uint64) + np.uint64(1)
    gw = np.array([(v.gbase + o) << 1 | w for _, o, w in ev], dtype=np.uint64)
    flags0 = g.core.pages()["flags"]

    def pte_of(gg):
        return pte[gg - v.gbase]

    full = rr.replay(pte_of, flags0, t, gw, U64)
    t_stop = int(t[full.stop]) if full.stop is not None else (int(t[-1]) + 1 if len(t) else 1)
    want = rr.replay(pte_of, flags0, t, gw, t_stop)
    assert want.stop is None
    vec = rr.replay_np(pte, v.gbase, flags0, t, gw, t_stop)
    assert vec.stop is None and vec.handled == want.handled and np.array_equal(vec.flags, want.flags)
    vfull = rr.replay_np(pte, v.gbase, flags0, t, gw, U64)
    assert (vfull.stop, vfull.stop_kind) == (full.stop, full.stop_kind)

    g.core.set_trace(t, gw)
    faults0 = g.core.counters()["pgfault"]
    g.run_until(t_stop)
    assert g.core.trace_pos() == want.handled
    assert g.core.counters()["pgfault"] == faults0
    assert np.array_equal(g.core.pages()["flags"], want.flags)
    if full.stop is None:
        return
    gvpn = int(gw[full.stop]) >> 1
    if full.stop_kind == "sigsegv":
        with pytest.raises(SegfaultError):
            g.run_until(t_stop + 1)
        assert g.core.trace_pos() == full.stop + 1
    else:
        try:                                    # a later event at the same instant may segfault
            g.run_until(t_stop + 1)
        except SegfaultError:
            pass
        assert g.core.counters()["pgfault"] >= faults0 + 1
        assert not int(v.ptes()[gvpn - v.gbase]) & PTE_NP
        assert g.core.trace_pos() > full.stop
