"""Hostile input against the running UDP server: random and mutated datagrams and PHYPayloads.

Each example throws a burst of garbage at the gateway, then a real reading from a joined device.
No exception may escape (nothing counted as ``internal``, nothing logged as an error), every
input must be accounted for by the counters, stage by stage, and every real reading must come
through: the garbage is rejected, the traffic it is mixed with is not.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket

import pytest
from gateway_rig import GW_EUI, Keys, Running, envelopes, join, level, otaa_device, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.lorawan.semtech_udp import PullData, PushData, Rxpk, TxAck
from sim.devices.packet_forwarder import PacketForwarderSim

RXPK_KEYS = ("tmst", "freq", "datr", "rssi", "lsnr", "stat", "modu", "codr", "size", "data", "chan")
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


class Rig:
    """One gateway and one joined device for the whole fuzz run."""

    def __init__(self, directory, broker):
        self.keys = Keys(*(secrets.token_bytes(16) for _ in range(3)))
        self.gateway = Running(write_config(directory, broker, self.keys))
        self.forwarder = PacketForwarderSim(GW_EUI, self.gateway.address).start()
        self.device = otaa_device(self.keys)
        self.join_request = self.device.join_request()
        self.device.dev_nonce -= 1
        join(self.device, self.forwarder)
        self.seq = 0
        self.sent_frames = [self.join_request, self.reading()]  # replays for the mutations
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.raw.connect(self.gateway.address)

    def reading(self):
        phy = level(self.device, self.seq)
        self.forwarder.uplink(phy)
        self.seq += 1
        return phy

    def close(self):
        self.raw.close()
        self.forwarder.close()
        self.gateway.close()


@pytest.fixture(scope="module")
def rig(broker, tmp_path_factory):
    made = Rig(tmp_path_factory.mktemp("fuzz"), broker)
    yield made
    made.close()


@st.composite
def mutated(draw, original):
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        else:
            del data[at:]
    return bytes(data)


def push(rxpk_json, eui=GW_EUI):
    return b"\x02\x00\x01\x00" + eui.to_bytes(8, "big") + json.dumps({"rxpk": rxpk_json}).encode()


def rxpk_with(phy):
    return Rxpk(tmst=123, freq=923.2, datr="SF10BW125", rssi=-90, lsnr=3.0, data=phy)


def phy_payloads(rig):
    """PHYPayloads that reach the LoRaWAN layer: random, mutated real frames, and frames that
    carry the joined device's DevAddr so the MIC check has to catch them."""
    dev_addr = rig.device.dev_addr.to_bytes(4, "little")
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from(rig.sent_frames).flatmap(mutated),
        st.sampled_from(rig.sent_frames),  # a plain replay
        st.builds(
            lambda mhdr, rest: mhdr + dev_addr + rest,
            st.sampled_from([b"\x40", b"\x80"]),
            st.binary(min_size=7, max_size=40),
        ),
    )


def datagrams(rig):
    valid = [
        PushData(9, GW_EUI, (rxpk_with(rig.sent_frames[1]),)).to_bytes(),
        PullData(10, GW_EUI).to_bytes(),
        TxAck(11, GW_EUI, "TOO_LATE").to_bytes(),
    ]
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from(valid).flatmap(mutated),
        st.lists(st.dictionaries(st.sampled_from(RXPK_KEYS), json_value), max_size=3).map(push),
        st.lists(phy_payloads(rig).map(rxpk_with), min_size=1, max_size=3).map(
            lambda rxpk: PushData(12, GW_EUI, tuple(rxpk)).to_bytes()
        ),
    )


def accounted(snapshot):
    """Each stage's inputs equal its outputs plus its counted rejections."""
    accepted, rejected = snapshot["accepted"], snapshot["rejected"]

    def a(name):
        return accepted.get(name, 0)

    def r(stage):
        return sum(n for reason, n in rejected.items() if reason.startswith(stage + "."))

    udp_ok = a("udp.pushdata") + a("udp.pulldata") + a("udp.txack")
    rxpk_in = sum(f["rxpk"] for f in snapshot["packet_forwarders"].values())
    return (
        a("udp.datagrams") == udp_ok + r("udp"),
        rxpk_in == a("rxpk.accepted") + r("rxpk"),
        a("rxpk.accepted") == a("frames") + a("rxpk.copies"),
        a("frames") == a("joins") + a("uplinks") + r("frame"),
    )


def test_garbage_is_counted_and_real_traffic_still_gets_through(rig, broker, watch, caplog):
    caplog.set_level(logging.WARNING)
    watcher = watch(broker, "machimori/v1/river/#")
    gw = rig.gateway
    first_watched = rig.seq
    sent = {"valid": 0}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(garbage=st.lists(datagrams(rig), min_size=1, max_size=8))
    def throw(garbage):
        for datagram in garbage:
            rig.raw.send(datagram)
        rig.reading()
        sent["valid"] += 1
        gw.wait_for(lambda: gw.stats.value("uplinks") == 1 + sent["valid"], timeout_s=10)

    throw()
    gw.wait_for(lambda: all(accounted(gw.stats.snapshot())))
    snapshot = gw.stats.snapshot()
    assert not [k for k in snapshot["rejected"] if k.startswith("internal")], snapshot
    assert len(snapshot["rejected"]) >= 8, "the garbage should hit many distinct reasons"
    expected = set(range(first_watched, rig.seq))
    seen = watcher.collect(lambda s: expected <= {e.seq for e in envelopes(s)})
    assert expected <= {e.seq for e in envelopes(seen)}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
