import pytest

from acma.errors import ConfigError
from acma.units import format_duration_us, format_size, parse_duration_us, parse_size


@pytest.mark.parametrize("text,value", [("4 KiB", 4096), ("128MiB", 128 << 20), ("1,024", 1024), (7, 7),
                                        ("1 GiB 512 MiB", 1536 << 20), ("2 T", 2 << 40)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text,value", [("5 s", 5_000_000), ("100 ms", 100_000), ("1 h 2 m", 3_720_000_000),
                                        (250, 250), ("1.5 s", 1_500_000), ("3 d", 259_200_000_000)])
def test_parse_duration(text, value):
    assert parse_duration_us(text) == value


@pytest.mark.parametrize("bad", ["", "KiB", "4 parsecs", "-1", -3, 1.5, None, True, "1.5 B"])
def test_bad_sizes(bad):
    with pytest.raises(ConfigError) as e:
        parse_size(bad, "x.size")
    assert e.value.field == "x.size"


def test_format():
    assert format_size(4096) == "4.000 KiB"
    assert format_duration_us(1_500_000) == "1.500 s"
    assert format_duration_us(200) == "200 us"
