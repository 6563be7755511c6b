"""PHYPayload parsing and building: published frames both ways, round trips, hostile input."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.lorawan import crypto
from gateway.lorawan.frames import (
    DataFrame,
    FCtrl,
    FrameError,
    JoinAccept,
    JoinRequest,
    MType,
    build_data_downlink,
    build_data_uplink,
    build_join_accept,
    build_join_request,
    join_request_mic_valid,
    parse_frame,
    parse_join_accept,
)

h = bytes.fromhex
# anthonykirby/lora-packet test keys (__tests__/mic_test.ts, decrypt_test.ts, packet_test.ts).
LP_NWK = h("44024241ed4ce9a68c6a8bc055233fd3")
LP_APP = h("ec925802ae430ca77fd3dd73cb2cc588")
LP_APP_KEY = h("98929b92c49edba9676d646d3b612456")
# brocaar/lorawan and chirpstack lrwn examples use these.
KEY_1_16 = bytes(range(1, 17))
KEY_16_1 = bytes(range(16, 0, -1))


def test_lora_packet_uplink_parse_verify_decrypt_and_rebuild():
    # lora-packet mic_test.ts, decrypt_test.ts and packet_test.ts "should encrypt if keys provided".
    wire = h("40F17DBE4900020001954378762B11FF0D")
    frame = parse_frame(wire)
    assert isinstance(frame, DataFrame)
    assert (frame.mtype, frame.dev_addr, frame.fcnt, frame.fport) == (
        MType.UNCONFIRMED_DATA_UP,
        0x49BE7DF1,
        2,
        1,
    )
    assert frame.uplink and not frame.confirmed
    assert frame.mic_valid(LP_NWK, 2)
    assert not frame.mic_valid(LP_NWK, 0x10002)
    assert frame.decrypt(LP_NWK, LP_APP, 2) == b"test"
    assert frame.to_bytes() == wire
    rebuilt = build_data_uplink(
        LP_NWK, LP_APP, dev_addr=0x49BE7DF1, fcnt=2, fport=1, payload=b"test"
    )
    assert rebuilt == wire


def test_lora_packet_detects_bad_mic():
    # lora-packet mic_test.ts "should detect incorrect data packet MIC" (last octet aa, not af).
    assert parse_frame(h("40F17DBE49000300012A3518AF")).mic_valid(LP_NWK, 3)
    assert not parse_frame(h("40F17DBE49000300012A3518AA")).mic_valid(LP_NWK, 3)


def test_lora_packet_multi_block_payload():
    # lora-packet decrypt_test.ts "should decrypt large payload".
    frame = parse_frame(
        h(
            "40f17dbe490004000155332de41a11adc072553544429ce7787707d1c316e027e7e5e33426"
            "3376affb8aa17ad30075293f28dea8a20af3c5e7"
        )
    )
    assert frame.decrypt(LP_NWK, LP_APP, 4) == b"The quick brown fox jumps over the lazy dog."


def test_lora_packet_ack_downlink_both_directions():
    # lora-packet mic_test.ts "should calculate & verify correct data packet MIC for ACK".
    wire = h("60f17dbe4920020001f9d65d27")
    frame = parse_frame(wire)
    assert frame.mtype is MType.UNCONFIRMED_DATA_DOWN and not frame.uplink
    assert frame.fctrl == FCtrl(ack=True)
    assert (frame.fport, frame.frm_payload) == (1, b"")
    assert frame.mic_valid(LP_NWK, 2)
    ack = build_data_downlink(
        LP_NWK, LP_APP, dev_addr=0x49BE7DF1, fcnt=2, fport=1, fctrl=FCtrl(ack=True)
    )
    assert ack == wire


def test_confirmed_data_down_layout_encryption_and_mic():
    # lora-packet packet_test.ts "should create packet with MType as integer" (MType 5): MHDR A0,
    # the octets of a Confirmed Data Down. Its MIC is a placeholder (no keys there), so the MIC and
    # the cipher are computed here from the 1.0.4 text: §4.4 B0 and §4.3.3 A1 with Dir = 1.
    vector = h("A0d4c3b2a10001000174657374eeeeeeee")
    frame = parse_frame(vector)
    assert vector[0] >> 5 == 0b101 and frame.mtype is MType.CONFIRMED_DATA_DOWN
    assert frame.confirmed and not frame.uplink
    assert (frame.dev_addr, frame.fcnt, frame.fport, frame.frm_payload) == (
        0xA1B2C3D4,
        1,
        1,
        b"test",
    )
    assert frame.to_bytes() == vector
    fcnt = 0x10001  # the 32-bit FCntDown: its high half is in B0 and A1, not on air
    fields = {"dev_addr": 0xA1B2C3D4, "fcnt": fcnt, "fport": 1, "payload": b"test"}
    built = build_data_downlink(LP_NWK, LP_APP, **fields, confirmed=True, fctrl=FCtrl(ack=True))
    assert built[:5] + built[6:9] == vector[:5] + vector[6:9]  # MHDR, DevAddr, FCnt, FPort
    assert built[5] == 0x20  # FCtrl: ACK, FOptsLen 0
    addr_fcnt = (0xA1B2C3D4).to_bytes(4, "little") + fcnt.to_bytes(4, "little")
    a1 = bytes([0x01, 0, 0, 0, 0, 1]) + addr_fcnt + bytes([0, 1])
    encryptor = Cipher(algorithms.AES(LP_APP), modes.ECB()).encryptor()
    stream = encryptor.update(a1) + encryptor.finalize()
    assert built[9:-4] == bytes(a ^ b for a, b in zip(b"test", stream, strict=False))
    b0 = bytes([0x49, 0, 0, 0, 0, 1]) + addr_fcnt + bytes([0, len(built) - 4])
    cmac = CMAC(algorithms.AES(LP_NWK))
    cmac.update(b0 + built[:-4])
    assert built[-4:] == cmac.finalize()[:4]
    parsed = parse_frame(built)
    assert parsed.mic_valid(LP_NWK, fcnt) and not parsed.mic_valid(LP_NWK, 1)
    unconfirmed = build_data_downlink(LP_NWK, LP_APP, **fields, fctrl=FCtrl(ack=True))
    assert unconfirmed[0] == 0x60 and unconfirmed[1:-4] == built[1:-4]
    assert unconfirmed[-4:] != built[-4:]  # the MHDR is signed: the MType cannot be flipped


def test_lora_packet_fport_zero_uses_nwk_s_key():
    # lora-packet packet_test.ts "should create packet with port 0".
    nwk = h("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4")
    wire = h("40D4C3B2A1001000002712A3F9C9")
    built = build_data_uplink(
        nwk, bytes(16), dev_addr=0xA1B2C3D4, fcnt=16, fport=0, payload=b"\x02"
    )
    assert built == wire
    assert parse_frame(wire).decrypt(nwk, bytes(16), 16) == b"\x02"


def test_brocaar_confirmed_uplink_example():
    # brocaar/lorawan phypayload_test.go ExampleNewPHYPayload:
    # [128 4 3 2 1 0 0 0 10 226 100 212 247 181 106 14 117].
    wire = bytes([128, 4, 3, 2, 1, 0, 0, 0, 10, 226, 100, 212, 247, 181, 106, 14, 117])
    kwargs = {"dev_addr": 0x01020304, "fcnt": 0, "fport": 10, "payload": h("01020304")}
    assert build_data_uplink(KEY_1_16, KEY_16_1, confirmed=True, **kwargs) == wire
    frame = parse_frame(wire)
    assert frame.confirmed and frame.mic_valid(KEY_1_16, 0)


def test_chirpstack_uplink_with_fopts_example():
    # chirpstack lrwn/src/phy_payload.rs, "LoRaWAN 1.0.x confirmed uplink example" (DevStatusAns).
    wire = h("80040302010300000673070ae264d4f7e117d2c0")
    built = build_data_uplink(
        KEY_1_16,
        KEY_16_1,
        dev_addr=0x01020304,
        fcnt=0,
        fport=10,
        payload=h("01020304"),
        confirmed=True,
        fopts=h("067307"),
    )
    assert built == wire
    frame = parse_frame(wire)
    assert frame.fopts == h("067307")
    assert frame.decrypt(KEY_1_16, KEY_16_1, 0) == h("01020304")


def test_brocaar_adr_uplink():
    # brocaar/lorawan phypayload_test.go TestPHYPayloadData: NwkSKey 02.., AppSKey 01.., "hello".
    wire = base64.b64decode("QAQDAgGAAQABppRkJhXWw7WC")
    frame = parse_frame(wire)
    assert frame.fctrl == FCtrl(adr=True)
    assert frame.mic_valid(b"\x02" * 16, 1)
    assert frame.decrypt(b"\x02" * 16, b"\x01" * 16, 1) == b"hello"
    built = build_data_uplink(
        b"\x02" * 16,
        b"\x01" * 16,
        dev_addr=0x01020304,
        fcnt=1,
        fport=1,
        payload=b"hello",
        fctrl=FCtrl(adr=True),
    )
    assert built == wire


def test_lora_packet_join_request():
    # lora-packet mic_test.ts "should calculate & verify correct join request packet MIC".
    wire = h("0039363463336913AA05693574323831330489C65B1304")
    request = parse_frame(wire)
    assert request == JoinRequest(
        join_eui=0xAA13693363343639, dev_eui=0x3331383274356905, dev_nonce=0x8904, mic=h("C65B1304")
    )
    assert join_request_mic_valid(request, LP_APP_KEY)
    assert not join_request_mic_valid(parse_frame(wire[:-1] + b"\x05"), LP_APP_KEY)
    rebuilt = build_join_request(
        LP_APP_KEY, join_eui=request.join_eui, dev_eui=request.dev_eui, dev_nonce=request.dev_nonce
    )
    assert rebuilt == wire


def test_chirpstack_join_request_example():
    # chirpstack lrwn/src/phy_payload.rs join-request example; also brocaar/lorawan
    # ExampleNewPHYPayload_joinRequest.
    wire = h("0001010101010101010202020202020202030309b97b32")
    built = build_join_request(
        KEY_1_16, join_eui=0x0101010101010101, dev_eui=0x0202020202020202, dev_nonce=771
    )
    assert built == wire


@pytest.mark.parametrize(
    ("app_key", "accept", "wire"),
    [
        # brocaar/lorawan phypayload_test.go TestPHYPayloadJoinAccept (fields big-endian there).
        (
            h("00112233445566778899aabbccddeeff"),
            JoinAccept(join_nonce=0x570BC7, net_id=0x221101, dev_addr=0x02031980),
            h("20493eeb51fba2116f810edb3742975142"),
        ),
        # chirpstack lrwn phy_payload.rs "LoRaWAN 1.0.x Join-accept example".
        (
            KEY_1_16,
            JoinAccept(join_nonce=65793, net_id=0x020202, dev_addr=0x01020304),
            h("2023cf335489aae3183c0be0baa8dee5f3"),
        ),
        # lorawan-stack pkg/crypto/join_messages_test.go TestJoinAcceptEncryption.
        (
            b"\x01" * 16,
            JoinAccept(join_nonce=0x010203, net_id=0x010203, dev_addr=0x01020304, rx_delay=1),
            h("20c9fbb259e11649096a568a9e3b7117c3"),
        ),
    ],
)
def test_join_accept_published_both_directions(app_key, accept, wire):
    assert build_join_accept(app_key, accept) == wire
    assert parse_join_accept(wire, app_key) == accept


def test_join_accept_with_lora_packet_fields_and_cflist():
    # lora-packet mic_test.ts carries this Join-Accept in plaintext with MIC d9d0a6e7.
    accept = JoinAccept(join_nonce=0x376338, net_id=0xAABBCC, dev_addr=0x012CCDE7)
    assert accept.plaintext() == h("386337CCBBAAE7CD2C010000")
    wire = build_join_accept(LP_APP_KEY, accept)
    assert parse_join_accept(wire, LP_APP_KEY) == accept
    cf_list = bytes(range(16))  # raw octets: frames does not interpret the CFList
    with_list = JoinAccept(1, 2, 3, rx1_dr_offset=2, rx2_dr=2, rx_delay=5, cf_list=cf_list)
    wire = build_join_accept(LP_APP_KEY, with_list)
    assert len(wire) == 33
    parsed = parse_join_accept(wire, LP_APP_KEY)
    assert parsed == with_list and parsed.rx1_delay_s == 5
    assert JoinAccept(1, 2, 3).rx1_delay_s == 1


@pytest.mark.parametrize(
    ("dl_settings", "rx_delay", "reason"),
    [(0x80, 0x01, "bad_dl_settings"), (0x00, 0x11, "bad_rx_delay")],
)
def test_join_accept_rfu_bits_rejected(dl_settings, rx_delay, reason):
    fields = h("01000002000003000000") + bytes([dl_settings, rx_delay])
    mic = crypto.cmac_mic(KEY_1_16, h("20") + fields)
    wire = h("20") + crypto.encrypt_join_accept(KEY_1_16, fields + mic)
    with pytest.raises(FrameError) as err:
        parse_join_accept(wire, KEY_1_16)
    assert err.value.reason == reason


def test_join_accept_wrong_key_is_bad_mic():
    wire = h("20493eeb51fba2116f810edb3742975142")
    with pytest.raises(FrameError) as err:
        parse_join_accept(wire, KEY_1_16)
    assert err.value.reason == "bad_mic"


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "too_short"),
        (h("40F17DBE490002"), "too_short"),
        (bytes(256), "too_long"),
        (h("44F17DBE4900020001954378762B11FF0D"), "bad_mhdr"),
        (h("41F17DBE4900020001954378762B11FF0D"), "bad_major"),
        (h("E0010203"), "bad_mtype"),
        (h("20493eeb51fba2116f810edb3742975142"), "bad_mtype"),
        (h("0039363463336913AA05693574323831330489C65B13"), "bad_length"),
        (h("40F17DBE4903020001954378"), "fopts_len"),
        (h("40F17DBE49010200060000000000"), "fopts_with_fport0"),
        (h("60F17DBE4940020000000000"), "bad_fctrl"),
    ],
)
def test_parse_frame_rejections_have_stable_reasons(wire, reason):
    with pytest.raises(FrameError) as err:
        parse_frame(wire)
    assert err.value.reason == reason


def test_parse_join_accept_rejections():
    good = build_join_accept(KEY_1_16, JoinAccept(1, 2, 3))
    for wire, reason in [
        (h("40F17DBE4900020001954378762B11FF0D"), "bad_mtype"),
        (good[:-1], "bad_length"),
        (h("20") + bytes(16), "bad_mic"),
    ]:
        with pytest.raises(FrameError) as err:
            parse_join_accept(wire, KEY_1_16)
        assert err.value.reason == reason


def test_builders_refuse_impossible_frames():
    keys = (bytes(16), bytes(16))
    with pytest.raises(ValueError):
        build_data_uplink(*keys, dev_addr=1, fcnt=0, payload=b"x")  # payload without FPort
    with pytest.raises(ValueError):
        build_data_uplink(*keys, dev_addr=1, fcnt=0, fport=0, fopts=b"\x02")
    with pytest.raises(ValueError):
        build_data_uplink(*keys, dev_addr=1, fcnt=0, fctrl=FCtrl(f_pending=True))
    with pytest.raises(ValueError):
        build_data_downlink(*keys, dev_addr=1, fcnt=0, fctrl=FCtrl(class_b=True))
    with pytest.raises(ValueError):
        build_data_uplink(*keys, dev_addr=1, fcnt=2**32)
    with pytest.raises(ValueError):
        build_data_uplink(*keys, dev_addr=1, fcnt=0, fport=1, payload=bytes(250))
    with pytest.raises(ValueError):
        build_join_accept(bytes(16), JoinAccept(1, 2, 3, cf_list=b"short"))


keys = st.binary(min_size=16, max_size=16)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def data_frames(draw):
    """Keyword arguments for build_data_uplink/downlink that make a valid frame."""
    uplink = draw(st.booleans())
    fport = draw(st.none() | st.integers(0, 255))
    fopts = b"" if fport == 0 else draw(st.binary(max_size=15))
    payload = b"" if fport is None else draw(st.binary(max_size=200))
    flags = {"adr": st.booleans(), "ack": st.booleans()}
    if uplink:
        flags |= {"adr_ack_req": st.booleans(), "class_b": st.booleans()}
    else:
        flags["f_pending"] = st.booleans()
    return uplink, {
        "dev_addr": draw(u32),
        "fcnt": draw(u32),
        "fport": fport,
        "payload": payload,
        "confirmed": draw(st.booleans()),
        "fctrl": draw(st.builds(FCtrl, **flags)),
        "fopts": fopts,
    }


@given(nwk=keys, app=keys, case=data_frames())
def test_data_frame_round_trip(nwk, app, case):
    uplink, kwargs = case
    wire = (build_data_uplink if uplink else build_data_downlink)(nwk, app, **kwargs)
    frame = parse_frame(wire)
    fcnt = kwargs["fcnt"]
    assert frame.uplink is uplink
    assert frame.confirmed is kwargs["confirmed"]
    assert (frame.dev_addr, frame.fcnt, frame.fport) == (
        kwargs["dev_addr"],
        fcnt & 0xFFFF,
        kwargs["fport"],
    )
    assert (frame.fctrl, frame.fopts) == (kwargs["fctrl"], kwargs["fopts"])
    assert frame.mic_valid(nwk, fcnt)
    assert frame.decrypt(nwk, app, fcnt) == kwargs["payload"]
    assert frame.to_bytes() == wire


@given(
    key=keys,
    join_eui=st.integers(0, 2**64 - 1),
    dev_eui=st.integers(0, 2**64 - 1),
    nonce=st.integers(0, 0xFFFF),
)
def test_join_request_round_trip(key, join_eui, dev_eui, nonce):
    wire = build_join_request(key, join_eui=join_eui, dev_eui=dev_eui, dev_nonce=nonce)
    request = parse_frame(wire)
    assert (request.join_eui, request.dev_eui, request.dev_nonce) == (join_eui, dev_eui, nonce)
    assert join_request_mic_valid(request, key)
    assert request.to_bytes() == wire


join_accepts = st.builds(
    JoinAccept,
    join_nonce=st.integers(0, 2**24 - 1),
    net_id=st.integers(0, 2**24 - 1),
    dev_addr=u32,
    rx1_dr_offset=st.integers(0, 7),
    rx2_dr=st.integers(0, 15),
    rx_delay=st.integers(0, 15),
    cf_list=st.none() | st.binary(min_size=16, max_size=16),
)


@given(key=keys, accept=join_accepts)
def test_join_accept_round_trip(key, accept):
    assert parse_join_accept(build_join_accept(key, accept), key) == accept


@given(st.binary(max_size=300))
@example(b"\x40" + bytes(11))
@example(b"\x00" * 23)
def test_parse_frame_raises_only_frame_error(data):
    try:
        parse_frame(data)
    except FrameError:
        pass


@given(key=keys, data=st.binary(max_size=40))
@example(key=bytes(16), data=b"\x20" + bytes(16))
def test_parse_join_accept_raises_only_frame_error(key, data):
    try:
        parse_join_accept(data, key)
    except FrameError:
        pass


@given(
    nwk=keys,
    case=data_frames(),
    edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 300),
)
def test_mutated_frames_raise_only_frame_error(nwk, case, edits, cut):
    uplink, kwargs = case
    wire = bytearray((build_data_uplink if uplink else build_data_downlink)(nwk, nwk, **kwargs))
    for index, value in edits:
        wire[index % len(wire)] = value
    for candidate in (bytes(wire), bytes(wire[:cut])):
        try:
            frame = parse_frame(candidate)
        except FrameError:
            continue
        assert frame.to_bytes() == candidate  # whatever parses re-encodes exactly
