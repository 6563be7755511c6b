"""16-to-32-bit FCnt reconstruction: new frames, retransmissions, replays, rollover, gaps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.lorawan.fcnt import MAX_FCNT_GAP, FCntDecision, Verdict, reconstruct_fcnt
from gateway.lorawan.frames import build_data_uplink, parse_frame

NEW, RETX, REJECT = Verdict.NEW, Verdict.RETRANSMISSION, Verdict.REJECT


@pytest.mark.parametrize(
    ("last", "received", "expected"),
    [
        (None, 0, FCntDecision(NEW, 0)),  # first frame after a join
        (None, 7, FCntDecision(NEW, 7)),  # the first frames were lost
        (10, 11, FCntDecision(NEW, 11)),
        (10, 10, FCntDecision(RETX, 10)),
        (10, 9, FCntDecision(REJECT, None, "fcnt_replay")),
        (10, 0, FCntDecision(REJECT, None, "fcnt_replay")),
        (10, 10 + MAX_FCNT_GAP, FCntDecision(NEW, 10 + MAX_FCNT_GAP)),  # 16383 frames lost
        (10, 11 + MAX_FCNT_GAP, FCntDecision(REJECT, None, "fcnt_gap")),
        (None, MAX_FCNT_GAP, FCntDecision(REJECT, None, "fcnt_gap")),
        (None, 0xFFFF, FCntDecision(REJECT, None, "fcnt_gap")),
        # rollover of the 16 bits on air
        (0xFFFF, 0, FCntDecision(NEW, 0x10000)),
        (0xFFFE, 0xFFFF, FCntDecision(NEW, 0xFFFF)),
        (65530, 3, FCntDecision(NEW, 65539)),
        (0x2FFFF, 0x0001, FCntDecision(NEW, 0x30001)),
        (70000, 70000 & 0xFFFF, FCntDecision(RETX, 70000)),
        (65540, 0xFFFF, FCntDecision(REJECT, None, "fcnt_replay")),  # replay across rollover
        # the 32-bit counter has run out
        (0xFFFFFFFF, 0, FCntDecision(REJECT, None, "fcnt_exhausted")),
        (0xFFFFFFFF, 0xFFFF, FCntDecision(RETX, 0xFFFFFFFF)),
    ],
)
def test_reconstruction_cases(last, received, expected):
    assert reconstruct_fcnt(last, received) == expected


def test_without_max_gap_any_forward_counter_is_a_candidate():
    # LoRaWAN 1.0.4 behaviour: an old counter becomes a far-future one that the MIC will refuse.
    assert reconstruct_fcnt(10, 9, max_gap=None) == FCntDecision(NEW, 0x10009)
    assert reconstruct_fcnt(10, 30000, max_gap=None) == FCntDecision(NEW, 30000)
    assert reconstruct_fcnt(10, 30000, max_gap=40000) == FCntDecision(NEW, 30000)


def test_received_must_be_16_bits():
    with pytest.raises(ValueError):
        reconstruct_fcnt(0, 0x10000)


@given(last=st.integers(0, 2**32 - 1 - MAX_FCNT_GAP), lost=st.integers(0, MAX_FCNT_GAP - 1))
def test_forward_within_gap_is_new(last, lost):
    full = last + 1 + lost
    assert reconstruct_fcnt(last, full & 0xFFFF) == FCntDecision(NEW, full)


@given(last=st.integers(0, 2**32 - 1), back=st.integers(1, 0xFFFF - MAX_FCNT_GAP))
def test_counters_behind_are_rejected(last, back):
    decision = reconstruct_fcnt(last, (last - back) & 0xFFFF)
    assert decision.verdict is REJECT and decision.fcnt is None
    # Named after the nearer reading of the 16 bits: behind (a replay) or far ahead (a gap).
    assert decision.reason == ("fcnt_replay" if back <= 0x7FFF else "fcnt_gap")


def test_mic_confirms_reconstructed_counter_after_rollover():
    nwk, app = b"\x02" * 16, b"\x01" * 16
    wire = build_data_uplink(nwk, app, dev_addr=0x26011234, fcnt=0x10003, fport=2, payload=b"hi")
    frame = parse_frame(wire)
    decision = reconstruct_fcnt(0xFFFE, frame.fcnt)
    assert decision == FCntDecision(NEW, 0x10003)
    assert frame.mic_valid(nwk, decision.fcnt)
    assert frame.decrypt(nwk, app, decision.fcnt) == b"hi"
    # A replay of FCnt 3 from the first epoch, seen after 0x10005: rejected by counter...
    old = parse_frame(build_data_uplink(nwk, app, dev_addr=0x26011234, fcnt=3, fport=2))
    assert reconstruct_fcnt(0x10005, old.fcnt).reason == "fcnt_replay"
    # ...and, with the 1.0.4 unbounded gap, by its MIC at the reconstructed counter.
    guess = reconstruct_fcnt(0x10005, old.fcnt, max_gap=None)
    assert guess.verdict is NEW and not old.mic_valid(nwk, guess.fcnt)
