"""The bulk integer parser of ELONXI text reads exactly what the general parser reads."""

import numpy as np
import pytest
from k2muse_dataset.aus_reader import _parse_any_numbers, _parse_integers, read_aus_channel
from k2muse_dataset.synth import format_aus_channel

SAME_AS_GENERAL = [
    "1\t-2\t+3\n-0\t007\t12345678901234\n",
    "ELONXI export\r\nChannel 1\r\n5,6;7 ,, 8\r\n-9\n",
    "# header\n\n  -1 2\n3\n",
]
GENERAL_ONLY = [
    "1.5 2\n",         # decimals
    "1e3 2\n",         # exponent
    "1-2 3\n",         # sign inside a token
    "- 3\n",           # lone sign
    "1234567890123456 1\n",  # 16 digits: beyond exact float64 integers
    "hdr\x0b2\n3 4\n",  # a header line break only str.splitlines knows
    ".5 hdr\n1 2\n",   # a first line the general parser takes as numeric
]


@pytest.mark.parametrize("text", SAME_AS_GENERAL)
def test_bulk_parser_matches_the_general_one(text):
    fast = _parse_integers(text.encode())
    assert fast is not None
    general = _parse_any_numbers(None, text)
    assert fast.dtype == general.dtype == np.float32
    assert fast.tobytes() == general.tobytes()  # bit for bit, -0.0 included


@pytest.mark.parametrize("text", GENERAL_ONLY)
def test_anything_else_goes_to_the_general_parser(text):
    assert _parse_integers(text.encode()) is None


def test_generated_channel_file_round_trips(tmp_path):
    frames = np.random.default_rng(5).integers(-300, 300, (7, 1000)).astype(np.float32)
    path = tmp_path / "US_Ch2_S_1_Trial_1.txt"
    path.write_text("# header\n" + format_aus_channel(frames))
    assert _parse_integers(path.read_bytes()) is not None
    np.testing.assert_array_equal(read_aus_channel(path), frames)


def test_malformed_token_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 2 3\n4 1.2.3 6\n")
    with pytest.raises(ValueError, match=r"bad.txt: non-numeric sample '1.2.3'"):
        read_aus_channel(path)
