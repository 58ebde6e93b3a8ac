"""benchmarks/turns_bench.py's bootstrap interval of a set's DER over its dialogues."""

from __future__ import annotations

import math

from benchmarks.turns_bench import der_interval


def _file(der: float, speech_s: float) -> dict[str, float]:
    return {"der": der, "reference_speech_s": speech_s}


def test_dialogues_with_one_der_give_no_spread() -> None:
    low, high = der_interval([_file(0.07, 20.0), _file(0.07, 25.0), _file(0.07, 18.0)])
    assert math.isclose(low, 0.07) and math.isclose(high, 0.07)


def test_two_dialogues_span_their_own_ders() -> None:
    # two equal-length dialogues at 10% and 30%: a draw of two takes the first twice a quarter of
    # the time (10%), the second twice a quarter (30%), one of each half (20%), so the 2.5% and
    # 97.5% quantiles are the two dialogues' own DERs
    low, high = der_interval([_file(0.1, 10.0), _file(0.3, 10.0)])
    assert math.isclose(low, 0.1) and math.isclose(high, 0.3)


def test_each_draw_pools_error_over_speech_rather_than_averaging_ders() -> None:
    # five long dialogues without error and five one-second ones all wrong: a draw holds at most
    # 9 wrong seconds against 100 s of a long dialogue unless all ten picks are short (1 in 1024),
    # so the interval stays under 9/109; a mean of the dialogues' DERs would reach about 0.8
    files = [_file(0.0, 100.0)] * 5 + [_file(1.0, 1.0)] * 5
    low, high = der_interval(files)
    assert 0.0 < low < high < 9 / 109


def test_no_scored_dialogue_gives_no_interval() -> None:
    low, high = der_interval([{"der": None, "reference_speech_s": 0.0}])
    assert math.isnan(low) and math.isnan(high)
