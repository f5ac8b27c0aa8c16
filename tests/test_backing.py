"""The host-page backing tracker (csrc/backing.c) and balloon pages (csrc/balloon.c): first
touch populates, release needs every guest page discarded, no page holding guest data is ever
discarded, ballooned or released (stateful hypothesis), exact time integrals, OOM deflate."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from acma import _core
from acma._core import CoreError, GuestOOM
from acma.errors import ConfigError
from acma.mm.backing import Backing
from acma.mm.balloon_pages import BalloonPages
from acma.mm.guest import Guest, GuestConfig
from acma.mm.reporting import PageReporting

S = 1_000_000
DATA = (_core.PS_ANON, _core.PS_FILE, _core.PS_KERNEL)


def guest(size="64 MiB") -> Guest:
    return Guest(GuestConfig(size=size, block_size="4 MiB", swap=0))


def test_boot_is_unbacked_until_touched():
    g = guest()
    bk = Backing(g, host_page="2 MiB")
    assert bk.info()["backed"] == 0
    v = g.spawn().mmap("4 MiB", explicit=True)
    v.touch(0, True)
    info = bk.info()
    assert info["backed"] == 1 and info["faults"] == 1
    # fault + zeroing of 512 pages, charged to the guest's fault wait
    assert info["fault_ns"] == round((2.0 + 0.4 * 512) * 1000)
    assert g.stall_totals_us()["minor_fault"] * 1000 >= info["fault_ns"]
    v.touch(1, True)                              # same host page: no second fault
    assert bk.info()["faults"] == 1


def test_prefaulted_starts_fully_backed():
    g = guest()
    bk = Backing(g, host_page="4 KiB", prefaulted=True)
    assert bk.info()["backed"] == g.nr_pages


def test_release_needs_every_guest_page_of_the_host_page():
    g = guest()
    bk = Backing(g, host_page="2 MiB", prefaulted=True)
    assert bk.discard(0, 511) == 0 and bk.info()["backed"] == 32
    assert bk.discard(511, 1) == 1 and bk.info()["backed"] == 31
    assert bk.discard(0, 512) == 0                # already discarded: nothing new


def test_discard_of_a_page_with_data_is_refused_whole():
    g = guest()
    bk = Backing(g, host_page="4 KiB", prefaulted=True)
    pfn = g.kernel_alloc(order=0)
    before = bk.info()
    with pytest.raises(CoreError):
        bk.discard(pfn - 3 if pfn >= 3 else 0, 8)
    assert bk.info() == before
    g.check()


def test_touching_a_reported_page_faults_again():
    g = guest("256 MiB")
    bk = Backing(g, host_page="2 MiB")
    v = g.spawn().mmap("8 MiB", explicit=True)
    for i in range(0, 2048, 64):
        v.touch(i, True)
    faults = bk.info()["faults"]
    v.resize(0)
    rep = PageReporting(g, backing=bk)
    rep.advance(2 * S)
    assert bk.info()["backed"] == 0
    v.resize(2048)
    v.touch(0, True)
    assert bk.info()["faults"] == faults + 1
    g.check()


def test_integral_is_exact():
    g = guest()
    bk = Backing(g, host_page="2 MiB")
    v = g.spawn().mmap("2 MiB", explicit=True)
    g.core.run(1 * S)
    v.touch(0, True)                              # 1 host page from t = 1 s
    g.core.run(4 * S)
    w = bk.drain()
    assert w["backed_byte_us"] == 2 * 2**20 * 3 * S and w["peak_bytes"] == 2 * 2**20
    g.core.run(5 * S)
    assert bk.drain()["backed_byte_us"] == 2 * 2**20 * 1 * S


def test_bad_parameters():
    g = guest()
    for kw in ({"host_page": "3 KiB"}, {"host_page": "2 GiB"}, {"fault_us": -1}, {"prefaulted": 1}):
        with pytest.raises(ConfigError):
            Backing(g, **kw)


def test_checkpoint_round_trip():
    g = guest()
    bk = Backing(g, host_page="64 KiB")
    BalloonPages(g).inflate(100)
    g.spawn().mmap("1 MiB", explicit=True).touch(3, True)
    core2 = pickle.loads(pickle.dumps(g.core))
    core2.check()
    out = _core.ffi.new("acma_backing_info *")
    _core.lib.acma_backing_get(core2._m, out)
    assert out.backed == bk.info()["backed"] and out.faults == bk.info()["faults"]


# =========================================================================== balloon

def test_balloon_inflate_deflate_last_in_first_out():
    g = guest()
    b = BalloonPages(g)
    pf = b.inflate(300)
    assert len(pf) == 300 and b.actual == 300 and g.states()["driver"] == 300
    back = b.deflate(100)
    assert back.tolist() == pf[::-1][:100].tolist()
    assert b.pages().tolist() == pf[:200].tolist()
    g.check()


def test_balloon_stops_when_out_of_puff_and_never_ooms():
    g = guest()
    b = BalloonPages(g)
    got = b.inflate(g.nr_pages)
    assert 0 < len(got) < g.nr_pages and b.info()["alloc_failures"] == 1
    assert g.vmstat()["oom_kill"] == 0


@pytest.mark.parametrize("on_oom", [False, True])
def test_deflate_on_oom(on_oom):
    g = guest()
    b = BalloonPages(g, deflate_on_oom=on_oom)
    b.inflate(g.nr_pages)
    v = g.spawn().mmap("8 MiB", explicit=True)
    if on_oom:
        for i in range(600):
            v.touch(i, True)
        assert b.info()["oom_deflated"] >= 512 and g.vmstat()["oom_kill"] == 0
    else:
        with pytest.raises(GuestOOM):
            for i in range(600):
                v.touch(i, True)
    g.check()


# =========================================================================== stateful

class HostGuestMachine(RuleBasedStateMachine):
    """Faults, unmaps, kernel allocations, balloon, reporting passes and stray discards in any
    order: acma_check (with the backing invariant) holds after every step, and every page that
    holds guest data sits in a backed host page."""

    @initialize(hp=st.sampled_from(["4 KiB", "64 KiB", "2 MiB"]), order=st.sampled_from([0, 5, 9, 10]),
                on_oom=st.booleans(), prefaulted=st.booleans())
    def setup(self, hp, order, on_oom, prefaulted):
        self.g = guest()
        for z in range(2):
            self.g.core.set_watermarks(z, 0, 0, 0)
        self.bk = Backing(self.g, host_page=hp, prefaulted=prefaulted)
        self.rep = PageReporting(self.g, order=order, backing=self.bk)
        self.bl = BalloonPages(self.g, deflate_on_oom=on_oom)
        self.v = self.g.spawn().mmap("16 MiB", explicit=True)
        self.kernel: list[tuple[int, int]] = []

    @rule(start=st.integers(0, 4095), n=st.integers(1, 300))
    def touch(self, start, n):
        for off in range(start, min(4096, start + n)):
            try:
                self.v.touch(off, True)
            except GuestOOM:
                return

    @rule(keep=st.integers(0, 4096))
    def unmap(self, keep):
        self.v.resize(keep)
        self.v.resize(4096)

    @rule(order=st.integers(0, 10))
    def kalloc(self, order):
        try:
            self.kernel.append((self.g.kernel_alloc(order), order))
        except GuestOOM:
            pass

    @rule(i=st.integers(0, 1000))
    def kfree(self, i):
        if self.kernel:
            self.g.kernel_free(*self.kernel.pop(i % len(self.kernel)))

    @rule(n=st.integers(1, 3000))
    def inflate(self, n):
        self.bk.discard_pfns(self.bl.inflate(n))

    @rule(n=st.integers(1, 3000))
    def deflate(self, n):
        self.bl.deflate(n)

    @rule(dt=st.sampled_from([S // 2, 2 * S, 3 * S]))
    def wait(self, dt):
        self.rep.advance(self.g.now_us + dt)

    @rule(pfn=st.integers(0, 16383), n=st.integers(1, 2048))
    def stray_discard(self, pfn, n):
        n = min(n, self.g.nr_pages - pfn)
        busy = np.isin(self.g.core.pages(pfn, n)["state"], DATA).any()
        before = self.bk.info()
        try:
            self.bk.discard(pfn, n)
            assert not busy
        except CoreError:
            assert busy and self.bk.info() == before

    @invariant()
    def consistent(self):
        self.g.check()
        st_ = self.g.core.pages()["state"]
        backed = self.bk.backed_map()
        data = np.flatnonzero(np.isin(st_, DATA))
        assert backed[data >> self.bk.hp_order].all()
        assert int(backed.sum()) == self.bk.info()["backed"]
        assert self.bl.actual == int((st_ == _core.PS_DRIVER).sum())


TestHostGuest = HostGuestMachine.TestCase
TestHostGuest.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
