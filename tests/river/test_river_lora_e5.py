"""The Seeed LoRa-E5 driver behind the same interface: against the lines of Seeed's AT
specification, then against the simulator through the real gateway."""

from __future__ import annotations

import pytest
from river_rig import Scripted, app_key_file, envelopes, level_payload

from edge.drivers.lorawan import Downlink, ModemConfig, ModemError, open_modem
from sim.devices.lora_e5 import LoraE5Sim

SEND = "\r\n".join(
    [
        "+CMSGHEX: Start",
        "+CMSGHEX: Wait ACK",
        "+CMSGHEX: ACK Received",
        '+CMSGHEX: PORT: 10; RX: "0000012C"',
        "+CMSGHEX: RXWIN1, RSSI -82, SNR 10.0",
        "+CMSGHEX: Done",
        "",
    ]
)


def e5(path, **config):
    return open_modem(ModemConfig(model="lora_e5", port=path, command_timeout_s=1.0, **config))


def test_configure_as_seeed_documents_it(tmp_path):
    key = tmp_path / "appkey"
    key.write_text("2B7E151628AED2A6ABF7158809CF4F3C")
    answers = {
        "AT": "+AT: OK\r\n",
        "AT+MODE=LWOTAA": "+MODE: LWOTAA\r\n",
        "AT+DR=AS923": "+DR: AS923\r\n",
        "AT+CLASS=A": "+CLASS: A\r\n",
        'AT+ID=DevEui,"2CF7F12024900138"': "+ID: DevEui, 2C:F7:F1:20:24:90:01:38\r\n",
        'AT+KEY=APPKEY,"2B7E151628AED2A6ABF7158809CF4F3C"': "+KEY: APPKEY 2B7E1516...\r\n",
        "AT+ADR=OFF": "+ADR: OFF\r\n",
        "AT+DR=2": "+DR: DR2\r\n",
    }
    with Scripted(answers) as dev:
        e5(dev.path, dev_eui="2CF7F12024900138", app_key_file=key).configure()
    assert dev.sent == list(answers)


@pytest.mark.parametrize(
    ("answer", "joined"),
    [
        (
            "+JOIN: Start\r\n+JOIN: NORMAL\r\n+JOIN: Network joined\r\n"
            "+JOIN: NetID 000024 DevAddr 48:00:00:01\r\n+JOIN: Done\r\n",
            True,
        ),
        (
            "+JOIN: Starting\r\n+JOIN: NORMAL\r\n+JOIN: NetID 000024 DevAddr 48:00:00:01\r\n"
            "+JOIN: Done\r\n",
            True,
        ),
        ("+JOIN: Start\r\n+JOIN: NORMAL\r\n+JOIN: Join failed\r\n+JOIN: Done\r\n", False),
    ],
)
def test_join_outcomes(answer, joined):
    with Scripted({"AT+JOIN": answer}) as dev:
        assert e5(dev.path).join() is joined


def test_confirmed_send_with_a_downlink():
    with Scripted({"AT+PORT=1": "+PORT: 1\r\n", 'AT+CMSGHEX="0102"': SEND}) as dev:
        modem = e5(dev.path)
        modem.send(1, b"\x01\x02", confirmed=True)
    assert modem.downlinks == [Downlink(10, bytes.fromhex("0000012C"), -82, 10.0)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("+CMSGHEX: Start\r\n+CMSGHEX: Wait ACK\r\n+CMSGHEX: Done\r\n", "no_ack"),
        ("+CMSGHEX: Please join network first\r\n", "not_joined"),
        ("+CMSGHEX: LoRaWAN modem is busy\r\n", "busy"),
        ("+CMSGHEX: No band in 13459ms\r\n", "busy"),
        ("+CMSGHEX: Length error 12\r\n", "rejected"),
    ],
)
def test_send_failures_have_reasons(answer, reason):
    answers = {"AT+PORT=1": "+PORT: 1\r\n", 'AT+CMSGHEX="0102"': answer}
    with Scripted(answers) as dev, pytest.raises(ModemError) as err:
        e5(dev.path).send(1, b"\x01\x02", confirmed=True)
    assert err.value.reason == reason


def test_e5_simulator_through_the_gateway(lora_network, tmp_path, watch):
    network = lora_network(["river-e5"])
    keys = network.keys["river-e5"]
    watcher = watch(network.broker)
    with LoraE5Sim(network.radio("river-e5")) as sim:
        modem = open_modem(
            ModemConfig(
                model="lora_e5",
                port=sim.path,
                dev_eui=f"{keys.dev_eui:016X}",
                join_eui="0000000000000000",
                app_key_file=app_key_file(tmp_path, keys),
                command_timeout_s=1.0,
            )
        )
        modem.configure()
        with pytest.raises(ModemError, match="not_joined"):
            modem.send(*level_payload(1), confirmed=True)
        assert modem.join()
        network.command("river-e5", "set_interval", {"interval_s": 120})
        modem.send(*level_payload(5, level_m=0.75), confirmed=True)
        assert modem.downlinks == [Downlink(10, (120).to_bytes(4, "big"), -95, 6.5)]
        assert sim.errors == []
    device = network.ids["river-e5"]
    seen = watcher.collect(lambda m: envelopes(m, device, "telemetry"))
    assert [(e.seq, e.data["level_m"]) for e in envelopes(seen, device, "telemetry")] == [(5, 0.75)]
