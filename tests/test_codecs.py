"""LoRaWAN payload codecs: byte layouts as documented, both directions, and 11-byte DR2 fit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.protocol.airtime import max_payload
from edge.protocol.codecs import EPOCH, CodecError, codec, widen_seq
from edge.protocol.river import MISSING_REASONS, WARNING_KEYS

RIVER = codec("river-v1")
TS = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_level_byte_layout():
    fport, payload = RIVER.encode("telemetry", "level", 70000, TS, {"level_m": 1.234, "valid": 9})
    seconds = int((TS - EPOCH).total_seconds())
    assert fport == 1
    assert payload == (70000 % 65536).to_bytes(2, "big") + seconds.to_bytes(4, "big") + bytes(
        [0x04, 0xD2, 0x90]
    )


def test_missing_and_crossing_byte_layout():
    _, missing = RIVER.encode("telemetry", "level", 1, TS, {"missing": "no_echo", "valid": 1})
    assert missing[6:] == bytes([0x80, 0x00, 0x11])
    fport, crossing = RIVER.encode(
        "event",
        "level_crossing",
        2,
        TS,
        {"level_m": 2.05, "threshold": "caution", "direction": "rising"},
    )
    assert fport == 2
    assert crossing[6:] == bytes([0x08, 0x02, 0x82])


def test_every_river_payload_fits_as923_dr2_with_dwell_limit():
    for data in ({"level_m": -1.5, "valid": 15}, {"missing": "port", "valid": 0}):
        _, payload = RIVER.encode("telemetry", "level", 1, TS, data)
        assert len(payload) <= max_payload(2, dwell_time=True).n


@given(
    seq=st.integers(0, 2**40),
    seconds=st.integers(0, 2**32 - 1),
    level_mm=st.integers(-32767, 32767),
    valid=st.integers(0, 15),
    missing=st.none() | st.sampled_from(MISSING_REASONS),
)
def test_level_round_trip(seq, seconds, level_mm, valid, missing):
    ts = EPOCH + timedelta(seconds=seconds)
    data = {"missing": missing} if missing else {"level_m": level_mm / 1000}
    data["valid"] = valid
    fport, payload = RIVER.encode("telemetry", "level", seq, ts, data)
    message = RIVER.decode(fport, payload)
    assert (message.seq_low, message.ts, message.data) == (seq % 65536, ts, data)


@given(
    level_mm=st.integers(-32767, 32767),
    threshold=st.sampled_from(WARNING_KEYS),
    direction=st.sampled_from(["rising", "falling"]),
)
def test_crossing_round_trip(level_mm, threshold, direction):
    data = {"level_m": level_mm / 1000, "threshold": threshold, "direction": direction}
    fport, payload = RIVER.encode("event", "level_crossing", 5, TS, data)
    message = RIVER.decode(fport, payload)
    assert (message.channel, message.type, message.data) == ("event", "level_crossing", data)


@given(payload=st.binary(max_size=20), fport=st.integers(0, 255))
def test_decode_rejects_garbage_with_a_reason(payload, fport):
    try:
        RIVER.decode(fport, payload)
    except CodecError as exc:
        assert exc.reason in ("bad_fport", "bad_length", "bad_data")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"level_m": 40.0}, "bad_data"),
        ({"level_m": "high"}, "bad_data"),
        ({"missing": "gremlins"}, "bad_data"),
    ],
)
def test_encode_refuses_what_it_cannot_carry(data, reason):
    with pytest.raises(CodecError) as err:
        RIVER.encode("telemetry", "level", 1, TS, data)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("last", "low", "expected"),
    [
        (None, 7, 7),
        (7, 8, 8),
        (65535, 0, 65536),
        (65536 * 3 + 10, 5, 65536 * 3 + 5),  # a duplicate of a recent one
        (65536 * 3 + 65530, 4, 65536 * 4 + 4),  # across the wrap
        (100, 30000, 30000),  # a gap of lost messages
    ],
)
def test_widen_seq(last, low, expected):
    assert widen_seq(last, low) == expected


def test_set_interval_command_byte_layout_and_round_trip():
    fport, payload = RIVER.encode_command("set_interval", {"interval_s": 600})
    assert (fport, payload) == (10, bytes([0, 0, 0x02, 0x58]))
    assert RIVER.decode_command(fport, payload) == ("set_interval", {"interval_s": 600})
    assert len(payload) <= max_payload(2, dwell_time=True).n


@pytest.mark.parametrize(
    ("type_", "data", "reason"),
    [
        ("set_interval", {"interval_s": 5}, "bad_data"),
        ("set_interval", {"interval_s": 86401}, "bad_data"),
        ("set_interval", {"interval_s": 12.5}, "bad_data"),
        ("set_interval", {"interval_s": True}, "bad_data"),
        ("set_interval", {}, "bad_data"),
        ("reboot", {}, "no_binary_form"),
    ],
)
def test_encode_command_refuses_what_the_agent_would_refuse(type_, data, reason):
    with pytest.raises(CodecError) as err:
        RIVER.encode_command(type_, data)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("fport", "payload", "reason"),
    [(11, bytes(4), "bad_fport"), (10, bytes(3), "bad_length"), (10, bytes(4), "bad_data")],
)
def test_decode_command_rejects_bad_downlinks(fport, payload, reason):
    with pytest.raises(CodecError) as err:
        RIVER.decode_command(fport, payload)
    assert err.value.reason == reason
