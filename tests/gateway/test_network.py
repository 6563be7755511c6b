"""The LoRaWAN network and join server without sockets: joins, counters, replays, downlinks."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
import yaml
from gateway_rig import ABP_ADDR, GW2_EUI, GW_EUI, TMST, abp_device, level, otaa_device

from edge.protocol import Envelope
from edge.protocol.airtime import dr_time_on_air
from edge.runtime.clock import Clock
from edge.runtime.outbox import Outbox
from gateway.lorawan.forward import Forwarder
from gateway.lorawan.network import DevAddrSpace


def test_otaa_join_accept_in_rx1_then_rx2_from_the_uplink_tmst(net, keys):
    n = net()
    device = otaa_device(keys)
    n.hear(device.join_request())
    (downlink,) = n.radio.sent
    accept = device.accept_join(downlink.first.data)  # MIC checked with the AppKey
    assert downlink.gateway_eui == GW_EUI
    first, fallback = downlink.first, downlink.fallback
    assert (first.tmst, first.freq, first.datr) == ((TMST + 5_000_000) % 2**32, 923.4, "SF10BW125")
    assert (fallback.tmst, fallback.freq, fallback.datr) == (
        (TMST + 6_000_000) % 2**32,
        923.2,
        "SF10BW125",
    )
    assert first.ipol and first.powe == 13
    assert device.dev_addr in DevAddrSpace.for_net_id(0)
    assert (accept.rx2_dr, accept.rx1_delay_s) == (2, 1)
    session = n.server.session(n.server.registry.by_eui[device.dev_eui])
    assert (session.nwk_s_key, session.app_s_key) == (device.nwk_s_key, device.app_s_key)
    assert n.stats.value("joins") == 1


def test_join_rejections_are_counted_and_answer_nothing(net, keys):
    n = net()
    device = otaa_device(keys)
    first = device.join_request()
    n.hear(first)
    n.hear(first)  # a recorded Join-Request played again: its DevNonce is used
    device.dev_nonce = 0
    n.hear(device.join_request())  # a device that forgot its DevNonce
    wrong_key = otaa_device(keys)
    wrong_key.app_key = bytes(16)
    wrong_key.dev_nonce = 7
    n.hear(wrong_key.join_request())
    stranger = otaa_device(keys)
    stranger.dev_eui = 0x1122334455667788
    n.hear(stranger.join_request())
    assert len(n.radio.sent) == 1
    assert n.rejected == {
        "frame.bad_mic": 1,
        "frame.dev_nonce_reused": 2,
        "frame.unknown_device": 1,
    }


def test_uplink_is_decrypted_with_radio_metadata_from_every_gateway(net, keys):
    n = net()
    device = abp_device(keys)
    phy = level(device, 5, level_m=2.345)
    n.hear(phy, (GW_EUI, -101, -3.5), (GW2_EUI, -88, 6.0))
    (uplink,) = n.forwarded
    assert uplink.device.id == "river-lora-02" and uplink.fport == 1
    message = uplink.device.payload_codec.decode(uplink.fport, uplink.payload)
    assert (message.seq_low, message.data["level_m"]) == (5, 2.345)
    assert uplink.radio == {
        "gateways": [
            {"id": f"{GW_EUI:016x}", "rssi": -101, "snr": -3.5},
            {"id": f"{GW2_EUI:016x}", "rssi": -88, "snr": 6.0},
        ],
        "frequency_hz": 923_400_000,
        "datr": "SF10BW125",
        "dr": 2,
        "airtime_s": round(dr_time_on_air(2, len(phy)), 4),
        "fcnt": 0,
    }
    assert n.radio.sent == []  # unconfirmed, nothing queued: no downlink


def test_replays_retransmissions_and_resets_are_dropped_and_counted(net, keys):
    n = net()
    device = abp_device(keys)
    frames = [level(device, seq) for seq in range(4)]
    for phy in frames:
        n.hear(phy)
    n.hear(frames[3])  # the last frame again: a retransmission (NbTrans, or a lost ACK)
    n.hear(frames[1])  # an older one: a replay
    device.fcnt_up = 0  # an ABP device that lost its counter
    n.hear(level(device, 4))
    forged = bytearray(level(device, 5))
    forged[-6] ^= 1  # a payload bit flipped in the air or by an attacker
    n.hear(bytes(forged))
    assert [u.radio["fcnt"] for u in n.forwarded] == [0, 1, 2, 3]
    assert n.rejected == {
        "frame.fcnt_retransmission": 1,
        "frame.fcnt_replay": 2,
        "frame.bad_mic": 1,
    }


def test_the_32_bit_counter_survives_the_16_bit_rollover(net, keys):
    n = net()
    device = abp_device(keys)
    session = n.server.session(n.server.registry.by_eui[device.dev_eui])
    session.fcnt_up = 65533
    device.fcnt_up = 65534
    for seq in range(4):
        n.hear(level(device, seq))
    assert [u.radio["fcnt"] for u in n.forwarded] == [65534, 65535, 65536, 65537]
    assert n.rejected == {}


def test_confirmed_uplink_is_acked_in_rx1_and_again_when_retransmitted(net, keys):
    n = net()
    device = abp_device(keys)
    phy = level(device, 0, confirmed=True)
    n.hear(phy, tmst=1000)
    n.hear(phy, tmst=5_000_000)  # the ACK was lost: the device sends the same frame again
    first, second = (device.downlink(d.first.data) for d in n.radio.sent)
    assert (first.ack, first.fcnt, first.fport) == (True, 0, None)
    assert (second.ack, second.fcnt) == (True, 1)
    assert [d.first.tmst for d in n.radio.sent] == [1_001_000, 6_000_000]
    assert len(n.forwarded) == 1


def test_queued_commands_go_out_one_per_uplink_with_fpending(net, keys):
    n = net()
    device = abp_device(keys)
    n.command(device, 60, seq=1)
    n.command(device, 600, seq=2)
    received = []
    for seq, confirmed in ((0, False), (1, True), (2, False)):
        n.hear(level(device, seq, confirmed=confirmed))
        if len(n.radio.sent) > len(received):
            received.append(device.downlink(n.last_downlink()))
    assert [device.command(d) for d in received] == [
        ("set_interval", {"interval_s": 60}),
        ("set_interval", {"interval_s": 600}),
    ]
    assert [(d.f_pending, d.ack, d.confirmed) for d in received] == [
        (True, False, True),
        (False, True, True),
    ]
    assert [r[2:] for r in n.reports] == [(1, True, 1), (2, True, 1)]
    with pytest.raises(ValueError):
        n.server.enqueue(n.server.registry.by_eui[device.dev_eui], 10, bytes(12))  # > DR2 dwell


def test_a_missed_command_is_sent_again_in_a_new_frame_until_the_device_acks_it(net, keys):
    n = net()
    device = abp_device(keys)
    n.command(device, 300, seq=7)
    n.hear(level(device, 0))
    missed = n.last_downlink()  # lost in the air: the device never hears it
    n.hear(level(device, 1))  # so this uplink carries no ACK
    resent = n.last_downlink()
    assert missed != resent
    heard = device.downlink(resent)
    assert device.command(heard) == ("set_interval", {"interval_s": 300})
    assert (heard.fcnt, heard.confirmed) == (1, True)  # the next FCntDown, never the same one
    assert n.reports == []  # not acknowledged yet
    n.hear(level(device, 2))  # the device's ACK rides on its next uplink
    n.hear(level(device, 3))
    assert n.reports == [("river-lora-02", "set_interval", 7, True, 2)]
    assert len(n.radio.sent) == 2  # delivered: never sent again
    assert n.store.queued(f"{device.dev_eui:016x}") == []
    accepted = n.stats.snapshot()["accepted"]
    assert (accepted["cmd.sent"], accepted["cmd.delivered"]) == (2, 1)
    assert len(n.forwarded) == 4


def test_a_command_never_acknowledged_is_given_up_after_max_attempts(net, keys):
    n = net(cmd_max_attempts=3)
    device = abp_device(keys)
    n.command(device, 300, seq=7)
    n.command(device, 600, seq=8)
    for seq in range(3):  # three frames carry the first command; the device hears none
        n.hear(level(device, seq))
    first = [device.downlink(d.first.data) for d in n.radio.sent]
    device.ack_pending = False  # heard only now, by the test: the device never acknowledged
    assert [device.command(d) for d in first] == [("set_interval", {"interval_s": 300})] * 3
    assert [d.fcnt for d in first] == [0, 1, 2]
    assert n.reports == []
    n.hear(level(device, 3))  # a fourth uplink without ACK: the first command is given up
    assert n.reports == [("river-lora-02", "set_interval", 7, False, 3)]
    assert n.rejected == {"cmd.unacknowledged": 1}
    second = device.downlink(n.last_downlink())  # and the next one goes in the same window
    assert device.command(second) == ("set_interval", {"interval_s": 600})
    assert (second.fcnt, second.f_pending) == (3, False)
    n.hear(level(device, 4))
    assert n.reports[-1] == ("river-lora-02", "set_interval", 8, True, 1)


def test_a_retransmitted_uplink_does_not_acknowledge_a_command(net, keys):
    n = net(cmd_max_attempts=2)
    device = abp_device(keys)
    n.command(device, 300, seq=7)
    device.ack_pending = True  # its frame carries ACK, but for nothing the gateway sent
    phy = level(device, 0, confirmed=True)
    n.hear(phy)  # ACK + the command: lost
    n.hear(phy)  # the device repeats the frame, ACK bit and all: attempt 2
    n.hear(phy)  # and again: two attempts were not acknowledged
    assert n.reports == [("river-lora-02", "set_interval", 7, False, 2)]
    assert [device.downlink(d.first.data).fcnt for d in n.radio.sent] == [0, 1, 2]


def test_command_state_survives_restarts_without_reusing_a_fcnt_down(net, keys):
    device = abp_device(keys)
    before = net(cmd_max_attempts=2)
    before.command(device, 300, seq=7)
    before.command(device, 600, seq=8)
    before.hear(level(device, 0))  # attempt 1 of the first command: missed
    before.close()
    middle = net(cmd_max_attempts=2)  # the gateway restarted
    middle.hear(level(device, 1))  # no ACK: attempt 2, the last
    assert device.downlink(middle.last_downlink()).fcnt == 1
    device.ack_pending = False  # missed too
    middle.close()
    after = net(cmd_max_attempts=2)  # restarted again: the attempts are remembered
    after.hear(level(device, 2))
    assert after.reports == [("river-lora-02", "set_interval", 7, False, 2)]
    second = device.downlink(after.last_downlink())
    assert (device.command(second), second.fcnt) == (("set_interval", {"interval_s": 600}), 2)
    acked = level(device, 3)  # carries the ACK of the second command
    after.hear(acked)
    after.close()
    last = net(cmd_max_attempts=2)
    last.hear(acked)  # replayed after a restart: not a second delivery
    assert last.reports == [] and last.rejected == {"frame.fcnt_retransmission": 1}
    assert after.reports[-1] == ("river-lora-02", "set_interval", 8, True, 1)
    assert last.store.queued(f"{device.dev_eui:016x}") == []


def test_adr_ack_req_gets_an_empty_downlink(net, keys):
    n = net()
    device = abp_device(keys)
    n.hear(device.uplink(1, bytes(9), adr_ack_req=True))
    (downlink,) = n.radio.sent
    assert device.downlink(downlink.first.data).fport is None


def test_restart_keeps_sessions_and_counters(net, keys):
    before = net()
    otaa, abp = otaa_device(keys), abp_device(keys)
    before.hear(otaa.join_request())
    otaa.accept_join(before.radio.sent[0].first.data)
    captured = [level(otaa, 0), level(abp, 0)]
    for phy in captured:
        before.hear(phy)
    before.hear(level(abp, 1, confirmed=True))
    before.close()
    after = net()  # same state file: the gateway restarted
    for phy in captured:
        after.hear(phy)  # replayed after the restart
    after.hear(level(otaa, 1))
    after.hear(level(abp, 2, confirmed=True))
    assert after.rejected == {"frame.fcnt_retransmission": 1, "frame.fcnt_replay": 1}
    assert [u.radio["fcnt"] for u in after.forwarded] == [1, 2]
    assert abp.downlink(after.radio.sent[0].first.data).fcnt == 1  # FCntDown continued


def test_abp_keys_changed_in_the_registry_start_a_new_session(net, keys, tmp_path):
    first = net()
    device = abp_device(keys)
    first.hear(level(device, 0))
    first.close()
    registry = yaml.safe_load((tmp_path / "devices.yaml").read_text())
    registry["devices"][1]["abp"]["dev_addr"] = f"{ABP_ADDR + 1:08X}"
    (tmp_path / "devices.yaml").write_text(yaml.safe_dump(registry))
    second = net()
    device.dev_addr, device.fcnt_up = ABP_ADDR + 1, 0
    second.hear(level(device, 1))
    assert len(second.forwarded) == 1 and second.rejected == {}


@pytest.mark.parametrize(
    ("net_id", "inside", "outside"),
    [
        (0x000000, 0x01FFFFFF, 0x02000000),
        (0x000013, 0x26012345, 0x28000000),  # The Things Network's 26/27 prefix
        (0x600001, 0xE002_1234, 0xE004_0000),  # type 3: 1110, an 11-bit NwkID, 17 free bits
    ],
)
def test_dev_addr_space_follows_the_net_id(net_id, inside, outside):
    space = DevAddrSpace.for_net_id(net_id)
    assert inside in space and outside not in space


def test_garbage_frames_are_rejected_by_reason(net):
    n = net()
    for phy in (b"", b"\x40\x01", b"\xe0" + bytes(20), b"\x40" + bytes(11)):
        n.hear(phy)
    assert sum(n.rejected.values()) == 4
    assert set(n.rejected) <= {f"frame.{r}" for r in ("too_short", "bad_mtype", "unknown_dev_addr")}


def test_a_state_file_from_before_confirmed_commands_keeps_its_queue(tmp_path, net, keys):
    old = sqlite3.connect(tmp_path / "state.db")
    old.execute(
        "CREATE TABLE downlink (id INTEGER PRIMARY KEY AUTOINCREMENT, dev_eui TEXT NOT NULL, "
        "fport INTEGER NOT NULL, payload BLOB NOT NULL)"
    )
    device = abp_device(keys)
    old.execute(
        "INSERT INTO downlink(dev_eui, fport, payload) VALUES (?, 10, ?)",
        (f"{device.dev_eui:016x}", (300).to_bytes(4, "big")),
    )
    old.commit()
    old.close()
    n = net()  # the upgraded gateway opens it
    n.hear(level(device, 0))
    sent = device.downlink(n.last_downlink())
    assert (device.command(sent), sent.confirmed) == (("set_interval", {"interval_s": 300}), True)
    n.hear(level(device, 1))
    assert n.reports == [("river-lora-02", "", None, True, 1)]


@pytest.mark.parametrize("failing", ["state", "outbox"])
def test_a_frame_whose_batch_failed_to_commit_is_forwarded_when_the_device_sends_it_again(
    net, keys, tmp_path, failing
):
    """A batch rolled back (the state file or the outbox could not commit) must leave nothing
    ahead of the disk: the device, which heard no ACK, sends the frame again and must find it
    new (forwarded, then acknowledged), not a retransmission acknowledged without its reading."""
    n = net()
    outbox = Outbox(tmp_path / "outbox.db", "gw-test", sync="normal")
    n.server.forward = Forwarder(outbox, n.store, n.stats, Clock()).forward
    target = n.store if failing == "state" else outbox
    name = "save_counters" if failing == "state" else "batch"
    real = getattr(target, name)
    broken = [True]

    @contextmanager
    def batch_failing_once():
        with real():
            yield
            if broken and broken.pop():
                raise sqlite3.OperationalError("disk I/O error")

    def save_failing_once(sessions):
        real(sessions)
        if broken and broken.pop():
            raise sqlite3.OperationalError("disk I/O error")

    setattr(target, name, save_failing_once if failing == "state" else batch_failing_once)
    n.server.output_batch = outbox.batch
    device = abp_device(keys)
    phy = level(device, 7, confirmed=True)
    n.hear(phy)
    assert n.radio.sent == [] and outbox.depth == 0, "nothing acknowledged, nothing kept"
    assert n.rejected == {"internal.store": 1}
    n.hear(phy)  # no ACK heard: the same frame again
    assert outbox.depth == 1 and [e.seq for e in stored(outbox)] == [7]
    assert device.downlink(n.radio.sent[0].first.data).ack
    n.hear(level(device, 7, confirmed=True))  # the agent sends the reading again, a new frame
    assert outbox.depth == 1 and n.rejected["forward.repeated_seq"] == 1


def stored(outbox):
    return [Envelope.from_json(m.payload) for m in outbox.pending()]
