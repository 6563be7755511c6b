"""The gateway's config file (configs/gateway.yaml), typed; errors name file, key, expectation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.protocol.topics import check_device_id
from edge.runtime.config import build, load_yaml
from edge.runtime.host import OutboxConfig
from edge.runtime.uplink import MqttConfig
from gateway.lorawan import region
from gateway.lorawan.downlink import RxWindowMode
from gateway.lorawan.mac import MacSettings
from gateway.lorawan.network import NetworkSettings
from gateway.lorawan.registry import parse_hex
from gateway.lorawan.sessions import Sync

Mode = Literal["udp", "chirpstack"]


@dataclass
class Identity:
    id: str  # the gateway's device id: machimori/v1/gateway/{id}/status, .../event

    def __post_init__(self) -> None:
        check_device_id(self.id)


@dataclass
class UdpConfig:
    """Where Semtech packet forwarders (lora_pkt_fwd) send to: their server_address/serv_port_*."""

    bind: str = "0.0.0.0"
    port: int = 1700
    # Gateway EUIs (16 hex digits) allowed to talk to us; empty: any forwarder that reaches us.
    allowed_gateways: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.allowed = frozenset(
            parse_hex(e, 16, "allowed_gateways") for e in self.allowed_gateways
        )


@dataclass
class LoRaWANConfig:
    net_id: str = "000000"  # 000000/000001 are for private networks; DevAddrs come from it
    rx_window: RxWindowMode = "auto"  # auto: RX1, and RX2 if the forwarder refuses RX1
    rx1_dr_offset: int = 0
    tx_power_dbm: int = 13  # ARIB STD-T108: 20 mW (13 dBm) for 920 MHz LPWA
    dedup_window_s: float = 0.2  # how long copies from other gateways are collected
    max_fcnt_gap: int | None = 16384  # LoRaWAN 1.0.3 MAX_FCNT_GAP; null trusts the MIC alone
    cmd_max_attempts: int = 4  # confirmed downlinks carrying one command before it is given up
    # The city's channels besides 923.2 and 923.4 MHz (at most 6, as the forwarders listen):
    # sent in the Join-Accept CFList and by NewChannelReq. Uplinks elsewhere are refused.
    channels_mhz: list[float] = field(default_factory=list)
    rx2_dr: int = region.RX2_DR  # RX2 data rate (923.2 MHz): Join-Accept, RXParamSetupReq
    rx1_delay_s: int = region.RECEIVE_DELAY1_S  # RX1 delay: Join-Accept, RXTimingSetupReq
    max_duty_cycle: int = 0  # DutyCycleReq: aggregated duty cycle 1/2^n; 0 no limit
    adr_margin_db: float = 10.0  # installation margin of ADR (ChirpStack's default)
    adr_max_dr: int = region.MAX_RX1_DR  # the highest data rate ADR moves a device to
    dev_status_every: int = 96  # uplinks between DevStatusReqs (battery, margin); 0: never

    def __post_init__(self) -> None:
        if not 0 <= self.rx1_dr_offset <= 7:
            raise ValueError("rx1_dr_offset to be 0..7")
        if len(self.channels_mhz) > region.MAX_CHANNELS - 2:
            raise ValueError(f"channels_mhz to list at most {region.MAX_CHANNELS - 2} channels")
        try:
            plan = region.ChannelPlan.with_extra(self.channels_mhz)
        except ValueError as exc:
            raise ValueError(f"channels_mhz to be AS923-1 channels: {exc}") from None
        if not region.DWELL_MIN_DR <= self.rx2_dr <= region.MAX_RX1_DR:
            raise ValueError("rx2_dr to be 2..5 (AS923 under the 400 ms dwell limit)")
        if not 1 <= self.rx1_delay_s <= 15:
            raise ValueError("rx1_delay_s to be 1..15")
        if not 0 <= self.max_duty_cycle <= 15:
            raise ValueError("max_duty_cycle to be 0..15")
        if not region.DWELL_MIN_DR <= self.adr_max_dr <= region.MAX_RX1_DR:
            raise ValueError("adr_max_dr to be 2..5")
        if not 0 <= self.adr_margin_db <= 30:
            raise ValueError("adr_margin_db to be 0..30 dB")
        if self.dev_status_every < 0:
            raise ValueError("dev_status_every to be 0 (never) or more uplinks")
        if not 0 <= self.tx_power_dbm <= region.MAX_EIRP_DBM:
            raise ValueError(f"tx_power_dbm to be 0..{region.MAX_EIRP_DBM} (AS923 max EIRP)")
        if not 0 <= self.dedup_window_s <= 0.5:
            raise ValueError("dedup_window_s to be 0..0.5 s, far inside the RX1 delay")
        if not 1 <= self.cmd_max_attempts <= 16:
            raise ValueError("cmd_max_attempts to be 1..16")
        self.settings = NetworkSettings(
            net_id=parse_hex(self.net_id, 6, "net_id"),
            rx_window=self.rx_window,
            tx_power_dbm=self.tx_power_dbm,
            max_fcnt_gap=self.max_fcnt_gap,
            cmd_max_attempts=self.cmd_max_attempts,
            mac=MacSettings(
                plan=plan,
                rx1_dr_offset=self.rx1_dr_offset,
                rx2_dr=self.rx2_dr,
                rx_delay_s=self.rx1_delay_s,
                max_duty_cycle=self.max_duty_cycle,
                adr_margin_db=self.adr_margin_db,
                adr_max_dr=self.adr_max_dr,
                dev_status_every=self.dev_status_every,
            ),
        )


@dataclass
class ChirpStackConfig:
    """ChirpStack v4's MQTT integration: the broker it publishes events to, and their topic."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)
    topic: str = "application/+/device/+/event/up"


@dataclass
class StateConfig:
    """Sessions, frame counters, DevNonces, seqs, downlink queue. Holds keys: mode 0600."""

    path: Path = Path("/var/lib/machimori/gateway-state.db")
    sync: Sync = "full"  # full survives power loss (no FCntDown or JoinNonce reuse after it)


@dataclass
class GatewayConfig:
    gateway: Identity
    registry: Path  # the device registry the provisioning step writes (keys: mode 0600)
    registry_check_s: float = 5.0  # how often the registry file is checked for changes: a
    # device revoked by provisioning is refused within this long, with no restart
    mode: Mode = "udp"
    udp: UdpConfig = field(default_factory=UdpConfig)
    lorawan: LoRaWANConfig = field(default_factory=LoRaWANConfig)
    chirpstack: ChirpStackConfig = field(default_factory=ChirpStackConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)  # the city's broker
    outbox: OutboxConfig = field(
        default_factory=lambda: OutboxConfig(path=Path("/var/lib/machimori/gateway-outbox.db"))
    )
    state: StateConfig = field(default_factory=StateConfig)
    flush_timeout_s: float = 5.0  # on SIGTERM, how long queued messages get to leave
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    def __post_init__(self) -> None:
        if not 0 < self.registry_check_s <= 3600:
            raise ValueError("registry_check_s to be more than 0 and at most 3600 s")

    @classmethod
    def load(cls, path: str | Path) -> GatewayConfig:
        """Parse the file; a relative ``registry`` path is relative to the config file."""
        config = build(cls, load_yaml(path), file=path)
        if not config.registry.is_absolute():
            config.registry = Path(path).parent / config.registry
        return config
