"""Semtech UDP protocol: PROTOCOL.TXT examples, round trips, and hostile datagrams."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.lorawan.semtech_udp import (
    PROTOCOL_VERSION,
    PullAck,
    PullData,
    PullResp,
    PushAck,
    PushData,
    Rxpk,
    Stat,
    TxAck,
    Txpk,
    UdpError,
    parse_datagram,
)

EUI = 0xAA555A0000000000
EUI_BYTES = bytes.fromhex("AA555A0000000000")

# Lora-net/packet_forwarder PROTOCOL.TXT (v2) §4 rxpk examples 2 and 3, and the §4 stat example.
# (Example 1's data "-DS4CGaDCdG+48eJ..." is not base64 at all and is tested as a rejection.)
PROTOCOL_RXPK = """{"rxpk":[
  {"time":"2013-03-31T16:21:17.530974Z","tmst":3512348514,"chan":9,"rfch":1,"freq":869.1,
   "stat":1,"modu":"FSK","datr":50000,"rssi":-75,"size":16,"data":"VEVTVF9QQUNLRVRfMTIzNA=="},
  {"time":"2013-03-31T16:21:17.532038Z","tmst":3316387610,"chan":0,"rfch":0,"freq":863.00981,
   "stat":1,"modu":"LORA","datr":"SF10BW125","codr":"4/7","rssi":-38,"lsnr":5.5,"size":32,
   "data":"ysgRl452xNLep9S1NTIg2lomKDxUgn3DJ7DE+b00Ass"}],
 "stat":{"time":"2014-01-12 08:59:28 GMT","lati":46.24000,"long":3.25230,"alti":145,"rxnb":2,
   "rxok":2,"rxfw":2,"ackr":100.0,"dwnb":2,"txnb":2}}"""
# PROTOCOL.TXT §6 first txpk example.
PROTOCOL_TXPK = """{"txpk":{"imme":true,"freq":864.123456,"rfch":0,"powe":14,"modu":"LORA",
  "datr":"SF11BW125","codr":"4/6","ipol":false,"size":32,
  "data":"H3P3N2i9qc4yt7rK7ldqoeCVJGBybzPY5h1Dd7P7p8v"}}"""


def test_protocol_txt_push_data():
    datagram = parse_datagram(b"\x02\x12\x34\x00" + EUI_BYTES + PROTOCOL_RXPK.encode())
    assert isinstance(datagram, PushData)
    assert (datagram.version, datagram.token, datagram.gateway_eui) == (2, 0x1234, EUI)
    fsk, lora = datagram.rxpk
    assert (fsk.modu, fsk.datr, fsk.data, fsk.codr, fsk.lsnr) == (
        "FSK",
        50000,
        b"TEST_PACKET_1234",
        None,
        None,
    )
    assert (lora.tmst, lora.chan, lora.datr, lora.codr, lora.rssi, lora.lsnr, lora.size) == (
        3316387610,
        0,
        "SF10BW125",
        "4/7",
        -38,
        5.5,
        32,
    )
    assert lora.frequency_hz == 863_009_810
    assert datagram.stat == Stat(
        time="2014-01-12 08:59:28 GMT",
        lati=46.24,
        long=3.2523,
        alti=145,
        rxnb=2,
        rxok=2,
        rxfw=2,
        ackr=100.0,
        dwnb=2,
        txnb=2,
    )


def test_protocol_txt_first_rxpk_example_is_not_base64():
    body = {"rxpk": [{"tmst": 1, "freq": 866.349812, "stat": 1, "modu": "LORA"}]}
    body["rxpk"][0] |= {"datr": "SF7BW125", "rssi": -35, "size": 32}
    body["rxpk"][0]["data"] = "-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84"
    push = parse_datagram(b"\x02\x00\x01\x00" + EUI_BYTES + json.dumps(body).encode())
    assert (push.rxpk, push.rejected) == ((), ("bad_data",))


def test_protocol_txt_pull_resp_unpadded_data():
    datagram = parse_datagram(b"\x02\xab\xcd\x03" + PROTOCOL_TXPK.encode())
    assert isinstance(datagram, PullResp) and datagram.token == 0xABCD
    txpk = datagram.txpk
    assert (txpk.imme, txpk.freq, txpk.powe, txpk.datr, txpk.codr, txpk.ipol, txpk.size) == (
        True,
        864.123456,
        14,
        "SF11BW125",
        "4/6",
        False,
        32,
    )
    assert txpk.frequency_hz == 864_123_456


@pytest.mark.parametrize(
    ("datagram", "wire"),
    [
        (PushAck(0x1234), b"\x02\x12\x34\x01"),
        (PullAck(0x0001), b"\x02\x00\x01\x04"),
        (PullData(0xBEEF, EUI), b"\x02\xbe\xef\x02" + EUI_BYTES),
        (PushAck(7, version=1), b"\x01\x00\x07\x01"),
    ],
)
def test_fixed_layouts(datagram, wire):
    assert datagram.to_bytes() == wire
    assert parse_datagram(wire) == datagram


def test_tx_ack_forms():
    header = b"\x02\x00\x09\x05" + EUI_BYTES
    assert parse_datagram(header) == TxAck(9, EUI)
    assert parse_datagram(header + b'{"txpk_ack":{"error":"NONE"}}\x00') == TxAck(9, EUI)
    late = parse_datagram(header + b'{"txpk_ack":{"error":"TOO_LATE"}}')
    assert late == TxAck(9, EUI, error="TOO_LATE")
    # sx1302 forwarders may report a warning without an error.
    assert parse_datagram(header + b'{"txpk_ack":{"warn":"TX_POWER","value":14}}').error is None
    assert TxAck(9, EUI).to_bytes() == header + b'{"txpk_ack":{"error":"NONE"}}'


def test_pull_resp_wire_form():
    txpk = Txpk(freq=923.2, powe=14, datr="SF10BW125", data=b"\x20\x01", tmst=1_000_000)
    wire = PullResp(5, txpk).to_bytes()
    assert wire[:4] == b"\x02\x00\x05\x03"
    assert json.loads(wire[4:]) == {
        "txpk": {
            "imme": False,
            "tmst": 1_000_000,
            "freq": 923.2,
            "rfch": 0,
            "powe": 14,
            "modu": "LORA",
            "datr": "SF10BW125",
            "codr": "4/5",
            "ipol": True,
            "ncrc": False,
            "size": 2,
            "data": "IAE=",
        }
    }


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "too_short"),
        (b"\x02\x00\x01", "too_short"),
        (b"\x03\x00\x01\x01", "bad_version"),
        (b"\x00\x00\x01\x01", "bad_version"),
        (b"\x02\x00\x01\x06", "bad_identifier"),
        (b"\x02\x00\x01\x01\x00", "bad_length"),
        (b"\x02\x00\x01\x02" + EUI_BYTES[:7], "too_short"),
        (b"\x02\x00\x01\x02" + EUI_BYTES + b"{}", "bad_length"),
        (b"\x02\x00\x01\x00" + EUI_BYTES, "bad_json"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b"[]", "bad_json"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b'{"rxpk":[{"tmst":NaN}]}', "bad_json"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b"{" * 100_000, "bad_json"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b"\xff\xfe{}", "bad_json"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b'{"rxpk":{}}', "bad_rxpk"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b'{"stat":[]}', "bad_stat"),
        (b"\x02\x00\x01\x00" + EUI_BYTES + b'{"stat":{"rxnb":true}}', "bad_stat"),
        (b"\x02\x00\x01\x03{}", "bad_txpk"),
        (b"\x02\x00\x01\x05" + EUI_BYTES + b'{"txpk_ack":[]}', "bad_tx_ack"),
        (b"\x02\x00\x01\x05" + EUI_BYTES + b'{"txpk_ack":{"error":1}}', "bad_tx_ack"),
    ],
)
def test_rejections_have_stable_reasons(wire, reason):
    with pytest.raises(UdpError) as err:
        parse_datagram(wire)
    assert err.value.reason == reason


GOOD_RXPK = {
    "tmst": 1,
    "freq": 923.2,
    "stat": 1,
    "modu": "LORA",
    "datr": "SF10BW125",
    "rssi": -50,
    "size": 1,
    "data": "QA==",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tmst": -1}, "bad_tmst"),
        ({"tmst": 2**32}, "bad_tmst"),
        ({"tmst": 1.5}, "bad_tmst"),
        ({"stat": 2}, "bad_stat"),
        ({"freq": "923.2"}, "bad_freq"),
        ({"freq": 10**400}, "bad_freq"),
        ({"rssi": True}, "bad_rssi"),
        ({"modu": "OOK"}, "bad_modulation"),
        ({"datr": 50000}, "bad_modulation"),
        ({"size": 2}, "bad_data"),
        ({"data": "Q"}, "bad_data"),
        ({"data": "QA==\n"}, "bad_data"),
        ({"data": "Éa=="}, "bad_data"),
        ({"lsnr": None}, "bad_lsnr"),
        ({"codr": 5}, "bad_codr"),
    ],
)
def test_a_bad_rxpk_entry_is_rejected_by_field_and_its_neighbour_kept(change, reason):
    """PROTOCOL.TXT §4: rxpk is an array; one unreadable entry does not spoil the others."""
    body = json.dumps({"rxpk": [GOOD_RXPK | change, GOOD_RXPK, 1]}).encode()
    push = parse_datagram(b"\x02\x00\x01\x00" + EUI_BYTES + body)
    assert push.rejected == (reason, "not_object")
    assert [p.tmst for p in push.rxpk] == [1]


def test_good_rxpk_template_parses():
    body = json.dumps({"rxpk": [GOOD_RXPK]}).encode()
    (rxpk,) = parse_datagram(b"\x02\x00\x01\x00" + EUI_BYTES + body).rxpk
    assert rxpk == Rxpk(tmst=1, freq=923.2, datr="SF10BW125", rssi=-50, data=b"@", codr=None)


# --- property tests -----------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
eui = st.integers(0, 2**64 - 1)
version = st.sampled_from([1, PROTOCOL_VERSION])
finite = st.floats(allow_nan=False, allow_infinity=False)
lora = st.sampled_from(["SF7BW125", "SF10BW125", "SF12BW125", "SF7BW250"])
text = st.text(max_size=30)

rxpks = st.builds(
    Rxpk,
    tmst=st.integers(0, 2**32 - 1),
    freq=st.floats(100, 1000),
    datr=lora,
    rssi=st.integers(-200, 0),
    data=st.binary(max_size=255),
    codr=st.none() | st.sampled_from(["4/5", "4/6", "4/7", "4/8"]),
    lsnr=st.none() | finite,
    stat=st.sampled_from([-1, 0, 1]),
    chan=st.integers(0, 15),
    rfch=st.integers(0, 1),
    time=st.none() | text,
)
stats = st.builds(
    Stat,
    time=st.none() | text,
    lati=st.none() | finite,
    long=st.none() | finite,
    alti=st.none() | st.integers(-500, 9000),
    rxnb=st.none() | st.integers(0, 2**32),
    ackr=st.none() | finite,
)
txpks = st.builds(
    Txpk,
    freq=st.floats(100, 1000),
    powe=st.integers(0, 30),
    datr=lora,
    data=st.binary(max_size=255),
    imme=st.booleans(),
    tmst=st.none() | st.integers(0, 2**32 - 1),
    rfch=st.integers(0, 1),
    codr=st.none() | st.just("4/5"),
    ipol=st.booleans(),
    ncrc=st.booleans(),
)
datagrams = st.one_of(
    st.builds(
        PushData, u16, eui, st.lists(rxpks, max_size=3).map(tuple), st.none() | stats, version
    ),
    st.builds(PushAck, u16, version),
    st.builds(PullData, u16, eui, version),
    st.builds(PullAck, u16, version),
    st.builds(PullResp, u16, txpks, version),
    st.builds(
        TxAck, u16, eui, st.none() | st.sampled_from(["TOO_LATE", "COLLISION_PACKET"]), version
    ),
)


@given(datagrams)
def test_round_trip(datagram):
    assert parse_datagram(datagram.to_bytes()) == datagram


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
# Mostly-valid records, each field kept, dropped or replaced by an arbitrary JSON value, to reach
# the field checks behind the structural ones.
fuzzed_rxpk = st.fixed_dictionaries(
    {}, optional={key: st.just(value) | json_values for key, value in GOOD_RXPK.items()}
)
fuzzed_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"rxpk": st.lists(fuzzed_rxpk, max_size=2), "stat": json_values}
    ),
    st.fixed_dictionaries({}, optional={"txpk": json_values, "txpk_ack": json_values}),
)


def _accepts_or_udp_error(wire: bytes) -> None:
    try:
        parse_datagram(wire)
    except UdpError:
        pass


@given(st.binary(max_size=64))
@example(b"\x02\x00\x00\x00" + bytes(8) + b"\xff")
def test_random_bytes_raise_only_udp_error(wire):
    _accepts_or_udp_error(wire)


@given(version=st.integers(0, 3), token=u16, identifier=st.integers(0, 6), body=fuzzed_bodies)
def test_random_json_raises_only_udp_error(version, token, identifier, body):
    header = bytes([version]) + token.to_bytes(2, "big") + bytes([identifier])
    payload = json.dumps(body).encode()
    _accepts_or_udp_error(header + payload)
    _accepts_or_udp_error(header + EUI_BYTES + payload)


@given(
    datagram=datagrams,
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 2000),
)
def test_mutated_datagrams_raise_only_udp_error(datagram, edits, cut):
    wire = bytearray(datagram.to_bytes())
    for index, value in edits:
        wire[index % len(wire)] = value
    _accepts_or_udp_error(bytes(wire))
    _accepts_or_udp_error(bytes(wire[:cut]))
