"""virtio-balloon: the device (host side, VIRTIO 1.2 §5.5 "Traditional Memory Balloon Device")
and the driver (guest side, following drivers/virtio/virtio_balloon.c).

Virtqueues are modelled as direct calls that are used (acknowledged) at once: the driver hands
a buffer of 4 KiB page frame numbers to the device and the device has finished with it when
the call returns, which is what the driver waits for (``tell_host``'s wait_event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..mm.balloon_pages import BalloonPages
from ..sim import PRIO_KERNEL
from ..units import PAGE_SIZE

if TYPE_CHECKING:
    from .vm import VM

# Feature bits (§5.5.3)
F_MUST_TELL_HOST, F_STATS_VQ, F_DEFLATE_ON_OOM, F_FREE_PAGE_HINT, F_PAGE_POISON, F_REPORTING = range(6)
FEATURE_NAMES = {"MUST_TELL_HOST": F_MUST_TELL_HOST, "STATS_VQ": F_STATS_VQ, "DEFLATE_ON_OOM": F_DEFLATE_ON_OOM,
                 "FREE_PAGE_HINT": F_FREE_PAGE_HINT, "PAGE_POISON": F_PAGE_POISON, "REPORTING": F_REPORTING}
# Virtqueues (§5.5.2)
VQ_INFLATE, VQ_DEFLATE, VQ_STATS, VQ_FREE_PAGE, VQ_REPORTING = range(5)
# Statistics tags (§5.5.6.3), then the ones Linux's uapi added in 2024 (not in VIRTIO 1.2)
STATS_TAGS = ("SWAP_IN", "SWAP_OUT", "MAJFLT", "MINFLT", "MEMFREE", "MEMTOT", "AVAIL", "CACHES",
              "HTLB_PGALLOC", "HTLB_PGFAIL", "OOM_KILL", "ALLOC_STALL", "ASYNC_SCAN", "DIRECT_SCAN",
              "ASYNC_RECLAIM", "DIRECT_RECLAIM")
ARRAY_PFNS_MAX = 256        # VIRTIO_BALLOON_ARRAY_PFNS_MAX: PFNs per inflate/deflate buffer
OUT_OF_PUFF_US = 200_000    # fill_balloon's msleep(200) after a failed balloon_page_alloc


class BalloonDevice:
    """The host's side of one guest's balloon: config space, queue handlers, stats.

    ``num_pages`` (written by the device) is how many 4 KiB pages the host wants in the
    balloon; ``actual`` (written by the driver) how many are. Inflated and reported pages are
    discarded on the host (QEMU's ram_block_discard_range: the host page is released once
    every guest page in it is discarded, see the backing tracker); deflated pages need nothing
    (QEMU only hints MADV_WILLNEED): the guest's next touch populates them again.
    """

    def __init__(self, vm: VM, features: frozenset[int]):
        self.vm = vm
        self.features = features
        self.num_pages = 0
        self.driver: BalloonDriver | None = None
        self.stats: dict[str, int] = {}
        self.stats_updated_us: int | None = None
        self.inflated_pages = self.deflated_pages = 0
        self.reports = self.reported_pages = 0
        self.released_bytes = 0

    def has(self, feature: int) -> bool:
        return feature in self.features

    # --- config space (§5.5.4)
    def set_num_pages(self, num_pages: int) -> None:
        """Write num_pages and raise a configuration change notification."""
        limit = self.vm.guest.nr_pages
        if isinstance(num_pages, bool) or not isinstance(num_pages, int) or not 0 <= num_pages <= limit:
            raise ConfigError(f"vm[{self.vm.name}].balloon.num_pages", num_pages, f"pages in [0, {limit}]")
        if num_pages != self.num_pages:
            self.num_pages = num_pages
            if self.driver is not None:
                self.driver.virtballoon_changed()

    def set_target_memory(self, nbytes: int) -> None:
        """QEMU's ``balloon N``: leave the guest ``nbytes`` of its online memory."""
        online = self.vm.online_bytes()
        self.set_num_pages(max(0, online - max(0, int(nbytes))) // PAGE_SIZE)

    @property
    def actual(self) -> int:
        """The driver's ``actual``: Linux writes it after every inflate or deflate step and in
        the OOM notifier, so reading it live is the same value."""
        return self.driver.actual() if self.driver is not None else 0

    def actual_bytes(self) -> int:
        return self.actual * PAGE_SIZE

    # --- queue handlers (the device's side of each virtqueue)
    def handle_inflate(self, pfns: np.ndarray) -> None:
        self.inflated_pages += len(pfns)
        self.released_bytes += self.vm.backing.discard_pfns(pfns) * self.vm.backing.host_page

    def handle_deflate(self, pfns: np.ndarray) -> None:
        self.deflated_pages += len(pfns)

    def handle_stats(self, stats: dict[str, int], t_us: int) -> None:
        self.stats, self.stats_updated_us = stats, t_us

    def handle_report(self, pfns: np.ndarray, orders: np.ndarray) -> bool:
        """The reporting virtqueue: one scatterlist of free blocks (head pfn, order); the
        device discards them and uses the buffer (True: success)."""
        self.reports += 1
        self.reported_pages += int((np.left_shift(1, orders.astype(np.int64))).sum())
        self.released_bytes += self.vm.backing.discard_blocks(pfns, orders) * self.vm.backing.host_page
        return True

    def request_stats(self) -> dict[str, int]:
        """Return the stats buffer to the driver (QEMU's polling timer) and get fresh values."""
        if not self.has(F_STATS_VQ) or self.driver is None:
            raise ConfigError(f"vm[{self.vm.name}].balloon", "no STATS_VQ", "a device with STATS_VQ negotiated")
        self.driver.stats_request()
        return self.stats


class BalloonDriver:
    """The guest's virtio_balloon driver: the work that moves pages in and out of the balloon
    (the page list itself is the guest model's, acma.mm.balloon_pages.BalloonPages, which also
    deflates on OOM when DEFLATE_ON_OOM was negotiated).

    ``changed_handler``, when set, replaces classic inflation on a config change (the RFC's
    virtballoon_changed hook that sets ACMA's max-mem): it is called with num_pages, and
    ``actual`` then comes from ``handler_actual`` instead of the balloon's pages.
    """

    def __init__(self, vm: VM, device: BalloonDevice, pages):
        self.vm, self.dev, self.pages = vm, device, pages
        self.changed_handler: Callable[[int], None] | None = None
        self.handler_actual: Callable[[], int] | None = None
        self.work_pending = False
        self.out_of_puff = 0
        device.driver = self

    # --- virtballoon_changed / update_balloon_size_func
    def virtballoon_changed(self) -> None:
        """Config change interrupt: queue update_balloon_size_func (once) in the guest."""
        if self.changed_handler is not None:
            self.changed_handler(self.dev.num_pages)
            return
        if not self.work_pending:
            self.work_pending = True
            self.vm.sim.schedule(self.vm.now_us, PRIO_KERNEL, self.update_balloon_size_func)

    def towards_target(self) -> int:
        """Pages to inflate (>0) or deflate (<0) to reach the device's num_pages."""
        return self.dev.num_pages - self.pages.actual

    def update_balloon_size_func(self, t_us: int) -> None:
        """Move toward the target in ARRAY_PFNS_MAX steps until there, or until an allocation
        fails ("Out of puff!"), when the work sleeps 200 ms and tries again."""
        self.work_pending = False
        while True:
            diff = self.towards_target()
            if diff > 0:
                done = self.fill_balloon(diff)
            elif diff < 0:
                done = self.leak_balloon(-diff)
            else:
                break
            if diff > 0 and done < min(diff, ARRAY_PFNS_MAX):
                self.out_of_puff += 1
                self.work_pending = True
                self.vm.sim.schedule(t_us + OUT_OF_PUFF_US, PRIO_KERNEL, self.update_balloon_size_func)
                break

    def actual(self) -> int:
        """update_balloon_size's value: pages in the balloon (or the handler's, under ACMA)."""
        return self.handler_actual() if self.handler_actual is not None else self.pages.actual

    def fill_balloon(self, num: int) -> int:
        """Take up to ARRAY_PFNS_MAX pages (balloon_page_alloc: movable, __GFP_NORETRY) and
        tell the host on the inflate queue; returns pages added."""
        pfns = self.pages.inflate(min(num, ARRAY_PFNS_MAX))
        if len(pfns):
            self.dev.handle_inflate(pfns)
        return len(pfns)

    def leak_balloon(self, num: int) -> int:
        """Give back up to ARRAY_PFNS_MAX pages, newest first, and tell the host on the deflate
        queue (with MUST_TELL_HOST Linux tells before the pages are reused; in acma both happen
        at the same instant)."""
        pfns = self.pages.deflate(min(num, ARRAY_PFNS_MAX))
        if len(pfns):
            self.dev.handle_deflate(pfns)
        return len(pfns)

    # --- the statistics virtqueue
    def update_balloon_stats(self) -> dict[str, int]:
        """The standard tags from the guest's counters (bytes for sizes and swap, counts for
        faults); no hugetlbfs is modelled, so HTLB_PGALLOC/HTLB_PGFAIL are 0."""
        g = self.vm.guest
        vs, mi = g.vmstat(), g.meminfo()
        kb = 1024
        values = (vs["pswpin"] * PAGE_SIZE, vs["pswpout"] * PAGE_SIZE, vs["pgmajfault"], vs["pgfault"],
                  mi["MemFree"] * kb, mi["MemTotal"] * kb, mi["MemAvailable"] * kb, mi["Cached"] * kb, 0, 0,
                  vs["oom_kill"], vs["allocstall"], vs["pgscan_kswapd"] * PAGE_SIZE, vs["pgscan_direct"] * PAGE_SIZE,
                  vs["pgsteal_kswapd"] * PAGE_SIZE, vs["pgsteal_direct"] * PAGE_SIZE)
        return dict(zip(STATS_TAGS, values))

    def stats_request(self) -> None:
        """The device used the stats buffer: collect and send fresh stats (stats_handle_request)."""
        self.dev.handle_stats(self.update_balloon_stats(), self.vm.now_us)

    # --- the free page reporting virtqueue
    def virtballoon_free_page_report(self, pfns: np.ndarray, orders: np.ndarray) -> bool:
        """page_reporting_dev_info.report: send one scatterlist of free blocks, wait for use."""
        if not self.dev.has(F_REPORTING):
            raise ConfigError(f"vm[{self.vm.name}].balloon", "no REPORTING", "a device with REPORTING negotiated")
        return self.dev.handle_report(pfns, orders)


def attach_balloon(vm: VM, features=("MUST_TELL_HOST", "STATS_VQ", "DEFLATE_ON_OOM", "REPORTING")) -> BalloonDevice:
    """Give ``vm`` a balloon device with ``features`` negotiated and its driver loaded."""
    bad = [f for f in features if f not in FEATURE_NAMES]
    if bad:
        raise ConfigError(f"vm[{vm.name}].balloon.features", bad, f"names among {sorted(FEATURE_NAMES)}")
    dev = BalloonDevice(vm, frozenset(FEATURE_NAMES[f] for f in features))
    BalloonDriver(vm, dev, BalloonPages(vm.guest, deflate_on_oom=F_DEFLATE_ON_OOM in dev.features))
    vm.balloon = dev
    return dev
