"""masim config parsing, writing and conversion to the workload model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acma.errors import ConfigError, FormatError
from acma.workloads.masim import (
    ACCESSES_PER_PICK,
    MasimConfig,
    MasimPattern,
    MasimPhase,
    MasimRegion,
    MasimTiming,
    format_masim,
    load_masim,
    masim_to_workload,
    parse_masim,
    time_fractions,
)
from acma.workloads.model import Workload

# The abridged zigzag config of the ecosystem spec, section 2.
ZIGZAG = """\
#regions
a, 100000000
b, 100000000

#phases
initial phase
5000
a, 0, 4096, 1
b, 0, 4096, 1

low phase 0
2500
a, 0, 4096, 50

high phase 0
2500
b, 0, 4096, 50
"""

NPAGES_100MB = math.ceil(100_000_000 / 4096)


def seq(region, probability, stride=4096, rw="wo"):
    return MasimPattern(region, False, stride, probability, rw)


def test_zigzag_parses_exactly():
    cfg = parse_masim(ZIGZAG)
    assert cfg == MasimConfig(
        regions=(MasimRegion("a", 100_000_000), MasimRegion("b", 100_000_000)),
        phases=(
            MasimPhase("initial phase", 5000, (seq("a", 1), seq("b", 1))),
            MasimPhase("low phase 0", 2500, (seq("a", 50),)),
            MasimPhase("high phase 0", 2500, (seq("b", 50),)),
        ),
    )


def test_comments_init_data_rw_and_whitespace():
    text = (
        "# name, length, initial data file\n"
        "a, 8192, none\n"
        "#inside a paragraph\n"
        "b,\t12288 , /tmp/init.bin\n"
        "\n"
        "# phase 1\n"
        "example phase 1\n"
        "# time in ms\n"
        "1000\n"
        "a, 1, 64, 80, ro\n"
        "b, 0, 4096, +20,  rw \n"
        "a, 0, 1, 0\n"
    )
    cfg = parse_masim(text, default_rw="ro")
    assert cfg.regions == (MasimRegion("a", 8192), MasimRegion("b", 12288, "/tmp/init.bin"))
    assert cfg.phases == (
        MasimPhase(
            "example phase 1",
            1000,
            (
                MasimPattern("a", True, 64, 80, "ro"),
                MasimPattern("b", False, 4096, 20, "rw"),
                MasimPattern("a", False, 1, 0, "ro"),
            ),
        ),
    )


def test_default_rw_is_wo_and_checked():
    assert parse_masim(ZIGZAG).phases[0].patterns[0].rw == "wo"
    assert parse_masim(ZIGZAG, default_rw="rw").phases[0].patterns[0].rw == "rw"
    with pytest.raises(ConfigError):
        parse_masim(ZIGZAG, default_rw="xx")
    with pytest.raises(ConfigError):
        parse_masim(ZIGZAG.encode())


def test_phase_names_are_free_text():
    text = "a, 4096\n\n  spaced, name: with commas \n7\na, 0, 4096, 1\n"
    assert parse_masim(text).phases[0].name == "  spaced, name: with commas "


HEAD = "a, 8192\nb, 16384\n\n"

# (text, line named by the error, words the message must contain)
BAD = {
    "missing final newline": (HEAD + "p\n10\na, 0, 4096, 1", 6, "newline"),
    "two final newlines": (HEAD + "p\n10\na, 0, 4096, 1\n\n", 7, "blank line"),
    "blank line then comment at end": (HEAD + "p\n10\na, 0, 4096, 1\n\n# tail\n", 7, "blank line"),
    "double blank line": (
        HEAD + "p\n10\na, 0, 4096, 1\n\n\nq\n10\nb, 0, 4096, 1\n", 8, "two blank lines"
    ),
    "double blank around comment": ("a, 8192\n\n#x\n\np\n10\na, 0, 4096, 1\n", 4, "two blank lines"),
    "bad size": ("a, lots\n\np\n10\na, 0, 4096, 1\n", 1, "region size"),
    "suffix size": ("a, 10M\n\np\n10\na, 0, 4096, 1\n", 1, "'10M'"),
    "zero size": ("a, 0\n\np\n10\na, 0, 4096, 1\n", 1, "region size"),
    "huge size": ("a, 2199023255552\n\np\n10\na, 0, 4096, 1\n", 1, "1099511627776"),
    "unknown region": (HEAD + "p\n10\nc, 0, 4096, 1\n", 6, "'a', 'b'"),
    "region name with edge space": (HEAD + "p\n10\na , 0, 4096, 1\n", 6, "unknown region 'a '"),
    "bad random flag": (HEAD + "p\n10\na, 2, 4096, 1\n", 6, "random flag"),
    "zero stride": (HEAD + "p\n10\na, 0, 0, 1\n", 6, "stride"),
    "negative probability": (HEAD + "p\n10\na, 0, 4096, -1\n", 6, "probability"),
    "zero total probability": (HEAD + "p\n10\na, 0, 4096, 0\nb, 1, 64, 0\n", 4, "total probability"),
    "bad rw mode": (HEAD + "p\n10\na, 0, 4096, 1, rx\n", 6, "rw mode"),
    "phase with no patterns": (HEAD + "p\n10\n\nq\n10\na, 0, 4096, 1\n", 5, "no access pattern"),
    "phase with only a name": (HEAD + "p\n\nq\n10\na, 0, 4096, 1\n", 4, "only a name"),
    "missing duration": (HEAD + "p\na, 0, 4096, 1\nb, 0, 4096, 1\n", 5, "duration line missing"),
    "zero duration": (HEAD + "p\n0\na, 0, 4096, 1\n", 5, "milliseconds"),
    "empty file": ("", 1, "empty file"),
    "only comments": ("# nothing\n#else\n", 1, "only comments"),
    "regions paragraph empty": ("\na, 8192\n\np\n10\na, 0, 4096, 1\n", 1, "regions paragraph is empty"),
    "no phases": ("a, 8192\n", 1, "no phases"),
    "duplicate region": ("a, 8192\nb, 8192\na, 4096\n\np\n10\na, 0, 4096, 1\n", 3, "line 1"),
    "region line fields": ("a, 8192, x, y\n\np\n10\na, 0, 4096, 1\n", 1, "region line"),
    "pattern line fields": (HEAD + "p\n10\na, 0, 4096\n", 6, "pattern line"),
    "spaces-only separator": (
        HEAD + "p\n10\na, 0, 4096, 1\n  \nq\n10\na, 0, 4096, 1\n", 7, "not a blank line"
    ),
    "crlf": ("a, 8192\r\n\r\np\r\n10\r\na, 0, 4096, 1\r\n", 1, "carriage return"),
    "nul": (HEAD + "p\n10\na, 0, 40\x0096, 1\n", 6, "NUL"),
    "empty init data": ("a, 8192, \n\np\n10\na, 0, 4096, 1\n", 1, "init data"),
    "long region name": ("x" * 256 + ", 8192\n\np\n10\na, 0, 4096, 1\n", 1, "255"),
    "region name starting with space": (" a, 8192\n\np\n10\na, 0, 4096, 1\n", 1, "region name"),
    "empty region name": (", 8192\n\np\n10\na, 0, 4096, 1\n", 1, "region name"),
    "duration with unit": (HEAD + "p\n10ms\na, 0, 4096, 1\n", 5, "'10ms'"),
    "overlong number": (HEAD + "p\n10\na, 0, " + "9" * 60 + ", 1\n", 6, "stride"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_input_names_the_line(case):
    text, line, words = BAD[case]
    with pytest.raises(FormatError) as exc:
        parse_masim(text, source="bad.cfg")
    assert exc.value.source == "bad.cfg"
    assert exc.value.where == f"line {line}"
    assert words in exc.value.problem


def test_load_masim(tmp_path):
    good = tmp_path / "zigzag.cfg"
    good.write_text(ZIGZAG)
    assert load_masim(good) == parse_masim(ZIGZAG)
    bad = tmp_path / "latin1.cfg"
    bad.write_bytes(b"a, 8192\n\nph\xe4se\n10\na, 0, 4096, 1\n")
    with pytest.raises(FormatError) as exc:
        load_masim(bad)
    assert exc.value.source == str(bad)
    assert exc.value.where == "line 3"
    assert "UTF-8" in exc.value.problem


# --- constructors refuse what format_masim could not write ---------------------------------------

@pytest.mark.parametrize(
    "make",
    [
        lambda: MasimRegion("a", 0),
        lambda: MasimRegion("a", True),
        lambda: MasimRegion("#a", 4096),
        lambda: MasimRegion("a,b", 4096),
        lambda: MasimRegion("a", 4096, "none"),
        lambda: MasimRegion("a", 4096, "x, y"),
        lambda: MasimPattern("a", 1, 4096, 1),
        lambda: MasimPattern("a", False, 0, 1),
        lambda: MasimPattern("a", False, 4096, 1, "xx"),
        lambda: MasimPhase("#p", 10, (seq("a", 1),)),
        lambda: MasimPhase("p", 0, (seq("a", 1),)),
        lambda: MasimPhase("p", 10, ()),
        lambda: MasimPhase("p", 10, (seq("a", 0),)),
        lambda: MasimPhase("p\nq", 10, (seq("a", 1),)),
        lambda: MasimConfig((MasimRegion("a", 4096),) * 2, (MasimPhase("p", 1, (seq("a", 1),)),)),
        lambda: MasimConfig((MasimRegion("a", 4096),), (MasimPhase("p", 1, (seq("b", 1),)),)),
        lambda: MasimConfig((), (MasimPhase("p", 1, (seq("a", 1),)),)),
        lambda: MasimTiming(seq_access_ns=0),
        lambda: MasimTiming(random_access_ns=float("nan")),
        lambda: MasimTiming(random_access_ns=True),
        lambda: MasimTiming(seq_access_ns=1e7),
    ],
)
def test_constructors_validate(make):
    with pytest.raises(ConfigError):
        make()


def test_lists_become_tuples():
    ph = MasimPhase("p", 1, [seq("a", 1)])
    cfg = MasimConfig([MasimRegion("a", 4096)], [ph])
    assert isinstance(ph.patterns, tuple) and isinstance(cfg.regions, tuple)
    assert hash(cfg) == hash(MasimConfig((MasimRegion("a", 4096),), (ph,)))


# --- round trip -------------------------------------------------------------------------------

_NAME_CHARS = st.characters(blacklist_characters=",\n\r\x00", blacklist_categories=("Cs",))
region_names = st.text(_NAME_CHARS, min_size=1, max_size=10).filter(
    lambda s: s == s.strip() and not s.startswith("#")
)
phase_names = st.text(
    st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda s: not s.startswith("#"))
init_data = st.none() | region_names.filter(lambda s: s != "none")


@st.composite
def masim_configs(draw, names=region_names):
    names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    regions = tuple(
        MasimRegion(n, draw(st.integers(4096, 1 << 40)), draw(init_data)) for n in names
    )
    patterns = st.builds(
        MasimPattern,
        region=st.sampled_from(names),
        random=st.booleans(),
        stride=st.integers(1, 2**31 - 1),
        probability=st.integers(1, 1000),
        rw=st.sampled_from(["ro", "wo", "rw"]),
    )
    phases = draw(
        st.lists(
            st.builds(
                MasimPhase,
                name=phase_names,
                time_ms=st.integers(1, 10**9),
                patterns=st.lists(patterns, min_size=1, max_size=4).map(tuple),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return MasimConfig(regions, tuple(phases))


@settings(max_examples=150, deadline=None)
@given(masim_configs(), st.sampled_from(["ro", "wo", "rw"]))
def test_round_trip(cfg, default_rw):
    text = format_masim(cfg)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert parse_masim(text, default_rw=default_rw) == cfg


def test_zigzag_round_trips_through_format():
    cfg = parse_masim(ZIGZAG)
    assert parse_masim(format_masim(cfg)) == cfg
    with pytest.raises(ConfigError):
        format_masim("not a config")


# --- fuzzing: only MasimConfig or FormatError ---------------------------------------------------

def _parse_or_format_error(text):
    try:
        assert isinstance(parse_masim(text), MasimConfig)
    except FormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text):
    _parse_or_format_error(text)


PIECES = [
    "", "#c", " ", "a, 4096", "b, 8192, none", "c, 10M", "phase", "10", "0", "a, 0, 4096, 1",
    "b, 1, 64, 2, ro", "a, 0, 1, 0", "a, 1, 0, 1", "zz, 0, 4096, 1", "a, 0, 4096, -3",
    "a, 0, 4096, 1, zz", "a,0,1,1,wo", "a, 0, 4096, 1\r",
]
mutations = st.tuples(
    st.sampled_from(["delete", "insert", "replace"]), st.integers(0, 40), st.sampled_from(PIECES)
)


@settings(max_examples=300, deadline=None)
@given(
    masim_configs(names=st.sampled_from("abc")),
    st.lists(mutations, max_size=3),
    st.sampled_from(["\n", "\n", "\n", "", "\n\n"]),
)
def test_fuzz_mutated_configs(cfg, edits, end):
    """Valid files with lines deleted, inserted or replaced reach every parser branch."""
    lines = format_masim(cfg).split("\n")[:-1]
    for op, at, piece in edits:
        at %= len(lines) + 1
        if op == "insert":
            lines.insert(at, piece)
        elif lines:
            at = min(at, len(lines) - 1)
            if op == "delete":
                del lines[at]
            else:
                lines[at] = piece
    _parse_or_format_error("\n".join(lines) + end)


# --- conversion to the workload model -------------------------------------------------------------

def one_phase(patterns, sizes=(("a", 100_000_000),), time_ms=1000):
    return MasimConfig(
        tuple(MasimRegion(n, s) for n, s in sizes), (MasimPhase("p", time_ms, tuple(patterns)),)
    )


def test_accesses_per_pick():
    assert ACCESSES_PER_PICK == 128 * 1024


def test_single_sequential_page_stride():
    w = masim_to_workload(one_phase([seq("a", 1)]), MasimTiming(seq_access_ns=1.0))
    (pattern,) = w.phases[0].patterns
    assert pattern.region == "a"
    assert pattern.rate_hz == pytest.approx(1e9 / NPAGES_100MB)
    assert pattern.write_fraction == 1.0
    assert w.regions[0].npages == NPAGES_100MB and w.regions[0].kind == "anon"


@pytest.mark.parametrize("stride, factor", [(64, 64 / 4096), (1, 1 / 4096), (4096, 1.0), (8192, 1.0)])
def test_sequential_stride_scales_page_visits(stride, factor):
    w = masim_to_workload(one_phase([seq("a", 1, stride=stride)]))
    assert w.phases[0].patterns[0].rate_hz == pytest.approx(factor * 1e9 / NPAGES_100MB)


def test_random_pattern_visits_one_page_per_access():
    timing = MasimTiming(random_access_ns=80.0)
    w = masim_to_workload(one_phase([MasimPattern("a", True, 1, 3)]), timing)
    assert w.phases[0].patterns[0].rate_hz == pytest.approx(1e9 / 80.0 / NPAGES_100MB)


def test_equal_probabilities_split_time_by_cost():
    timing = MasimTiming(seq_access_ns=1.0, random_access_ns=90.0)
    cfg = one_phase(
        [seq("a", 1), MasimPattern("b", True, 64, 1)], sizes=(("a", 100_000_000), ("b", 40960))
    )
    assert time_fractions(cfg.phases[0], timing) == pytest.approx((1 / 91, 90 / 91))
    pa, pb = masim_to_workload(cfg, timing).phases[0].patterns
    assert pa.rate_hz == pytest.approx(1 / 91 * 1e9 / NPAGES_100MB)
    assert pb.rate_hz == pytest.approx(90 / 91 * (1e9 / 90) / 10)


def test_rw_modes_unused_regions_and_zero_probability():
    cfg = one_phase(
        [seq("a", 1, rw="ro"), seq("a", 1, rw="rw"), seq("b", 0), seq("c", 2, rw="wo")],
        sizes=(("a", 8192), ("b", 8192), ("c", 8192), ("d", 8192)),
    )
    phase = masim_to_workload(cfg).phases[0]
    assert [(p.region, p.write_fraction) for p in phase.patterns] == [("a", 0.0), ("a", 0.5), ("c", 1.0)]
    rates = phase.page_rates()
    assert set(rates) == {"a", "c"}
    assert rates["a"][1] == pytest.approx(0.25)
    assert rates["a"][0] == pytest.approx(rates["c"][0])


def test_rate_capped_at_model_ceiling():
    w = masim_to_workload(one_phase([seq("a", 1)], sizes=(("a", 4096),)), MasimTiming(seq_access_ns=0.1))
    assert w.phases[0].patterns[0].rate_hz == 1e9


def test_zigzag_workload_shape():
    w = masim_to_workload(parse_masim(ZIGZAG), name="zigzag", repeat=2)
    assert isinstance(w, Workload) and w.name == "zigzag" and w.repeat == 2
    assert [p.duration_us for p in w.phases] == [5_000_000, 2_500_000, 2_500_000]
    assert [r.size for r in w.regions] == [100_000_000, 100_000_000]
    initial, low, high = (ph.page_rates() for ph in w.phases)
    assert initial["a"][0] == pytest.approx(0.5e9 / NPAGES_100MB)
    assert set(low) == {"a"} and set(high) == {"b"}
    assert low["a"][0] == pytest.approx(1e9 / NPAGES_100MB)


def test_conversion_checks_its_arguments():
    cfg = parse_masim(ZIGZAG)
    with pytest.raises(ConfigError):
        masim_to_workload("x")
    with pytest.raises(ConfigError):
        masim_to_workload(cfg, timing=1.0)
    with pytest.raises(ConfigError):
        masim_to_workload(cfg, name="")


def test_sub_page_regions_parse_and_round_up():
    """masim's own configs/default uses 256-byte regions: they load, and become one page."""
    cfg = parse_masim("a, 256\n\np\n10\na, 1, 64, 1\n")
    assert cfg.regions[0].size == 256
    wl = masim_to_workload(cfg)
    assert wl.regions[0].size == 4096
