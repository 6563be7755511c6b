"""Time on air against published calculator values; AS923 payload limits against the dwell time."""

from __future__ import annotations

import pytest

from edge.protocol.airtime import (
    AS923_DATA_RATES,
    MaxPayload,
    dr_time_on_air,
    max_payload,
    time_on_air,
)


@pytest.mark.parametrize(
    ("size", "sf", "bw", "cr", "ms"),
    [
        # The figure quoted for the Semtech LoRa calculator: SF7/125 kHz, 13 octets.
        (13, 7, 125_000, "4/5", 46.336),
        # brocaar/lorawan airtime/airtime_test.go TestCalculateLoRaAirtime.
        (13, 12, 125_000, "4/5", 1155.072),
        # LoRa airtime spreadsheet after AN1200.13 (docs.google.com/spreadsheets/d/
        # 1voGAtQAjC1qBmaVuP1ApNKs1ekgUjavHuVQIXyYSvNc): SF9, 13 octets, no LDRO.
        (13, 9, 125_000, "4/5", 164.864),
        # Its LoRaWAN edition (.../1eL1nHxMidIcIdDE_l-DoY3kmE2e8b0YpOBW64WnYxj8): 24-octet
        # application payload + 13 octets of LoRaWAN header, LDRO auto.
        (37, 7, 125_000, "4/5", 82.176),
        (37, 8, 125_000, "4/5", 143.872),
        (37, 9, 125_000, "4/5", 267.264),
        (37, 10, 125_000, "4/5", 493.568),
        (37, 11, 125_000, "4/5", 1069.056),
        (37, 12, 125_000, "4/5", 1974.272),
        # RF Wireless World LoRaWAN airtime calculator, examples 1 (SF7) and 2 (SF11, LDRO on).
        (10, 7, 125_000, "4/5", 41.216),
        (10, 11, 125_000, "4/5", 577.536),
    ],
)
def test_published_time_on_air(size, sf, bw, cr, ms):
    assert time_on_air(size, sf, bw, coding_rate=cr) * 1000 == pytest.approx(ms, abs=1e-9)


def test_ldro_and_coding_rate_change_the_symbol_count():
    # brocaar/lorawan airtime_test.go TestCalculateLoRaPayloadSymbolNumber: 50 octets at SF12 with
    # LDRO is 58 payload symbols; 4/6 on 13 octets is 26. Each symbol at SF12/125 is 32.768 ms.
    symbol, preamble = 32.768, 12.25
    assert time_on_air(50, 12, 125_000) * 1000 == pytest.approx((preamble + 58) * symbol)
    assert time_on_air(13, 12, 125_000, coding_rate="4/6") * 1000 == pytest.approx(
        (preamble + 26) * symbol
    )


def test_downlinks_without_crc_are_shorter_or_equal():
    for size in range(0, 60):
        assert time_on_air(size, 10, 125_000, crc=False) <= time_on_air(size, 10, 125_000)
    assert time_on_air(13, 7, 125_000, crc=False) < time_on_air(13, 7, 125_000)


def test_dr_table_is_as923():
    assert [(r.sf, r.bandwidth_hz) for r in AS923_DATA_RATES.values()] == [
        (12, 125_000),
        (11, 125_000),
        (10, 125_000),
        (9, 125_000),
        (8, 125_000),
        (7, 125_000),
        (7, 250_000),
    ]
    assert dr_time_on_air(5, 13) == time_on_air(13, 7, 125_000)


def test_max_payload_tables():
    # RP002-1.0.4 AS923, as in chirpstack lrwn/src/region/as923.rs (no repeater).
    assert max_payload(2) == MaxPayload(19, 11)  # the design's 11-octet budget
    assert max_payload(0) is None and max_payload(1) is None
    assert max_payload(2, dwell_time=False) == MaxPayload(123, 115)
    assert max_payload(0, dwell_time=False) == MaxPayload(59, 51)


@pytest.mark.parametrize("dr", sorted(AS923_DATA_RATES))
def test_dwell_limits_are_the_largest_frames_under_400_ms(dr):
    # An independent check of the RP002 table: M + MHDR + MIC is the longest PHY payload whose
    # airtime stays within the 400 ms dwell time (capped at 250 by the table).
    fitting = [m for m in range(0, 251) if dr_time_on_air(dr, m + 5) <= 0.4]
    limit = max_payload(dr)
    assert (limit.m if limit else None) == (max(fitting) if fitting else None)
    if limit:
        assert limit.n == limit.m - 8  # FHDR without FOpts (7) and FPort (1)


@pytest.mark.parametrize(
    "kwargs", [{"sf": 13}, {"sf": 5}, {"coding_rate": "4/9"}, {"payload_size": 256}]
)
def test_rejects_impossible_parameters(kwargs):
    args = {"payload_size": 13, "sf": 7, "bandwidth_hz": 125_000} | kwargs
    with pytest.raises(ValueError):
        time_on_air(**args)
