"""The guest side of virtio-balloon (csrc/balloon.c): inflate takes 4 KiB movable pages from
the buddy allocator (GFP_HIGHUSER_MOVABLE | __GFP_NORETRY, never OOM), deflate gives back the
newest ones, and with DEFLATE_ON_OOM the guest deflates 256 pages whenever it would OOM. The
device (num_pages, actual, virtqueues, telling the host) is the host's: pass the returned pfns on.
"""

from __future__ import annotations

import numpy as np

from .._core import _buf, _check, _u64, ffi, lib
from ..errors import ConfigError

OOM_NR_PAGES = lib.ACMA_BALLOON_OOM_NR_PAGES
_INFO_KEYS = ("actual", "deflate_on_oom", "inflated", "deflated", "oom_deflated", "alloc_failures")


class BalloonPages:
    """The balloon's page list in ``guest``; ``deflate_on_oom`` is VIRTIO_BALLOON_F_DEFLATE_ON_OOM."""

    def __init__(self, guest, deflate_on_oom: bool = False):
        if not isinstance(deflate_on_oom, bool):
            raise ConfigError("balloon.deflate_on_oom", deflate_on_oom, "True or False")
        self.guest = guest
        _check("balloon_enable", lib.acma_balloon_enable(guest.core._m, int(deflate_on_oom)))

    def info(self) -> dict:
        out = ffi.new("acma_balloon_info *")
        _check("balloon_get", lib.acma_balloon_get(self.guest.core._m, out))
        return {k: int(getattr(out, k)) for k in _INFO_KEYS}

    @property
    def actual(self) -> int:
        """Pages in the balloon (the value the driver writes to the config's ``actual``)."""
        return self.info()["actual"]

    def inflate(self, npages: int, node: int = 0) -> np.ndarray:
        """Take up to ``npages`` pages; fewer when an allocation fails ("Out of puff!")."""
        n = _u64(npages, "npages")
        if n > self.guest.nr_pages:
            raise ConfigError("npages", npages, f"at most the guest's {self.guest.nr_pages} pages")
        if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < self.guest.nr_nodes:
            raise ConfigError("node", node, f"a node in [0, {self.guest.nr_nodes})")
        out = np.zeros(max(n, 1), dtype=np.uint32)
        done = ffi.new("uint64_t *")
        _check("balloon_inflate", lib.acma_balloon_inflate(self.guest.core._m, node, n,
                                                           _buf(out, np.uint32, None, "out", True), len(out), done))
        return out[: done[0]].copy()

    def deflate(self, npages: int) -> np.ndarray:
        """Give back up to ``npages`` pages, newest first; returns their pfns."""
        n = min(_u64(npages, "npages"), self.actual)
        out = np.zeros(max(n, 1), dtype=np.uint32)
        done = ffi.new("uint64_t *")
        _check("balloon_deflate", lib.acma_balloon_deflate(self.guest.core._m, n,
                                                           _buf(out, np.uint32, None, "out", True), len(out), done))
        return out[: done[0]].copy()

    def pages(self) -> np.ndarray:
        """The balloon's pfns, oldest first."""
        n = self.actual
        out = np.zeros(max(n, 1), dtype=np.uint32)
        _check("balloon_pages", lib.acma_balloon_pages(self.guest.core._m, _buf(out, np.uint32, None, "out", True),
                                                       len(out)))
        return out[:n].copy()
