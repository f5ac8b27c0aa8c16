"""Cross-checks in a real QEMU guest (Debian's 6.12 kernel, TCG). Opt-in: ``-m xval``.

The CI check (marker ``xval`` alone, about one minute on 2 cores) runs the moving hot region
under vaddr twice and asserts both the kernel's behaviour (with tolerances: TCG and a real
kernel) and that the two runs print identical output (the determinism QEMU's ``-icount`` and
``-seed`` give). The rest are also marked ``slow``. Everything skips when QEMU or the kernel kit
is missing (``acma xval setup`` installs it).
"""

import pytest

from acma.damon.context import Attrs
from acma.damos.scheme import AccessPattern, Scheme
from acma.io.damo_record import read_record
from acma.xval.fpr import run_fpr_xval
from acma.xval.guest import GuestOptions
from acma.xval.run import kernel_side, load_xval_workload, run_damon_xval
from acma.xval.setup import find_kit, missing_tools

pytestmark = pytest.mark.xval
MiB = 1 << 20
PAGEOUT = Scheme(action="pageout", pattern=AccessPattern(max_nr_accesses=0, min_age_region=5))
ATTRS = Attrs(ops_update_us=1_000_000)


@pytest.fixture(scope="module")
def kit():
    if "qemu-system-x86_64" in missing_tools():
        pytest.skip("qemu-system-x86_64 is not installed (acma xval setup installs it)")
    k = find_kit()
    if k is None:
        pytest.skip(f"the xval kit is incomplete (missing: {missing_tools() or 'the guest kernel'}); "
                    "run `acma xval setup`")
    return k


def test_moving_hot_vaddr_matches_and_is_deterministic(kit, tmp_path):
    wl = load_xval_workload("moving-hot")
    res = run_damon_xval(kit, wl, "vaddr", ATTRS, PAGEOUT, GuestOptions(), tmp_path / "a", say=lambda s: None)
    k, a = res.kernel_metrics.summary(), res.acma_metrics.summary()
    # the kernel: the 8 MiB hot slot is found in every phase, within a second
    assert k["detect_missed"] == 0 and max(k["detect_s"]) < 1.0
    assert 6 * MiB <= k["wss_median_bytes"] <= 10 * MiB
    assert ATTRS.min_nr_regions <= k["nr_regions_min"] and k["nr_regions_max"] <= ATTRS.max_nr_regions
    assert res.kernel.vmstat["pswpout"] > 0                   # the cold slots were paged out
    # acma agrees on what the kernel found
    assert a["detect_missed"] == 0 and abs(a["wss_median_bytes"] - k["wss_median_bytes"]) <= 2 * MiB
    assert res.acma_metrics.scheme_stats["nr_tried"] > 0
    # the record damo reads
    assert read_record(tmp_path / "a" / "kernel.data").targets[0].snapshots
    assert (tmp_path / "a" / "heatmaps.png").stat().st_size > 10_000
    # determinism: the same guest again prints the same lines
    _, again = kernel_side(kit, wl, "vaddr", ATTRS, PAGEOUT, GuestOptions(), tmp_path / "b", say=lambda s: None)
    first = (tmp_path / "a" / "console.txt").read_text().splitlines()
    marked = [l for l in first if l.startswith("@@") or "damon_aggregated" in l or "tracing_mark" in l]
    assert marked == [l for l in again if l.startswith("@@") or "damon_aggregated" in l or "tracing_mark" in l]


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["staircase", "small-random"])
def test_other_shapes_vaddr(kit, tmp_path, shape):
    res = run_damon_xval(kit, load_xval_workload(shape), "vaddr", ATTRS, PAGEOUT, GuestOptions(), tmp_path,
                         say=lambda s: None)
    k = res.kernel_metrics.summary()
    assert k["snapshots"] > 0 and k["detect_missed"] <= 1


@pytest.mark.slow
def test_moving_hot_paddr(kit, tmp_path):
    res = run_damon_xval(kit, load_xval_workload("moving-hot"), "paddr", ATTRS, Scheme(action="stat"),
                         GuestOptions(), tmp_path, say=lambda s: None)
    k = res.kernel_metrics.summary()
    assert 4 * MiB <= k["wss_median_bytes"] <= 64 * MiB


@pytest.mark.slow
@pytest.mark.parametrize("reporting", [True, False])
def test_free_page_reporting(kit, tmp_path, reporting):
    res = run_fpr_xval(kit, 128, 500, 4000, 250, GuestOptions(free_page_reporting=reporting, swap_mib=0),
                       tmp_path, say=lambda s: None)
    s = res.summary
    if reporting:
        assert s["rss_returned_kb"] >= 0.5 * (128 << 10) and s["half_returned_after_s"] <= 3.5
    else:
        assert s["rss_returned_kb"] < 0.1 * (128 << 10)
