"""Fixtures of the provisioning tests: a provisioning home driven through the real CLI, and a
real Mosquitto started on the password file and ACL that the CLI's ``sync`` wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from machimori.cli import main as machimori
from sim.broker import Mosquitto


class City:
    """A provisioning home in a temporary folder; ``run(...)`` is `machimori provision ...`."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.home = root / "home"
        self.out = root / "out"
        self.capsys = capsys

    def init(self, *options: str, **settings: object) -> None:
        assert self.run("init", "--city", "Nagai", "--outputs", str(self.out), *options) == 0
        self.configure(broker={"reload_command": ""})  # no broker unless a test starts one
        self.configure(**settings)

    def configure(self, **sections: object) -> None:
        """Change provision.yaml as a technician would edit it: {section: {key: value}}."""
        path = self.home / "provision.yaml"
        data = yaml.safe_load(path.read_text())
        for section, values in sections.items():
            data[section] = {**data.get(section, {}), **values}  # type: ignore[dict-item]
        path.write_text(yaml.safe_dump(data, allow_unicode=True))

    def run(self, *argv: str) -> int:
        return machimori(["provision", "--home", str(self.home), *argv])

    def ok(self, *argv: str) -> str:
        """Run a command that must succeed; its standard output."""
        self.capsys.readouterr()
        code = self.run(*argv)
        out, err = self.capsys.readouterr()
        assert code == 0, f"provision {' '.join(argv)} exited {code}: {err}"
        return out

    def secret(self, device: str, name: str, generation: int = 1) -> str:
        return (self.home / "secrets" / device / str(generation) / name).read_text().strip()

    def serve(self, broker: Mosquitto) -> Mosquitto:
        """Sync, start ``broker`` on the files sync wrote, and let later syncs reload it."""
        self.ok("sync")
        broker.start()
        self.configure(broker={"reload_command": f"kill -HUP {broker.proc.pid}"})
        return broker

    @property
    def broker_dir(self) -> Path:
        return self.out / "mosquitto"


@pytest.fixture
def city(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> City:
    return City(tmp_path, capsys)


RIVER = ("--kind", "river", "--levels", "1.5,2.0,2.6,3.0", "--mount-height", "5.2")


@pytest.fixture
def provisioned_broker(city: City) -> Iterator[Mosquitto]:
    """A city with two MQTT gauges, a LoRaWAN gauge behind gw-01, the store and a service,
    and a Mosquitto reading the files `provision sync` wrote; sync reloads it with SIGHUP."""
    broker_dir = city.out / "mosquitto"
    broker = Mosquitto(password_file=broker_dir / "passwd", acl_file=broker_dir / "acl")
    city.init("--no-tls", "--broker-host", broker.host, "--broker-port", str(broker.port))
    city.ok("add", "river-01", *RIVER, "--site", "長井橋")
    city.ok("add", "river-02", *RIVER)
    city.ok("add", "river-03", *RIVER, "--link", "lorawan")
    city.ok("add", "gw-01", "--kind", "gateway")
    city.ok("add", "city", "--kind", "store")
    city.ok("add", "arrivals", "--kind", "service")
    yield city.serve(broker)
    broker.close()
