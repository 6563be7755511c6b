"""The store's MQTT 5.0 wire format against the byte layouts of the OASIS standard (section numbers
as in gateway/store/mqtt5.py), and the packet reader against every way TCP can cut a stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store import mqtt5
from gateway.store.mqtt5 import Connack, Disconnect, Pingresp, ProtocolError, Publish, Suback


# 1.5.5, the table of Variable Byte Integer sizes: each boundary both ways
@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_variable_byte_integer_matches_the_spec_table(value: int, encoded: str) -> None:
    assert mqtt5.varint(value).hex() == encoded
    raw = bytearray.fromhex(encoded)  # and the reader decodes them as a Remaining Length
    assert mqtt5._remaining_length(raw, 0, len(raw)) == (value, len(raw))
    assert mqtt5._remaining_length(raw, 0, len(raw) - 1) == (-1, -1)  # cut short: wait


def test_variable_byte_integer_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="Variable Byte Integer"):
        mqtt5.varint(268_435_456)


def test_connect_layout() -> None:
    """3.1.2: protocol name, level 5, flags, keepalive, properties; 3.1.3: payload order."""
    packet = mqtt5.connect(
        "store",
        60,
        clean_start=False,
        session_expiry_s=604_800,
        receive_max=8000,
        username="city",
        password="pw",
    )
    body = (
        "00044d515454"  # "MQTT"
        "05"  # protocol version 5
        "c0"  # user name + password, clean start off, no will
        "003c"  # keepalive 60 s
        "08"  # property length
        "1100093a80"  # 0x11 Session Expiry Interval 604800
        "211f40"  # 0x21 Receive Maximum 8000
        "000573746f7265"  # client id "store"
        "000463697479"  # user name "city"
        "00027077"  # password "pw"
    )
    assert packet.hex() == "10" + f"{len(body) // 2:02x}" + body


def test_connect_clean_start_without_credentials() -> None:
    packet = mqtt5.connect("s", 0, clean_start=True, session_expiry_s=0, receive_max=10)
    assert packet[9] == 0x02  # only Clean Start in the Connect Flags (3.1.2.3)


def test_subscribe_and_puback_layout() -> None:
    # 3.8.1: fixed header flags 0010; 3.8.3.1: the options byte carries the maximum QoS
    assert mqtt5.subscribe(1, [("machimori/v1/#", 1)]).hex() == (
        "8214000100000e" + b"machimori/v1/#".hex() + "01"
    )
    # 3.4.2.1: success without properties is just the packet identifier
    assert mqtt5.puback([1, 0x1234]).hex() == "4002000140021234"
    assert mqtt5.PINGREQ_PACKET.hex() == "c000"
    assert mqtt5.DISCONNECT_NORMAL.hex() == "e000"


def _publish_bytes(
    topic: str, payload: bytes, qos: int = 1, pid: int = 7, props: bytes = b"", flags: int = 0
) -> bytes:
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    if qos:
        body += pid.to_bytes(2, "big")
    body += mqtt5.varint(len(props)) + props + payload
    return bytes([0x30 | qos << 1 | flags]) + mqtt5.varint(len(body)) + body


def test_publish_with_properties_and_a_long_payload() -> None:
    # 0x01 Payload Format Indicator, 0x26 User Property ("a", "b"): skipped, payload intact
    props = bytes.fromhex("0101") + bytes.fromhex("26") + b"\x00\x01a\x00\x01b"
    payload = bytes(range(256)) * 80  # 20,480 bytes: a three-byte Remaining Length
    data = _publish_bytes("machimori/v1/camera/cam-01/image/ev-1", payload, props=props, flags=9)
    (packet,) = mqtt5.PacketReader().feed(data)
    assert packet == Publish("machimori/v1/camera/cam-01/image/ev-1", payload, 1, 7, True, True)


def test_qos_0_publish_has_no_packet_identifier() -> None:
    (packet,) = mqtt5.PacketReader().feed(_publish_bytes("a/b", b"{}", qos=0))
    assert (packet.qos, packet.packet_id, packet.payload) == (0, 0, b"{}")


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcdeé/川", min_size=1, max_size=40),
            st.binary(max_size=300),
            st.integers(0, 1),
            st.integers(1, 65535),
        ),
        min_size=1,
        max_size=20,
    ),
    st.lists(st.integers(1, 400), max_size=30),
)
def test_a_stream_cut_anywhere_gives_the_same_packets(messages, cuts) -> None:
    stream = b"".join(_publish_bytes(t, p, q, pid) for t, p, q, pid in messages)
    expected = [Publish(t, p, q, pid if q else 0) for t, p, q, pid in messages]
    reader = mqtt5.PacketReader()
    got: list[mqtt5.Packet] = []
    pos = 0
    for cut in cuts:
        got += reader.feed(stream[pos : pos + cut])
        pos += cut
    got += reader.feed(stream[pos:])
    assert got == expected and reader.pending_bytes == 0


def test_connack_with_properties() -> None:
    # 3.2.2: flags (session present), reason, properties: Receive Maximum 20, Server Keep Alive 30,
    # Assigned Client Identifier "auto-1", Reason String
    props = (
        bytes.fromhex("210014")
        + bytes.fromhex("13001e")
        + b"\x12\x00\x06auto-1"
        + b"\x1f\x00\x02ok"
    )
    body = b"\x01\x00" + mqtt5.varint(len(props)) + props
    (packet,) = mqtt5.PacketReader().feed(b"\x20" + mqtt5.varint(len(body)) + body)
    assert packet == Connack(True, 0, {0x21: 20, 0x13: 30, 0x12: "auto-1", 0x1F: "ok"})


def test_control_packets_from_the_server() -> None:
    data = (
        bytes.fromhex("900400010001")  # SUBACK id 1, granted QoS 1
        + bytes.fromhex("d000")  # PINGRESP
        + b"\xe0\x0c\x8e\x0a\x1f\x00\x07taken!!"  # DISCONNECT 0x8E with a Reason String
        + bytes.fromhex("2003008600")  # CONNACK refused: bad user name or password
    )
    assert mqtt5.PacketReader().feed(data) == [
        Suback(1, b"\x01"),
        Pingresp(),
        Disconnect(0x8E, {0x1F: "taken!!"}),
        Connack(False, 0x86, {}),
    ]
    assert mqtt5.reason_name(0x86) == "0x86 bad user name or password"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes.fromhex("36050001610001"), "QoS 3"),
        (bytes.fromhex("34050001610001"), "QoS 2 on a QoS 1 subscription"),
        (bytes.fromhex("32050001610000"), "Packet Identifier 0"),
        (bytes.fromhex("320100"), "shorter than its header"),
        (bytes.fromhex("3203000161"), "shorter than its header"),
        (bytes.fromhex("300400016105"), "runs past the end"),
        (bytes.fromhex("3003000000"), "without a Topic Name"),
        (bytes.fromhex("30050002c32800"), "not valid UTF-8"),
        (bytes.fromhex("30ffffffff01"), "longer than four bytes"),
        (bytes.fromhex("20050000027f00"), "unknown property identifier 0x7F"),
        (bytes.fromhex("a000"), "unexpected packet type 10"),
        (bytes.fromhex("90020001"), "SUBACK shorter"),
    ],
)
def test_malformed_packets_name_what_is_wrong(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        mqtt5.PacketReader().feed(data)


def test_an_incomplete_packet_waits_for_the_rest() -> None:
    data = _publish_bytes("a/b", b"x" * 200)
    reader = mqtt5.PacketReader()
    assert reader.feed(data[:1]) == [] and reader.feed(data[1:2]) == []  # half a length
    assert reader.feed(data[2:-1]) == [] and reader.pending_bytes == len(data) - 1
    assert reader.feed(data[-1:]) == [Publish("a/b", b"x" * 200, 1, 7)]
