"""The RAK3172 (RUI3) modem driver: first against the exact lines of RAKwireless' manual, then
against the modem simulator transmitting through the real gateway."""

from __future__ import annotations

import threading
import time

import pytest
from river_rig import Scripted, app_key_file, envelopes, level_payload

from edge.drivers.lorawan import Downlink, ModemConfig, ModemError, open_modem
from edge.drivers.lorawan.at import AtChannel
from edge.drivers.lorawan.rak3172 import event_name, is_status
from edge.drivers.serialport import SerialPort
from edge.protocol import Envelope
from sim.devices.rak3172 import Rak3172Sim
from sim.serial_pty import PtyDevice


def driver(path, **config):
    return open_modem(ModemConfig(port=path, **{"command_timeout_s": 1.0, **config}))


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("+EVT:JOINED", "JOINED"),
        ("+EVT:JOIN_FAILED_RX_TIMEOUT", "JOIN_FAILED_RX_TIMEOUT"),
        ("+EVT:JOIN FAILED", "JOIN_FAILED"),
        ("+EVT:TX_DONE", "TX_DONE"),
        ("+EVT:SEND_CONFIRMED_OK", "SEND_CONFIRMED_OK"),
        ("+EVT:SEND_CONFIRMED_FAILED(4)", "SEND_CONFIRMED_FAILED"),
        ("+EVT:SEND CONFIRMED OK", "SEND_CONFIRMED_OK"),
        ("+EVT: SEND CONFIRMED FAILED", "SEND_CONFIRMED_FAILED"),
        ("+EVT:RX_1:-70:8:UNICAST:10:ABCD", "RX_1"),
        ("+EVT:RX_1, RSSI -110, SNR 5", "RX_1"),
        ("+EVT:LINKCHECK:0,21,1,-60,11", "LINKCHECK"),
        ("AT+NJS=1", ""),
    ],
)
def test_event_names_in_both_spellings(line, name):
    assert event_name(line) == name


@pytest.mark.parametrize(
    ("answers", "joined"),
    [
        ({"AT+JOIN=1:0:8:1": "\r\nOK\r\n+EVT:JOINED\r\n"}, True),
        ({"AT+JOIN=1:0:8:1": "\r\nOK\r\n+EVT:JOIN_FAILED_RX_TIMEOUT\r\n"}, False),
        ({"AT+JOIN=1:0:8:1": "\r\nOK\r\n+EVT:JOIN FAILED\r\n"}, False),  # before RUI3 3.2
    ],
)
def test_join_outcome_as_the_manual_prints_it(answers, joined):
    with Scripted(answers) as dev:
        assert driver(dev.path).join() is joined


def test_configure_sets_as923_1_otaa_and_the_keys_once(tmp_path):
    key = tmp_path / "appkey"
    key.write_text("2b7e151628aed2a6abf7158809cf4f3c\n")
    with Scripted({"AT+NWM=?": "AT+NWM=1\r\nOK\r\n"}) as dev:
        driver(dev.path, dev_eui="70B3D57ED0000007", app_key_file=key).configure()
    assert dev.sent == [
        "AT",
        "AT+NWM=?",
        "AT+BAND=8",  # AS923-1 in the RUI3 manual's AT+BAND table
        "AT+NJM=1",
        "AT+CLASS=A",
        "AT+DEVEUI=70B3D57ED0000007",
        "AT+APPKEY=2B7E151628AED2A6ABF7158809CF4F3C",
        "AT+ADR=0",
        "AT+DR=2",
        "AT+CFM=0",
    ]


def test_a_modem_in_p2p_mode_is_switched_to_lorawan_and_waited_for():
    with Scripted(
        {"AT+NWM=?": "0\r\nOK\r\n", "AT+NWM=1": "Current Work Mode: LoRaWAN.\r\n"}
    ) as dev:
        driver(dev.path).configure()
    assert dev.sent[:4] == ["AT", "AT+NWM=?", "AT+NWM=1", "AT"]


def test_a_refused_setting_names_the_command_but_never_the_key(tmp_path):
    key = tmp_path / "appkey"
    key.write_text("2B7E151628AED2A6ABF7158809CF4F3C")
    answers = {
        "AT+NWM=?": "1\r\nOK\r\n",
        "AT+APPKEY=2B7E151628AED2A6ABF7158809CF4F3C": "\r\nAT_PARAM_ERROR\r\n",
    }
    with Scripted(answers) as dev, pytest.raises(ModemError) as err:
        driver(dev.path, app_key_file=key).configure()
    assert err.value.reason == "rejected"
    assert "AT+APPKEY" in str(err.value) and "2B7E" not in str(err.value)


