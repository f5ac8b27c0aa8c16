"""Memory PSI model: kernel fixed-point averaging, stall unions, /proc text and triggers."""

import contextlib
import dataclasses
import io
import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from acma.errors import ConfigError
from acma.mm.psi import (
    FIXED_1, Psi, PsiEvent, calc_load, format_fixed, period_us, psi_freq_jiffies,
)

P = 2_004_000  # the period at HZ 250: 501 jiffies of 4 ms
FULL_SCALE = 100 * FIXED_1


def ref_step(load, exp, active):
    """The kernel's decay step written out independently: ceiling while rising, floor after."""
    num = load * exp + active * (2048 - exp)
    return -(-num // 2048) if active >= load else num // 2048


def ref_averages(pcts, start=(0, 0, 0)):
    """avg10/60/300 in fixed point after feeding integer percent samples ``pcts``."""
    avg = list(start)
    for pct in pcts:
        avg = [ref_step(a, e, pct * 2048) for a, e in zip(avg, (1677, 1981, 2034))]
    return tuple(avg)


def run_constant(psi, stall_us, periods, full=False):
    """Stall ``stall_us`` at the start of each of the next ``periods`` periods."""
    for _ in range(periods):
        start = psi.open_period_start_us
        psi.record(start, start + stall_us, full=full)
        psi.advance(start + psi.period_us)


# --- constants and fixed point ---------------------------------------------------------------

def test_period_follows_hz():
    assert psi_freq_jiffies(250) == 501
    assert period_us(250) == P == Psi().period_us
    assert period_us(100) == 2_010_000
    assert period_us(1000) == 2_001_000
    assert period_us(300) == 2_003_333  # 601 jiffies of 3333.3 µs, rounded down
    assert Psi(hz=100).period_us == 2_010_000


def test_calc_load_rounds_up_when_rising_and_down_when_falling():
    assert calc_load(0, 1677, 10 * FIXED_1) == 10 * (2048 - 1677)  # exact: no rounding
    assert calc_load(3710, 1677, 10 * FIXED_1) == 6748  # (6221670 + 7598080 + 2047) // 2048
    assert calc_load(20479, 1677, 20480) == 20480  # round-up reaches a steady input
    assert calc_load(204800, 1677, 0) == 167700  # 204800 * 1677 / 2048, falling: floor
    assert calc_load(1, 2034, 0) == 0  # floor lets the average reach zero
    assert calc_load(0, 2034, 0) == 0


def test_printing_truncates_to_two_decimals():
    assert format_fixed(0) == "0.00"
    assert format_fixed(FULL_SCALE) == "100.00"
    assert format_fixed(3710) == "1.81"  # 1 + 1662/2048 = 1.8115
    assert format_fixed(2047) == "0.99"  # 0.9995 truncates, it does not round


# --- averaging -------------------------------------------------------------------------------

def test_constant_ten_percent_follows_the_kernel_recurrence():
    psi = Psi()
    # Hand-computed from the recurrence: (period, avg10, avg60, avg300) in fixed point.
    expected = {1: (3710, 670, 140), 2: (6748, 1319, 280), 3: (9236, 1946, 419),
                10: (17706, 5799, 1364), 30: (20432, 12939, 3824), 60: (20480, 17707, 6936)}
    for n in range(1, 61):
        run_constant(psi, P // 10, 1)  # 200_400 µs: exactly 10 %
        assert psi.fixed_averages("some") == ref_averages([10] * n)
        if n in expected:
            assert psi.fixed_averages("some") == expected[n]
    assert psi.snapshot().some.avg10 == 10.0  # converged exactly, thanks to the round-up
    assert psi.snapshot().some.avg60 == 8.64
    assert psi.fixed_averages("full") == (0, 0, 0)


def test_sample_is_floor_of_integer_percent():
    psi = Psi()
    run_constant(psi, P // 10 - 1, 1)  # 9.99995 % samples as 9 %
    assert psi.fixed_averages("some") == ref_averages([9])


@pytest.mark.parametrize("start, end, pcts", [
    (0, 5_000_000, [100, 100, 49]),  # 992 000 µs left for the third period: 49.5 % -> 49
    (1_000_000, 6_000_000, [50, 100, 99]),  # 1_004_000 and 1_992_000 µs at the ends
])
def test_stall_longer_than_a_period_carries_over(start, end, pcts):
    psi = Psi()
    psi.record(start, end, full=True)
    psi.advance(3 * P)
    assert psi.fixed_averages("some") == ref_averages(pcts)
    assert psi.fixed_averages("full") == ref_averages(pcts)
    assert psi.total_us("some") == psi.total_us("full") == end - start


def test_stall_recorded_in_pieces_equals_one_record():
    whole, pieces = Psi(), Psi()
    whole.record(1_000_000, 6_000_000)
    pieces.record(1_000_000, 1_500_000)
    pieces.advance(1_500_000)
    pieces.record(1_500_000, 3_000_000)  # a stall still going on is recorded up to now
    pieces.advance(3_000_000)
    pieces.record(3_000_000, 6_000_000)
    for psi in (whole, pieces):
        psi.advance(4 * P)
    assert whole.snapshot() == pieces.snapshot()


def test_overlapping_and_out_of_order_records_count_once():
    psi = Psi()
    psi.record(300_000, 400_000)
    psi.record(0, 100_000)
    psi.record(50_000, 150_000)
    psi.record(120_000, 130_000)
    psi.record(150_000, 160_000)  # touches [50_000, 150_000): merged
    psi.record(350_000, 350_000)  # empty
    psi.advance(P)
    assert psi.total_us("some") == 160_000 + 100_000
    assert psi.fixed_averages("some") == ref_averages([260_000 * 100 // P])


def test_full_stall_also_counts_as_some():
    psi = Psi()
    psi.record(0, 400_800, full=True)  # 20 %
    psi.record(200_000, 1_002_000)  # some only; union with the above is 50 %
    psi.advance(P)
    assert psi.fixed_averages("full") == ref_averages([20])
    assert psi.fixed_averages("some") == ref_averages([50])
    assert (psi.total_us("some"), psi.total_us("full")) == (1_002_000, 400_800)


def test_step_input_decays_with_the_kernel_rounding():
    psi = Psi()
    run_constant(psi, P, 1000)
    top = psi.fixed_averages("some")
    assert top == (FULL_SCALE, FULL_SCALE, 204_660)  # avg300 creeps up one unit per period
    expected = {1: (167700, 198100, 203260), 2: (137320, 191619, 201870),
                5: (75394, 173420, 197757)}
    for n in range(1, 57):
        psi.advance(psi.open_period_start_us + P)
        assert psi.fixed_averages("some") == ref_averages([0] * n, start=top)
        if n in expected:
            assert psi.fixed_averages("some") == expected[n]
        assert (psi.fixed_averages("some")[0] == 0) == (n == 56)


def test_snapshot_and_total_report_state_at_last_advance():
    psi = Psi()
    psi.record(0, 3_000_000)  # runs into the future
    assert psi.total_us("some") == 0
    psi.advance(1_000_000)
    assert psi.total_us("some") == 1_000_000  # total counts only stall before now
    assert psi.fixed_averages("some") == (0, 0, 0)  # the first period is still open
    psi.advance(P)
    snap = psi.snapshot()
    assert snap.time_us == P
    assert (snap.some.avg10, snap.some.avg60, snap.some.avg300) == (18.11, 3.27, 0.68)
    assert snap.some.total_us == P
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.some.avg10 = 0.0


def test_late_record_within_open_period_is_accepted():
    psi = Psi()
    psi.advance(1_500_000)
    psi.record(500_000, 700_800)  # before now, but the period [0, P) is not closed yet
    psi.advance(P)
    assert psi.fixed_averages("some") == ref_averages([10])


def test_quiet_stretches_decay_with_zero_input_and_skip_fast():
    jump, steps = Psi(), Psi()
    for psi in (jump, steps):
        psi.record(0, P)
    jump.advance(300 * P + 7)
    for t in range(0, 300 * P + 8, 500_000):
        steps.advance(t)
    steps.advance(300 * P + 7)
    assert jump.snapshot() == steps.snapshot()
    assert jump.fixed_averages("some") == ref_averages([100] + [0] * 299)
    jump.advance(10 ** 13)  # 116 simulated days of nothing: must not loop per period
    assert jump.open_period_start_us == 10 ** 13 // P * P
    assert jump.fixed_averages("some") == (0, 0, 0)


def test_start_us_anchors_the_periods():
    psi = Psi(start_us=10_000_000)
    with pytest.raises(ConfigError):
        psi.record(9_999_999, 10_000_100)
    psi.record(10_000_000, 10_200_400)
    psi.advance(10_000_000 + P - 1)
    assert psi.fixed_averages("some") == (0, 0, 0)
    psi.advance(10_000_000 + P)
    assert psi.fixed_averages("some") == ref_averages([10])


# --- /proc/pressure/memory -------------------------------------------------------------------

def test_format_proc_exact_text():
    psi = Psi()
    assert psi.format_proc() == (
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    psi.record(0, P, full=True)
    psi.record(P, P + 1_002_000)
    psi.advance(2 * P + 123)
    assert psi.format_proc() == (
        "some avg10=23.89 avg60=4.80 avg300=1.02 total=3006000\n"
        "full avg10=14.83 avg60=3.16 avg300=0.67 total=2004000\n")


def test_docs_example_prints_what_it_says():
    text = (pathlib.Path(__file__).parents[1] / "docs" / "psi.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    expected = "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("# "))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    assert out.getvalue() == expected


# --- validation ------------------------------------------------------------------------------

def test_record_and_advance_validation():
    psi = Psi()
    psi.advance(P)
    bad_records = [(P - 1, P + 10), (P + 10, P + 5), (True, P + 10), (P, 3.5), (P, None)]
    for start, end in bad_records:
        with pytest.raises(ConfigError):
            psi.record(start, end)
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        psi.advance(P - 1)
    for kwargs in ({"hz": 0}, {"hz": 250.0}, {"start_us": -1}):
        with pytest.raises(ConfigError):
            Psi(**kwargs)
    with pytest.raises(ConfigError):
        psi.total_us("cpu")


# --- triggers --------------------------------------------------------------------------------

@pytest.mark.parametrize("state, threshold, window", [
    ("some", 100_000, 499_999), ("some", 100_000, 10_000_001), ("some", 0, 1_000_000),
    ("full", 1_000_001, 1_000_000), ("cpu", 100_000, 1_000_000), ("some", 1.5, 1_000_000),
])
def test_trigger_validation_rejects(state, threshold, window):
    with pytest.raises(ConfigError):
        Psi().add_trigger(state, threshold, window)


def test_trigger_validation_accepts_the_kernel_limits():
    psi = Psi()
    low = psi.add_trigger("some", 1, 500_000)
    high = psi.add_trigger("full", 10_000_000, 10_000_000)  # threshold == window is allowed
    assert (low.id, high.id) == (0, 1)
    assert (high.state, high.threshold_us, high.window_us) == ("full", 10_000_000, 10_000_000)


def test_trigger_fires_then_defers_one_event_to_the_next_window():
    psi = Psi()
    trig = psi.add_trigger("some", 100_000, 1_000_000)  # polled every 100 ms
    psi.record(0, 150_000)
    psi.advance(3_000_000)
    # 100 ms of stall by the first poll fires; the breach seen at 200 ms waits for the window.
    assert psi.pop_events() == [PsiEvent(100_000, trig), PsiEvent(1_100_000, trig)]
    assert psi.pop_events() == []


def test_trigger_below_threshold_stays_silent():
    psi = Psi()
    psi.add_trigger("some", 100_000, 1_000_000)
    psi.record(0, 99_000)
    psi.advance(5_000_000)
    assert psi.pop_events() == []


def test_trigger_fires_at_most_once_per_window():
    psi = Psi()
    psi.add_trigger("full", 100_000, 1_000_000)
    psi.add_trigger("some", 500_000, 500_000)  # sets the poll period to 50 ms
    psi.record(0, 5_000_000, full=True)
    psi.advance(8_000_000)
    events = psi.pop_events()
    full_times = [e.time_us for e in events if e.trigger.state == "full"]
    some_times = [e.time_us for e in events if e.trigger.state == "some"]
    # full: 100 ms reached at 0.1 s, then one event per 1 s window; the breach seen at 5.0 s
    # is deferred to 5.1 s. some: its window equals its threshold, so it fires every 500 ms.
    assert full_times == [100_000, 1_100_000, 2_100_000, 3_100_000, 4_100_000, 5_100_000]
    assert some_times == [500_000 * k for k in range(1, 11)]
    assert all(e.time_us % 50_000 == 0 for e in events)


def test_trigger_growth_interpolates_the_previous_window():
    psi = Psi()
    psi.add_trigger("some", 500_000, 1_000_000)
    psi.record(0, 300_000)
    psi.record(1_000_000, 1_050_000)
    psi.record(1_100_000, 1_400_000)
    psi.advance(4_000_000)
    # At 1.1 s the window restarts with 350 ms of previous growth; at 1.4 s the 300 ms of new
    # growth plus 70 % of the previous 350 ms reach 545 ms >= 500 ms. Alone, 300 ms would not.
    assert [e.time_us for e in psi.pop_events()] == [1_400_000]


def test_trigger_window_restarts_only_after_more_than_a_window():
    psi = Psi()
    psi.add_trigger("some", 500_000, 1_000_000)
    psi.record(0, 300_000)
    psi.record(900_000, 1_200_000)
    psi.advance(4_000_000)
    # At 1.0 s exactly one window has passed: growth is 400 ms and the window goes on. At 1.1 s
    # it has been exceeded, so the growth since 0 s (500 ms) counts whole and fires. At 1.2 s,
    # 100 ms + 90 % of 500 ms breaches again; that event waits for the next window.
    assert [e.time_us for e in psi.pop_events()] == [1_100_000, 2_100_000]


# --- properties ------------------------------------------------------------------------------

def union_before(intervals, now):
    """Brute-force length of the union of ``intervals`` clipped to [0, now)."""
    covered, end_so_far = 0, 0
    for start, end in sorted(intervals):
        start, end = max(start, end_so_far), min(end, now)
        if end > start:
            covered += end - start
            end_so_far = end
    return covered


steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 3 * P), st.integers(0, 3 * P), st.booleans()),
                 max_size=4),
        st.integers(0, 3 * P)),
    min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_invariants_hold_for_any_stall_pattern(plan):
    psi, replay = Psi(), Psi()
    recorded = {"some": [], "full": []}
    last_total = {"some": 0, "full": 0}
    for records, delta in plan:
        for offset, length, full in records:
            start = psi.open_period_start_us + offset
            psi.record(start, start + length, full=full)
            replay.record(start, start + length, full=full)
            for state in ("some", "full") if full else ("some",):
                recorded[state].append((start, start + length))
        psi.advance(psi.now_us + delta)
        snap = psi.snapshot()
        for state in ("some", "full"):
            fixed = psi.fixed_averages(state)
            assert all(0 <= a <= FULL_SCALE for a in fixed)
            line = getattr(snap, state)
            assert all(0.0 <= v <= 100.0 for v in (line.avg10, line.avg60, line.avg300))
            assert line.total_us == union_before(recorded[state], psi.now_us)
            assert line.total_us >= last_total[state]
            assert line.total_us <= psi.now_us
            last_total[state] = line.total_us
        assert all(s >= f for s, f in zip(psi.fixed_averages("some"),
                                          psi.fixed_averages("full")))
        assert snap.some.total_us >= snap.full.total_us
    replay.advance(psi.now_us)  # one big step gives what many small ones gave
    assert replay.format_proc() == psi.format_proc()
