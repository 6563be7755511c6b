"""The packet-forwarder side over real UDP: acknowledgements, several forwarders, bad CRCs,
status reports, the downlink route and the RX2 fallback."""

from __future__ import annotations

import socket

from gateway_rig import GW2_EUI, GW_EUI, abp_device, envelopes, join, level, otaa_device

from gateway.lorawan.semtech_udp import PushData, Rxpk, Stat


def raw_socket(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.connect(address)
    return sock


def test_acks_echo_token_and_protocol_version(broker, make_config, gateway):
    with gateway(make_config(broker)) as gw, raw_socket(gw.address) as sock:
        eui = GW_EUI.to_bytes(8, "big")
        for version in (1, 2):
            sock.send(bytes([version, 0x12, 0x34, 0x00]) + eui + b"{}")
            assert sock.recv(64) == bytes([version, 0x12, 0x34, 0x01])  # PUSH_ACK
            sock.send(bytes([version, 0xAB, 0xCD, 0x02]) + eui)
            assert sock.recv(64) == bytes([version, 0xAB, 0xCD, 0x04])  # PULL_ACK
        sock.send(b"\x02\x00\x00\x01")  # a PUSH_ACK sent to the server
        sock.send(b"\x07garbage")
        gw.wait_for(lambda: sum(gw.stats.rejected.values()) == 2)
        assert gw.stats.snapshot()["rejected"] == {
            "udp.bad_version": 1,
            "udp.unexpected_direction": 1,
        }


def test_frame_heard_by_two_forwarders_is_one_uplink_with_both_receptions(
    broker, make_config, gateway, forwarders, watch, keys
):
    watcher = watch(broker)
    with gateway(make_config(broker)) as gw:
        near, far = forwarders(gw.address, GW_EUI), forwarders(gw.address, GW2_EUI)
        device = abp_device(keys)
        phy = level(device, 1)
        far.uplink(phy, rssi=-115, lsnr=-12.0)
        near.uplink(phy, rssi=-70, lsnr=9.25)
        near.uplink(level(device, 2))
        seen = watcher.collect(lambda s: len(envelopes(s)) >= 2)
        first, second = envelopes(seen)
        assert [g["id"] for g in first.data["radio"]["gateways"]] == [
            f"{GW2_EUI:016x}",
            f"{GW_EUI:016x}",
        ]
        assert [(g["rssi"], g["snr"]) for g in first.data["radio"]["gateways"]] == [
            (-115, -12.0),
            (-70, 9.25),
        ]
        assert (first.seq, second.seq) == (1, 2)
        snapshot = gw.stats.snapshot()
        assert snapshot["accepted"]["uplinks"] == 2
        assert snapshot["accepted"]["rxpk.copies"] == 1
        assert set(snapshot["packet_forwarders"]) == {f"{GW_EUI:016x}", f"{GW2_EUI:016x}"}


def test_bad_crc_frames_are_dropped_and_counted_per_forwarder(
    broker, make_config, gateway, forwarders
):
    with gateway(make_config(broker)) as gw:
        pf = forwarders(gw.address)
        stat = Stat(time="2026-11-22 10:00:00 GMT", lati=38.1, long=140.03, rxnb=3, rxok=1)
        bad = Rxpk(tmst=1, freq=923.2, datr="SF10BW125", rssi=-120, data=b"\x40" * 20, stat=-1)
        fsk = Rxpk(tmst=2, freq=923.2, datr=50000, rssi=-60, data=b"\x40" * 20, modu="FSK")
        pf.push((bad, fsk, bad), stat)
        gw.wait_for(lambda: sum(gw.stats.rejected.values()) == 3)
        snapshot = gw.stats.snapshot()
        assert snapshot["rejected"] == {"rxpk.crc_bad": 2, "rxpk.not_lora": 1}
        forwarder = snapshot["packet_forwarders"][f"{GW_EUI:016x}"]
        assert (forwarder["rxpk"], forwarder["rxpk_crc_bad"]) == (3, 2)
        assert forwarder["stat"]["rxnb"] == 3 and forwarder["stat"]["lati"] == 38.1
        assert forwarder["last_seen"].endswith("Z")


def test_only_allowed_forwarders_are_heard(broker, make_config, gateway, forwarders, keys):
    config = make_config(broker, udp={"allowed_gateways": [f"{GW2_EUI:016X}"]})
    with gateway(config) as gw, raw_socket(gw.address) as sock:
        datagram = PushData(7, GW_EUI, (Rxpk(1, 923.2, "SF10BW125", -80, b"x"),)).to_bytes()
        sock.send(datagram)
        gw.wait_for(lambda: gw.stats.rejected.get("udp.unknown_gateway") == 1)
        allowed = forwarders(gw.address, GW2_EUI)
        allowed.uplink(level(abp_device(keys), 0))
        gw.wait_for(lambda: gw.stats.value("uplinks") == 1)


def test_join_accept_falls_back_to_rx2_when_the_forwarder_refuses_rx1(
    broker, make_config, gateway, forwarders, keys
):
    with gateway(make_config(broker)) as gw:
        pf = forwarders(gw.address)
        pf.refuse_next("TOO_LATE")
        device = otaa_device(keys)
        rxpk, downlink = join(device, pf)
        assert downlink.txpk.freq == 923.2 and downlink.txpk.datr == "SF10BW125"
        assert downlink.txpk.tmst == (rxpk.tmst + 6_000_000) % 2**32  # JOIN_ACCEPT_DELAY2
        forwarder = lambda: gw.stats.snapshot()["packet_forwarders"][f"{GW_EUI:016x}"]  # noqa: E731
        gw.wait_for(lambda: forwarder()["tx_ack_ok"] == 1)
        assert forwarder()["tx_ack_error"] == 1
        assert gw.stats.rejected == {"downlink.too_late": 1}


def test_no_join_accept_without_a_downlink_route(broker, make_config, gateway, keys):
    with gateway(make_config(broker)) as gw, raw_socket(gw.address) as sock:
        device = otaa_device(keys)
        rxpk = Rxpk(1, 923.2, "SF10BW125", -80, device.join_request(), lsnr=5.0)
        sock.send(PushData(1, GW_EUI, (rxpk,)).to_bytes())  # no PULL_DATA was ever sent
        gw.wait_for(lambda: gw.stats.rejected.get("frame.no_downlink_route") == 1)
        assert gw.stats.value("joins") == 0