@pytest.mark.parametrize(
    ("events", "downlink"),
    [
        ("+EVT:TX_DONE\r\n", None),
        ("+EVT:TX_DONE\r\n+EVT:RX_1:-70:x:UNICAST:10:XYZ\r\n", None),  # garbled: ignored
        (
            "+EVT:TX_DONE\r\n+EVT:RX_1:-70:8:UNICAST:10:0000012C\r\n",
            Downlink(10, bytes.fromhex("0000012C"), -70, 8.0),
        ),
        (
            "+EVT:RX_1, RSSI -70, SNR 8\r\n+EVT:UNICAST\r\n+EVT:10:0000012C\r\n+EVT:TX_DONE\r\n",
            Downlink(10, bytes.fromhex("0000012C"), -70, 8.0),
        ),
    ],
)
def test_unconfirmed_send_and_downlinks_in_both_spellings(events, downlink):
    port, payload = level_payload(7)
    with Scripted({f"AT+SEND={port}:{payload.hex().upper()}": "\r\nOK\r\n" + events}) as dev:
        modem = driver(dev.path)
        modem.send(port, payload, confirmed=False)
    assert modem.downlinks == ([downlink] if downlink else [])


@pytest.mark.parametrize(
    ("event", "acknowledged"),
    [
        ("+EVT:SEND_CONFIRMED_OK", True),
        ("+EVT:SEND_CONFIRMED_FAILED(4)", False),
        ("+EVT:SEND CONFIRMED OK", True),
        ("+EVT:SEND CONFIRMED FAILED", False),
    ],
)
def test_confirmed_send_waits_for_the_acknowledgement(event, acknowledged):
    port, payload = level_payload(8)
    command = f"AT+SEND={port}:{payload.hex().upper()}"
    # TX_DONE first, as some firmware prints it for confirmed uplinks too: it is not the answer.
    with Scripted({command: f"\r\nOK\r\n+EVT:TX_DONE\r\n{event}\r\n"}) as dev:
        modem = driver(dev.path)
        if acknowledged:
            modem.send(port, payload, confirmed=True)
        else:
            with pytest.raises(ModemError, match="no_ack"):
                modem.send(port, payload, confirmed=True)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("AT_BUSY_ERROR", "busy"),
        ("AT_NO_NETWORK_JOINED", "not_joined"),
        ("AT_PARAM_ERROR", "rejected"),
    ],
)
def test_send_refusals_have_reasons(status, reason):
    port, payload = level_payload(9)
    answers = {f"AT+SEND={port}:{payload.hex().upper()}": f"\r\n{status}\r\n"}
    with Scripted(answers) as dev, pytest.raises(ModemError) as err:
        driver(dev.path).send(port, payload, confirmed=False)
    assert err.value.reason == reason


def test_a_silent_modem_times_out():
    with PtyDevice("ttyRAK", on_line=lambda _line: None) as dev, pytest.raises(ModemError) as err:
        driver(dev.path, command_timeout_s=0.3).configure()
    assert err.value.reason == "timeout"


class SlowOnce(PtyDevice):
    """Answers every query with its own value, the first one after the driver gave up on it."""

    def __init__(self, late_s: float):
        self.late_s, self.first = late_s, True
        super().__init__("ttyRAK")

    def on_line(self, line):
        name = line.decode().removeprefix("AT+").removesuffix("=?")
        if self.first:
            self.first = False
            time.sleep(self.late_s)  # busy: the answer comes after the driver's timeout
        return f"\r\nAT+{name}={name.lower()}\r\nOK\r\n".encode()


def test_a_late_answer_is_not_taken_for_the_next_commands():
    """A busy modem answered one command after the driver's timeout. Every later command must
    read its own answer, not the one before it (the channel stayed one answer behind for ever:
    'AT+NWM=? gave no value' every 5 s in the full city run)."""
    with SlowOnce(late_s=0.5) as dev:
        at = AtChannel(SerialPort(dev.path, 115200), lambda line: line.startswith("+EVT"))
        with pytest.raises(ModemError, match="timeout"):
            at.exchange("AT+NWM=?", is_status, 0.3)
        time.sleep(0.5)  # the late answer arrives
        for name in ("BAND", "NJM", "CLASS"):
            answer = at.exchange(f"AT+{name}=?", is_status, 1.0)
            assert answer == [f"AT+{name}={name.lower()}", "OK"]


# -- against the simulator, through the real gateway ----------------------------------------


@pytest.fixture
def rak(lora_network, tmp_path):
    """A joined RAK3172 driver on a simulated modem, and its network."""
    network = lora_network(["river-rak"])
    keys = network.keys["river-rak"]
    sims = []

    def make(legacy_events=False, app_key=None):
        sim = Rak3172Sim(network.radio("river-rak"), legacy_events=legacy_events)
        sims.append(sim)
        modem = open_modem(
            ModemConfig(
                port=sim.path,
                dev_eui=f"{keys.dev_eui:016X}",
                join_eui="0000000000000000",
                app_key_file=app_key or app_key_file(tmp_path, keys),
                command_timeout_s=1.0,
                send_timeout_s=3.0,
                join_timeout_s=3.0,
            )
        )
        modem.configure()
        return sim, modem

    yield network, make
    for sim in sims:
        sim.close()
        assert sim.errors == []


