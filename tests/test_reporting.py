"""Free page reporting (csrc/reporting.c): the request machine, the pass, the Reported flag,
and equality with the pure-Python reference (acma/_reference/reporting.py) in lockstep."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_reference_equal import BUDDY_CONFIGS, BUDDY_OPS, BuddyLockstep, assert_same_buddy, runs

from acma import _core
from acma._core import CoreError
from acma._reference.reporting import ReportingRef
from acma.errors import ConfigError
from acma.mm.guest import Guest, GuestConfig
from acma.mm.reporting import PageReporting, reported_bytes

S = 1_000_000


def small_guest(size="256 MiB") -> Guest:
    return Guest(GuestConfig(size=size, block_size="4 MiB", swap=0))


def test_register_requests_a_pass_two_seconds_later():
    g = small_guest()
    rep = PageReporting(g)
    assert rep.info()["state"] == "requested" and rep.next_due_us() == 2 * S
    assert rep.advance(2 * S - 1) == 0 and rep.info()["passes"] == 0
    n = rep.advance(2 * S)
    info = rep.info()
    assert info["passes"] == 1 and n == info["reports"] > 0
    assert info["state"] == "idle" and info["due_us"] is None
    g.check()


def test_free_of_a_high_order_block_requests_only_when_idle():
    g = small_guest()
    rep = PageReporting(g)
    rep.advance(3 * S)
    small = g.kernel_alloc(order=0)
    g.kernel_free(small)                      # merges back up: order >= 9 -> request
    assert rep.info()["state"] == "requested" and rep.next_due_us() == 5 * S
    pfn = g.kernel_alloc(order=9)
    g.core.run(4 * S)
    g.kernel_free(pfn, 9)                     # already requested: the due time does not move
    assert rep.next_due_us() == 5 * S and rep.info()["requests"] == 2


def test_reported_flag_set_after_report_and_cleared_on_allocation_and_merge():
    g = small_guest()
    seen = []
    rep = PageReporting(g, report=lambda p, o: seen.append((p, o)) or True)
    rep.advance(2 * S)
    assert reported_bytes(g) == g.meminfo()["MemFree"] * 1024 > 0
    assert all((o >= 9).all() for _, o in seen)
    pfn = g.kernel_alloc(order=0)             # splits a reported block: its head loses the flag
    flags = g.core.pages()["flags"]
    assert not flags[pfn] & _core.PG_REPORTED
    assert reported_bytes(g) < g.meminfo()["MemFree"] * 1024
    g.kernel_free(pfn)                        # merges back; the merged block is unreported
    assert reported_bytes(g) < g.meminfo()["MemFree"] * 1024
    g.check()


def test_failed_report_puts_blocks_back_unreported_and_ends_the_pass():
    g = small_guest()
    calls = []
    rep = PageReporting(g, report=lambda p, o: calls.append(len(p)) and False, capacity=4)
    rep.advance(2 * S)
    info = rep.info()
    assert len(calls) == 1 and info["failed_reports"] == 1 and info["reports"] == 1
    assert reported_bytes(g) == 0 and info["state"] == "idle"
    g.check()


def test_device_exception_returns_the_blocks():
    g = small_guest()

    def boom(p, o):
        raise RuntimeError("device gone")

    rep = PageReporting(g, report=boom)
    with pytest.raises(RuntimeError):
        rep.advance(2 * S)
    g.check()
    assert g.states()["driver"] == 0


def test_zone_below_watermark_is_skipped():
    g = small_guest()
    free = g.core.zone_info(0)["free"]
    g.core.set_watermarks(0, 0, free, free)   # low + 32 << 9 is out of reach
    rep = PageReporting(g)
    rep.advance(2 * S)
    assert rep.info()["reports"] == 0 and rep.info()["zones_skipped"] == 2


def test_budget_limits_reports_per_list_and_requeues():
    """A sixteenth of a list plus one report per pass; the rest waits 2 s for the next pass."""
    g = Guest(GuestConfig(size="4 GiB", block_size="128 MiB", swap=0))
    rep = PageReporting(g, capacity=1, order=10)
    nr_free = g.buddyinfo()[0][10]
    rep.advance(2 * S)
    budget = -(-nr_free // 16)
    assert rep.info()["reports"] == budget + 1
    assert rep.info()["state"] == "requested" and rep.next_due_us() == 4 * S
    rep.advance(40 * S)
    assert reported_bytes(g) == g.meminfo()["MemFree"] * 1024
    g.check()


def test_rotation_resumes_where_the_last_pass_stopped():
    g = Guest(GuestConfig(size="1 GiB", block_size="128 MiB", swap=0))
    batches = []
    rep = PageReporting(g, report=lambda p, o: batches.append(p.tolist()) or True, capacity=2, order=10)
    rep.advance(2 * S)
    first = [p for b in batches for p in b]
    batches.clear()
    rep.advance(4 * S)
    second = [p for b in batches for p in b]
    assert second and not set(first) & set(second)


def test_bad_parameters_are_refused_before_anything_runs():
    g = small_guest()
    for kw in ({"order": 11}, {"capacity": 0}, {"capacity": 257}, {"delay_us": 0}, {"report": 3}):
        with pytest.raises(ConfigError):
            PageReporting(g, **kw)
    PageReporting(g)
    with pytest.raises(CoreError):
        PageReporting(g)                      # one device per guest


def test_checkpoint_keeps_the_reporting_state():
    import pickle
    g = small_guest()
    rep = PageReporting(g, capacity=2, order=10)
    rep.advance(2 * S)
    blob = pickle.dumps(g.core)
    core2 = pickle.loads(blob)
    assert bytes(core2.pages()["flags"]) == bytes(g.core.pages()["flags"])
    out1, out2 = (_core.ffi.new("acma_reporting_info *") for _ in range(2))
    _core.lib.acma_reporting_get(g.core._m, out1)
    _core.lib.acma_reporting_get(core2._m, out2)
    assert bytes(_core.ffi.buffer(out1)) == bytes(_core.ffi.buffer(out2))


# =========================================================================== lockstep

class ReportingLockstep(BuddyLockstep):
    """BuddyLockstep with a reporting device on both sides and passes at random times."""

    def __init__(self, cfg, order, capacity, answers):
        super().__init__(cfg)
        self.ref = ReportingRef.from_guest(self.g)
        self.answers = answers
        self.k = 0
        self.rep = PageReporting(self.g, report=self._c_report, order=order, capacity=capacity)
        self.ref.enable(order, capacity, 2 * S)
        self.c_batches, self.r_batches = [], []

    def _answer(self) -> bool:
        a = self.answers[self.k % len(self.answers)]
        self.k += 1
        return a

    def _c_report(self, pfns, orders):
        self.c_batches.append((pfns.tolist(), orders.tolist()))
        return self._answer()

    def _r_report(self, pfns, orders):
        self.r_batches.append((list(pfns), list(orders)))
        return self.r_answers.pop(0)

    def wait(self, dt):
        t = self.g.now_us + dt
        self.g.core.run(t)
        self.ref.now = t
        k0 = self.k
        self.rep.run_due()
        self.r_answers = [self.answers[i % len(self.answers)] for i in range(k0, self.k)]
        self.ref.run_pass(self._r_report)
        assert self.c_batches == self.r_batches

    def wmark(self, z, lo):
        z %= self.g.nr_nodes * 2
        self.g.core.set_watermarks(z, lo // 2, lo, lo)
        self.ref.wmark[z] = (lo // 2, lo, lo)

    def check(self):
        assert_same_buddy(self.g, self.ref, self.vmas)
        flags = self.g.core.pages()["flags"]
        assert set(np.flatnonzero(flags & _core.PG_REPORTED).tolist()) == self.ref.reported
        info, r = self.rep.info(), self.ref.rep
        assert (info["passes"], info["reports"], info["failed_reports"], info["blocks_reported"],
                info["pages_reported"]) == (r["passes"], r["reports"], r["failed"], r["blocks"], r["pages"])
        assert info["state"] == ("idle", "requested", "active")[r["state"]]
        assert (info["due_us"] if info["due_us"] is not None else 2**64 - 1) == r["due"]


REPORT_OPS = st.one_of(
    BUDDY_OPS,
    st.tuples(st.just("wait"), st.sampled_from([S // 2, 2 * S, 2 * S, 5 * S])),
    st.tuples(st.just("wait"), st.sampled_from([S // 2, 2 * S, 2 * S, 5 * S])),
    st.tuples(st.just("wmark"), st.integers(0, 3), st.sampled_from([0, 0, 64, 2048, 9000])),
)


@runs(60)
@given(cfg=st.sampled_from(BUDDY_CONFIGS), order=st.sampled_from([0, 3, 8, 9, 9, 10]),
       capacity=st.sampled_from([1, 2, 4, 32]), answers=st.lists(st.sampled_from([True, True, True, False]), min_size=1, max_size=6),
       ops=st.lists(REPORT_OPS, min_size=20, max_size=80))
def test_reporting_equals_reference(cfg, order, capacity, answers, ops):
    """Every batch handed to the device, free list, Reported flag and counter: C == reference."""
    m = ReportingLockstep(cfg, order, capacity, answers)
    for op in ops:
        getattr(m, op[0])(*op[1:])
        m.check()
