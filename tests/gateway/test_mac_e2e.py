"""The MAC layer and the Semtech UDP boundary over real UDP, through the running gateway.

- a PUSH_DATA with one bad ``rxpk`` beside a good one: PUSH_ACK at once, the good one forwarded,
  the bad one counted (PROTOCOL.TXT §3, §4);
- an uplink on 868.3 MHz, outside the AS923-1 plan: refused, counted, never answered;
- a gauge behind a RAK3172 or LoRa-E5 (driver, AT simulator, simulated radio) joins, takes the
  city's channels from the CFList (and the eighth by NewChannelReq), spreads its uplinks over
  them, and ADR moves it from DR2 to DR5 when it is heard well and leaves it when it is not.
"""

from __future__ import annotations

import base64
import json
import queue
import socket

import pytest
from gateway_rig import GW_EUI, OTAA_EUI, TS, abp_device, envelopes, level

from edge.drivers.lorawan import ModemConfig, open_modem
from gateway.lorawan import region
from sim.devices.lora_e5 import LoraE5Sim
from sim.devices.lorawan_modem import Keys, ModemRadio
from sim.devices.rak3172 import Rak3172Sim

EXTRA_MHZ = [922.0, 922.2, 922.4, 922.6, 922.8, 923.0]
PLAN = region.ChannelPlan.with_extra(EXTRA_MHZ)
READINGS = 16


def test_one_bad_rxpk_costs_neither_the_ack_nor_its_neighbour(
    broker, make_config, gateway, keys, watch
):
    watcher = watch(broker)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with gateway(make_config(broker)) as gw, udp as s:
        s.settimeout(2)
        s.connect(gw.address)
        good = level(abp_device(keys), 3)
        body = {
            "rxpk": [
                {"tmst": 1, "freq": 923.2, "stat": 1, "modu": "LORA", "datr": "SF10BW125",
                 "rssi": -90, "size": 9, "data": "Q"},  # not base64: one bad packet
                {"tmst": 2, "freq": 923.4, "stat": 1, "modu": "LORA", "datr": "SF10BW125",
                 "rssi": -91, "lsnr": 5.5, "size": len(good),
                 "data": base64.b64encode(good).decode()},
            ]
        }  # fmt: skip
        s.send(b"\x02\x7a\x01\x00" + GW_EUI.to_bytes(8, "big") + json.dumps(body).encode())
        assert s.recv(64) == b"\x02\x7a\x01\x01"  # PUSH_ACK with the datagram's token
        s.send(b"\x02\x7a\x02\x00" + GW_EUI.to_bytes(8, "big") + b'{"rxpk":[')  # cut JSON
        assert s.recv(64) == b"\x02\x7a\x02\x01"  # acknowledged too: the forwarder sent it
        seen = watcher.collect(lambda m: len(envelopes(m)) >= 1)
        assert [e.seq for e in envelopes(seen)] == [3]
        gw.wait_for(lambda: gw.stats.rejected.get("udp.bad_json") == 1)
        snapshot = gw.stats.snapshot()
        assert snapshot["rejected"] == {"rxpk.bad_data": 1, "udp.bad_json": 1}
        assert snapshot["packet_forwarders"][f"{GW_EUI:016x}"]["rxpk"] == 2


def test_an_uplink_outside_the_plan_is_refused_and_never_answered(
    broker, make_config, gateway, forwarders, keys
):
    with gateway(make_config(broker)) as gw:
        pf = forwarders(gw.address, GW_EUI)
        device = abp_device(keys)
        pf.uplink(level(device, 1, confirmed=True), freq_hz=868_300_000)  # EU868's channel
        gw.wait_for(lambda: gw.stats.rejected.get("rxpk.off_plan") == 1)
        with pytest.raises(queue.Empty):
            pf.wait_downlink(timeout_s=1.5)  # no ACK: nothing is ever sent on 868.3 MHz
        pf.uplink(level(device, 2, confirmed=True), freq_hz=923_400_000)
        answer = pf.wait_downlink()
        assert answer.txpk.freq == 923.4 and device.downlink(answer.txpk.data).ack
        assert gw.stats.value("uplinks") == 1


MODEMS = {
    "rak3172": (Rak3172Sim, "rak3172"),
    "lora_e5": (LoraE5Sim, "lora_e5"),
}


@pytest.mark.parametrize(
    ("model", "snr", "dr", "seed"),
    [  # each modem both ways; each outcome with two seeds (channel choice, distances)
        ("rak3172", 8.0, 5, 1),  # a gauge near the gateway
        ("lora_e5", 9.0, 5, 2),
        ("lora_e5", -11.0, 2, 1),  # one far up the valley
        ("rak3172", -12.0, 2, 2),
    ],
)
def test_a_gauge_joins_uses_the_city_channels_and_adr_sets_its_rate(
    broker, make_config, gateway, forwarders, keys, watch, tmp_path, model, snr, dr, seed
):
    watcher = watch(broker)
    lorawan = {"dedup_window_s": 0.02, "channels_mhz": EXTRA_MHZ, "dev_status_every": 8}
    config = make_config(broker, lorawan=lorawan)
    with gateway(config) as gw:
        pf = forwarders(gw.address, GW_EUI)
        radio = ModemRadio(Keys(OTAA_EUI, keys.app_key), pf, lsnr=snr, rx_window_s=0.4, seed=seed)
        key_file = tmp_path / "appkey"
        key_file.write_text(keys.app_key.hex())
        sim_class, driver_model = MODEMS[model]
        sim = sim_class(radio)
        try:
            modem = open_modem(
                ModemConfig(
                    model=driver_model,
                    port=sim.path,
                    dev_eui=f"{OTAA_EUI:016X}",
                    join_eui="0000000000000000",
                    app_key_file=key_file,
                    adr=True,
                    command_timeout_s=1.0,
                    send_timeout_s=3.0,
                    join_timeout_s=3.0,
                )
            )
            modem.configure()
            assert modem.join()
            assert radio.device.last_accept.cf_list == PLAN.cf_list()
            for seq in range(READINGS):
                modem.send(*_reading(radio, seq), confirmed=False)
            assert modem.data_rate() == dr  # what the driver reads back from the modem
            modem.close()
        finally:
            sim.close()
        assert sim.errors == []
        seen = watcher.collect(lambda m: len(envelopes(m)) >= READINGS)
        radios = [e.data["radio"] for e in envelopes(seen)]
        used = {r["frequency_hz"] for r in radios}
        assert used <= set(PLAN.frequencies_hz) and len(used) >= 5
        assert used - set(region.DEFAULT_CHANNELS_HZ)  # the CFList's channels carry traffic
        assert radios[-1]["dr"] == dr and radios[0]["dr"] == 2
        device = gw.stats.snapshot()["devices"]["river-lora-01"]
        assert device["channels"] == 8 and device["battery"] == 254, gw.stats.snapshot()
        if dr == 5:
            assert device["tx_power_dbm"] < region.MAX_EIRP_DBM  # and its power came down
        assert gw.stats.rejected == {}


def _reading(radio, seq):
    data = {"level_m": 1.0 + seq / 100, "valid": 9}
    return radio.device.codec.encode("telemetry", "level", seq, TS, data)