@pytest.mark.parametrize("legacy_events", [False, True])
def test_join_send_and_a_city_command_through_the_gateway(rak, watch, legacy_events):
    network, make = rak
    watcher = watch(network.broker)
    sim, modem = make(legacy_events=legacy_events)
    assert modem.join()
    port, payload = level_payload(41, level_m=2.345)
    modem.send(port, payload, confirmed=True)
    network.command("river-rak", "set_interval", {"interval_s": 300})
    modem.send(*level_payload(42), confirmed=False)
    assert modem.downlinks == [Downlink(10, (300).to_bytes(4, "big"), -95, 6.0)]
    device = network.ids["river-rak"]
    seen = watcher.collect(lambda m: len(envelopes(m, device, "telemetry")) >= 2)
    readings = envelopes(seen, device, "telemetry")
    assert [(e.seq, e.data["level_m"]) for e in readings] == [(41, 2.345), (42, 1.25)]
    assert sim.radio.uplinks == 3  # the join and two uplinks, each really on the air


def test_a_missed_command_is_sent_again_and_the_city_learns_it_arrived(rak, watch):
    network, make = rak
    watcher = watch(network.broker, "machimori/v1/gateway/+/event")
    sim, modem = make()
    assert modem.join()
    network.command("river-rak", "set_interval", {"interval_s": 300})
    sim.radio.miss_downlinks(1)
    modem.send(*level_payload(1), confirmed=False)
    assert modem.downlinks == []  # the downlink was lost in the air
    modem.send(*level_payload(2), confirmed=False)  # without ACK: the gateway sends it again
    assert modem.downlinks == [Downlink(10, (300).to_bytes(4, "big"), -95, 6.0)]
    modem.send(*level_payload(3), confirmed=False)  # the modem acknowledges in this uplink
    seen = watcher.collect(lambda m: m)
    events = [Envelope.from_json(m.payload) for m in seen]
    assert [(e.type, e.data) for e in events] == [
        (
            "cmd_delivered",
            {
                "device": network.ids["river-rak"],
                "command": "set_interval",
                "command_seq": 1,
                "fport": 10,
                "attempts": 2,
            },
        )
    ]


def test_a_wrong_app_key_never_joins(rak, tmp_path):
    network, make = rak
    wrong = tmp_path / "wrong.appkey"
    wrong.write_text("00" * 16)
    _sim, modem = make(app_key=wrong)
    assert not modem.join()
    with pytest.raises(ModemError, match="not_joined"):
        modem.send(*level_payload(1), confirmed=False)


def test_busy_and_a_payload_too_long_for_dr2(rak):
    _network, make = rak
    sim, modem = make()
    assert modem.join()
    sim.busy_next(1)
    with pytest.raises(ModemError, match="busy"):
        modem.send(*level_payload(1), confirmed=False)
    with pytest.raises(ModemError, match="rejected"):  # 12 bytes > 11 at DR2 under the dwell limit
        modem.send(1, bytes(12), confirmed=False)
    modem.send(*level_payload(2), confirmed=True)


def test_with_the_gateway_down_only_confirmed_uplinks_notice(rak):
    network, make = rak
    _sim, modem = make()
    assert modem.join()
    network.stop()
    modem.send(*level_payload(1), confirmed=False)  # TX_DONE: the modem cannot know
    with pytest.raises(ModemError, match="no_ack"):
        modem.send(*level_payload(2), confirmed=True)


def test_a_hung_modem_times_out_and_a_reset_revives_it(rak):
    network, make = rak
    sim, modem = make()
    assert modem.join()
    sim.hang()
    with pytest.raises(ModemError, match="timeout"):
        modem.send(*level_payload(1), confirmed=True)
    sim.hang(False)
    modem.reset()  # ATZ: the session is gone, as after a real reset
    with pytest.raises(ModemError, match="not_joined"):
        modem.send(*level_payload(2), confirmed=True)
    modem.configure()
    assert modem.join()
    modem.send(*level_payload(3), confirmed=True)
    assert "ATZ" in sim.received


def test_a_late_answer_to_an_earlier_frame_does_not_acknowledge_the_next(lora_network):
    """A gateway slower than the receive windows answers frame 1 while frame 2 listens, then
    dies before frame 2 reaches it. A real radio hears only downlinks timed for its own frame's
    RX1/RX2, so frame 2 is not acknowledged and its reading stays on the device (a simulator
    that took the late answer lost that reading in the city's chaos run)."""
    network = lora_network(["river-late"])
    radio = network.radio("river-late", rx_window_s=1.0)
    assert radio.join()
    heard = radio.forwarder._callbacks[-1]
    radio.forwarder._callbacks[-1] = lambda received: threading.Timer(
        1.5, heard, args=(received,)
    ).start()  # every downlink reaches the radio 1.5 s late: after its frame's window closed
    acked, _ = radio.send(*level_payload(1), confirmed=True)
    assert not acked, "frame 1's answer came after its window"
    network.stop()  # the gateway dies: frame 2 reaches nobody
    acked, _ = radio.send(*level_payload(2), confirmed=True)
    assert not acked, "frame 1's late answer taken for frame 2's acknowledgement"
