"""River gauge over LoRaWAN: airtime per day against Japan's hourly limit, and the agent's cost.

1. Airtime. The agent's own reporting policy is driven through a dry day and a flood day at the
   example site river-02 (flashy: every 2 minutes above the observation level), and a worst day
   spent entirely in flood mode; each uplink costs the time on air of a 9-byte river-v1 payload
   (22-byte PHY frame) at DR2 and DR5. The busiest sliding hour is set against ARIB STD-T108's
   360 s. ``confirmed: all`` adds no device airtime but one acknowledgement per uplink from the
   gateway, whose own busiest hour is shown for a network of ``--gauges`` such sites.
2. The real chain, measured: ``machimori agent run`` (link: lorawan) as its own process reading a
   simulated sensor through a flood on an accelerated clock, its RAK3172 simulator transmitting
   through the gateway (in this process) to Mosquitto. Reported: the agent's RSS and CPU time per
   reading, and the airtime the gateway saw (``data.radio.airtime_s``) against the policy's.

    python bench/river.py [--seconds 20] [--speed 300] [--gauges 20]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.agents.river.config import Levels, ReportingConfig  # noqa: E402
from edge.agents.river.measurement import Reading  # noqa: E402
from edge.agents.river.reporting import ReportingPolicy  # noqa: E402
from edge.protocol import Envelope, Topic  # noqa: E402
from edge.protocol.airtime import dr_time_on_air  # noqa: E402
from edge.runtime.clock import Clock  # noqa: E402
from edge.runtime.lora_link import ARIB_LIMIT_S_PER_HOUR, DATA_OVERHEAD  # noqa: E402
from gateway.lorawan.config import GatewayConfig  # noqa: E402
from gateway.lorawan.service import GatewayService  # noqa: E402
from sim.broker import Mosquitto  # noqa: E402
from sim.devices.lorawan_modem import Keys, ModemRadio  # noqa: E402
from sim.devices.packet_forwarder import PacketForwarderSim  # noqa: E402
from sim.devices.rak3172 import Rak3172Sim  # noqa: E402
from sim.scenarios import BaseFlow, ScenarioSensor, flood_through_all_levels  # noqa: E402

DAY = 86400.0
PAYLOAD = 9  # river-v1
ACK_PHY = 12  # MHDR, DevAddr, FCtrl, FCnt, MIC: an empty downlink with the ACK bit
LEVELS = Levels(standby=1.2, caution=1.8, evacuation=2.4, danger=2.8)  # configs/river-02.yaml
REPORTING = ReportingConfig(
    observe_from_m=0.9, flashy=True, fast_interval_s=120, fast_rise_m_per_h=0.3
)
FLOOD = flood_through_all_levels(
    LEVELS.values(), base_m=0.5, start_s=6 * 3600, rise_s=3 * 3600, fall_s=9 * 3600
)
MOUNT_M = 4.1
KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
DEV_EUI = 0xAC1F09FFFE000002


class Always:
    """A day spent above the observation level: the worst case for airtime."""

    def level_at(self, t: float) -> float:
        return 2.0


def uplink_times(river: object, seconds: float = DAY) -> list[float]:
    """When the reporting policy sends (readings and crossing events), over ``seconds``."""
    policy, t, sent = ReportingPolicy(LEVELS, REPORTING), 0.0, []
    while t < seconds:
        level = river.level_at(t)  # type: ignore[attr-defined]
        decision = policy.decide(t, Reading(9, 9, level_m=round(level, 3)), 600.0)
        sent += [t] * (len(decision.events) + decision.send_reading)
        t += decision.next_in_s
    return sent


def busiest_hour(times: list[float], each_s: float) -> float:
    window: deque[float] = deque()
    worst = 0
    for t in times:
        window.append(t)
        while window[0] <= t - 3600:
            window.popleft()
        worst = max(worst, len(window))
    return worst * each_s


def airtime_table(gauges: int) -> None:
    observe = REPORTING.observe_from_m
    print(f"airtime of one gauge (site river-02: flashy, every 2 min above {observe} m)")
    header = ("scenario", "uplinks/day", "DR", "s/day", "busiest hour", "of 360 s")
    print("{:<26} {:>11} {:>3} {:>8} {:>13} {:>9}".format(*header))
    scenarios = {
        "dry day": BaseFlow(base_m=0.5),
        "flood day": FLOOD,
        "all day in flood mode": Always(),
    }
    for name, river in scenarios.items():
        times = uplink_times(river)
        for dr in (2, 5):
            each = dr_time_on_air(dr, DATA_OVERHEAD + PAYLOAD)
            hour = busiest_hour(times, each)
            print(
                f"{name:<26} {len(times):>11} {dr:>3} {len(times) * each:>8.1f} "
                f"{hour:>12.1f}s {hour / ARIB_LIMIT_S_PER_HOUR:>8.1%}"
            )
    flood = uplink_times(FLOOD)
    for dr in (2, 5):
        ack = dr_time_on_air(dr, ACK_PHY, crc=False)
        hour = busiest_hour(flood, ack) * gauges
        share = hour / ARIB_LIMIT_S_PER_HOUR
        print(
            f"gateway ACKs, {gauges} gauges flooding at once, RX1 DR{dr}: "
            f"busiest hour {hour:.1f} s ({share:.0%} of 360 s)"
        )


def measured_chain(seconds: float, speed: float) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, Mosquitto() as broker:
        tmp = Path(tmp_name)
        (tmp / "devices.yaml").write_text(
            yaml.safe_dump(
                {
                    "devices": [
                        {
                            "id": "river-02",
                            "kind": "river",
                            "codec": "river-v1",
                            "dev_eui": f"{DEV_EUI:016X}",
                            "otaa": {"app_key": KEY.hex()},
                        }
                    ]
                }
            )
        )
        (tmp / "gateway.yaml").write_text(
            yaml.safe_dump(
                {
                    "gateway": {"id": "gw-bench"},
                    "registry": "devices.yaml",
                    "udp": {"bind": "127.0.0.1", "port": 0},
                    "mqtt": {"host": broker.host, "port": broker.port},
                    "outbox": {"path": str(tmp / "gw.db"), "sync": "normal"},
                    "state": {"path": str(tmp / "state.db"), "sync": "normal"},
                }
            )
        )
        gateway = GatewayService(GatewayConfig.load(tmp / "gateway.yaml"))
        stop = threading.Event()
        threading.Thread(target=gateway.run, args=(stop,), daemon=True).start()
        gateway.ready.wait(10)
        airtimes: list[float] = []
        city = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-city")
        city.on_connect = lambda c, *_: c.subscribe("machimori/v1/river/river-02/+", qos=1)
        city.on_message = lambda _c, _u, m: airtimes.append(
            Envelope.from_json(m.payload).data["radio"]["airtime_s"]
            if Topic.parse(m.topic).channel in ("telemetry", "event")
            else 0.0
        )
        city.connect(broker.host, broker.port)
        city.loop_start()
        key_file = tmp / "appkey"
        key_file.write_text(KEY.hex())
        clock = Clock(speed)
        forwarder = PacketForwarderSim(0xAA555A0000000001, ("127.0.0.1", gateway.udp_port or 0))
        forwarder.start()
        with (
            ScenarioSensor(
                FLOOD, MOUNT_M, clock, frame_period_s=0.1 / max(1.0, speed / 60)
            ) as sensor,
            Rak3172Sim(ModemRadio(Keys(DEV_EUI, KEY), forwarder)) as modem,
        ):
            config = tmp / "river-02.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "device": {"id": "river-02", "kind": "river"},
                        "agent": "river",
                        "link": "lorawan",
                        "lorawan": {
                            "modem": {
                                "port": modem.path,
                                "dev_eui": f"{DEV_EUI:016X}",
                                "app_key_file": str(key_file),
                            }
                        },
                        "outbox": {"path": str(tmp / "agent.db")},
                        "clock_speed": speed,
                        "river": {
                            "sensor": {"port": sensor.path},
                            "mount_height_m": MOUNT_M,
                            "levels": {
                                k: getattr(LEVELS, k)
                                for k in ("standby", "caution", "evacuation", "danger")
                            },
                            "reporting": {
                                "observe_from_m": 0.9,
                                "flashy": True,
                                "fast_interval_s": 120,
                            },
                        },
                    }
                )
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "machimori", "agent", "run", "--config", str(config)]
            )
            agent = psutil.Process(proc.pid)
            clock.wait(FLOOD.start_s + 3600 - clock.monotonic())  # into the flood, readings flowing
            count0, cpu0 = len(airtimes), sum(agent.cpu_times()[:2])
            started = time.monotonic()
            time.sleep(seconds)
            readings = len(airtimes) - count0
            cpu = sum(agent.cpu_times()[:2]) - cpu0
            rss = agent.memory_info().rss / 2**20
            simulated = (time.monotonic() - started) * speed
            proc.terminate()
            proc.wait(20)
        forwarder.close()
        city.loop_stop()
        stop.set()
    policy = uplink_times(FLOOD, FLOOD.start_s + 3600 + simulated)
    expected = sum(1 for t in policy if t >= FLOOD.start_s + 3600)
    print(
        f"\nmeasured: agent process (link lorawan, RAK3172 sim, flood at {speed:g}x) over "
        f"{simulated / 3600:.1f} simulated hours"
    )
    print(f"  readings and events delivered  {readings} (the policy sends {expected} in that span)")
    print(f"  RSS                            {rss:.1f} MiB")
    print(
        f"  CPU per message                {cpu / max(1, readings) * 1000:.1f} ms "
        f"(burst of 9 samples, encode, AT exchange, confirmed uplink)"
    )
    print(
        f"  airtime the gateway saw        {sum(airtimes[count0:]):.2f} s "
        f"= {readings} x {airtimes[-1] if airtimes else 0:.3f} s at DR2"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="real seconds to measure")
    parser.add_argument("--speed", type=float, default=300.0, help="simulated time speed-up")
    parser.add_argument("--gauges", type=int, default=20, help="gauges behind one gateway")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # the gateway's shutdown is not news here
    airtime_table(args.gauges)
    measured_chain(args.seconds, args.speed)


if __name__ == "__main__":
    main()
