"""The provisioning home's settings (``provision.yaml``): the city's broker as devices reach it,
its LoRaWAN range, what goes on every card, and where ``sync`` writes the city's files.

``machimori provision init`` writes an annotated copy; defaults are documented next to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.protocol.topics import check_device_id
from edge.runtime.config import build, load_yaml
from gateway.provision.catalogue import HEX16

HOME_ENV = "MACHIMORI_PROVISION_HOME"
DEFAULT_HOME = Path("/etc/machimori/provision")


@dataclass
class BrokerSettings:
    """The city's broker, as a field device reaches it."""

    host: str = "mqtt.city.example"
    port: int = 8883
    tls: bool = True  # devices speak TLS and verify the broker's certificate
    # "": the city CA issues the broker's certificate (sync writes broker.crt/.key) and each card
    # gets the CA as /etc/machimori/city-ca.crt; or the CA file on the device that verifies a
    # certificate the city has from elsewhere (/etc/ssl/certs/ca-certificates.crt)
    ca_file: str = ""
    client_certs: bool = False  # each device gets a certificate from the city CA, and the
    # broker's field listener requires one (require_certificate true, crlfile)
    reload_command: str = "systemctl reload mosquitto"  # run by sync: SIGHUP re-reads the
    # password file and ACL and drops revoked clients; other clients stay connected

    def __post_init__(self) -> None:
        if self.client_certs and not self.tls:
            raise ValueError("client_certs needs tls: true")


@dataclass
class LorawanSettings:
    """The city's LoRaWAN: where new DevEUIs come from, and the defaults of new devices."""

    # DevEUIs generated for modems without a label are this prefix followed by a counter. Use
    # the city's own IEEE block, or a locally administered prefix (second hex digit 2, 6, A, E).
    dev_eui_prefix: str = "02CA7E"
    join_eui: str = "0000000000000000"
    gateway: str = "gw-01"  # the gateway new LoRaWAN devices are heard by
    modem: str = "rak3172"
    port: str = "/dev/ttyUSB0"

    def __post_init__(self) -> None:
        prefix = self.dev_eui_prefix.upper()
        if not 2 <= len(prefix) <= 12 or not HEX16.match(prefix.ljust(16, "0")):
            raise ValueError("dev_eui_prefix to be 2..12 hex digits")
        self.dev_eui_prefix = prefix
        check_device_id(self.gateway)


@dataclass
class CardSettings:
    """What every SD card gets besides the device's own files."""

    admin_user: str = "tech"  # the technicians' login: SSH key only, sudo
    ssh_keys: list[str] = field(default_factory=list)  # public keys allowed to log in
    service_user: str = "machimori"  # the agent's system user, no login
    timezone: str = "Asia/Tokyo"
    country: str = "JP"  # Wi-Fi regulatory domain
    wifi_ssid: str = ""  # the sites' Wi-Fi (an LTE router's), if they have one
    apn: str = ""  # a SIM's APN for an LTE modem on the Pi itself


@dataclass
class Outputs:
    """Where ``sync`` writes the files the city's processes read."""

    broker_dir: Path = Path("/etc/mosquitto/machimori")  # passwd, acl, ca.crt, crl.pem
    gateway_registry: Path = Path("/etc/machimori/devices.yaml")  # the gateway's registry
    sites_file: Path = Path("/etc/machimori/sites.yaml")  # the store's river sites


@dataclass
class Settings:
    city: str = "machimori city"
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    lorawan: LorawanSettings = field(default_factory=LorawanSettings)
    card: CardSettings = field(default_factory=CardSettings)
    outputs: Outputs = field(default_factory=Outputs)

    @classmethod
    def load(cls, path: Path) -> Settings:
        """Read the file; relative output paths are relative to it."""
        settings = build(cls, load_yaml(path), file=path) if path.exists() else cls()
        out = settings.outputs
        for name in ("broker_dir", "gateway_registry", "sites_file"):
            value = getattr(out, name)
            if not value.is_absolute():
                setattr(out, name, path.parent / value)
        return settings


TEMPLATE = """\
# machimori provisioning settings. Relative paths are relative to this file.
# See docs/provisioning.md; `machimori provision --help` lists the commands.
city: {city}

broker:                        # the city's broker as a field device reaches it
  host: {host}
  port: {port}
  tls: {tls}                   # devices verify the broker's certificate
  ca_file: ""                  # "": the city CA issues the broker's certificate (sync writes it);
                               # or the device's CA file for a certificate from elsewhere
  client_certs: {client_certs}  # per-device certificates from the city CA; the broker requires them
  reload_command: "{reload}"   # after sync: re-reads passwd and acl, drops revoked clients only

lorawan:
  dev_eui_prefix: 02CA7E       # DevEUIs for modems without a label: the city's block + a counter
  join_eui: "0000000000000000"
  gateway: gw-01               # the gateway that hears new LoRaWAN devices
  modem: rak3172               # or lora_e5
  port: /dev/ttyUSB0

card:                          # what every SD card gets
  admin_user: tech             # technicians log in with an SSH key only
  ssh_keys: []                 # e.g. ["ssh-ed25519 AAAA... tech@city"]
  service_user: machimori
  timezone: Asia/Tokyo
  country: JP
  wifi_ssid: ""                # the sites' Wi-Fi; its passphrase is given to flash as a file
  apn: ""                      # the SIM's APN for an LTE modem on the Pi

outputs:                       # written by `machimori provision sync`
  broker_dir: {broker_dir}     # passwd, acl, ca.crt, crl.pem (include from mosquitto.conf)
  gateway_registry: {registry}
  sites_file: {sites}
"""
