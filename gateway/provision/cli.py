"""``machimori provision``: the city's devices from catalogue to SD card, and their revocation."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edge.runtime.config import ConfigError
from gateway.provision.catalogue import CITY_KINDS, FIELD_KINDS, CatalogueError, Entry
from gateway.provision.settings import DEFAULT_HOME, HOME_ENV, TEMPLATE
from gateway.provision.vault import VaultError

EPILOG = f"""\
a technician's day (docs/provisioning.md walks through it):
  machimori provision init --city "Nagai" --broker-host mqtt.city.example
  machimori provision add river-05 --kind river --site 長井橋 --lat 38.1052 --lon 140.0561 \\
      --levels 1.5,2.0,2.6,3.0 --mount-height 5.2
  machimori provision add river-06 --kind river --link lorawan --dev-eui AC1F09FFFE000006 ...
  machimori provision import trackers.csv          # 1,200 rows: a progress bar, all or nothing
  machimori provision sync                         # broker passwd + acl, gateway registry, sites
  machimori provision flash river-05 --boot /media/tech/bootfs --wifi-psk-file psk.txt
  machimori provision revoke tracker-0113          # refused by the broker within seconds
  machimori provision rotate river-05              # then install its new files, and:
  machimori provision rotate river-05 --confirm    # the old secrets are refused from now on

The home folder (--home, ${HOME_ENV}, default {DEFAULT_HOME}) holds provision.yaml,
catalogue.yaml (no secrets: back it up) and secrets/ (mode 0700, files 0600, never in git).
Exit status 2: wrong input (the message names the file, row or option); 1: the step failed."""

COLUMNS = (
    "id, kind, site, site_en, lat, lon, link, dev_eui, gateway, join_eui, modem, port, river, "
    "river_en, standby, caution, evacuation, danger, observe_from_m, mount_height_m, school, "
    "route, hostname, notes"
)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Create each device's identity and secrets from the city's catalogue, write "
        "the broker's and the gateway's files, write SD cards, and revoke devices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get(HOME_ENV, DEFAULT_HOME)),
        help=f"provisioning folder (default ${HOME_ENV} or {DEFAULT_HOME})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text)

    p = command("init", "write provision.yaml, the settings every other command reads")
    p.add_argument("--city", default="machimori city", help="the city's name (in certificates)")
    p.add_argument("--broker-host", default="mqtt.city.example", help="broker as devices reach it")
    p.add_argument("--broker-port", type=int, default=8883)
    p.add_argument("--no-tls", action="store_true", help="devices speak plain MQTT (a closed LAN)")
    p.add_argument(
        "--client-certs",
        action="store_true",
        help="each device gets a certificate from the city CA",
    )
    p.add_argument("--outputs", type=Path, default=None, help="where sync writes (default: /etc)")
    p.add_argument(
        "--reload-command",
        default="systemctl reload mosquitto",
        help="run after sync so the broker re-reads its files ('' for none)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing provision.yaml")

    p = command("add", "put one device (or city identity) in the catalogue and issue its secrets")
    p.add_argument("id", help="device id: a-z, 0-9 and '-' (river-05, tracker-0113, gw-01)")
    p.add_argument("--kind", required=True, choices=FIELD_KINDS + CITY_KINDS)
    p.add_argument("--site", help="the place's name as residents know it")
    p.add_argument("--site-en", dest="site_en", help="the place's name in English")
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--link", choices=("mqtt", "lorawan"), help="default mqtt")
    p.add_argument(
        "--dev-eui",
        dest="dev_eui",
        help="LoRaWAN: from the modem's label; default: the next in the city's range",
    )
    p.add_argument("--gateway", help="LoRaWAN: the gateway that hears it (default in settings)")
    p.add_argument("--modem", choices=("rak3172", "lora_e5"))
    p.add_argument("--port", help="LoRaWAN: the modem's serial port on the Pi")
    p.add_argument("--river", help="river gauges: the river's name")
    p.add_argument("--river-en", dest="river_en")
    p.add_argument("--levels", help="river gauges: standby,caution,evacuation,danger in metres")
    p.add_argument("--observe-from", dest="observe_from_m", type=float, help="観測開始水位, m")
    p.add_argument(
        "--mount-height",
        dest="mount_height_m",
        type=float,
        help="river gauges: sensor face above the gauge datum, m (surveyed)",
    )
    p.add_argument("--school", help="trackers: the school (never the child's name)")
    p.add_argument("--route", help="buses: the route id")
    p.add_argument("--hostname", help="the Pi's hostname (default: the id)")
    p.add_argument("--notes")

    p = command("import", "add every row of a CSV file (all rows or none), with a progress bar")
    p.add_argument("csv", type=Path, help=f"UTF-8 CSV whose first line names columns: {COLUMNS}")
    p.add_argument("--skip-existing", action="store_true", help="rows whose id is catalogued")

    p = command("list", "the catalogue as a table (no secrets)")
    p.add_argument("--kind", choices=FIELD_KINDS + CITY_KINDS)
    p.add_argument("--status", choices=("active", "revoked", "all"), default="all")

    p = command("show", "one device's record; its secrets only with --secrets")
    p.add_argument("id")
    p.add_argument("--secrets", action="store_true", help="also print its password and keys")

    p = command("revoke", "refuse the device at once: broker login, LoRaWAN, certificate")
    p.add_argument("id")
    p.add_argument("--no-sync", action="store_true", help="only the catalogue; sync later")

    p = command("rotate", "new secrets; with --confirm, the old ones are refused")
    p.add_argument("id")
    p.add_argument(
        "--confirm",
        action="store_true",
        help="the device has its new files: make the new secrets the only ones",
    )
    p.add_argument("--no-sync", action="store_true", help="with --confirm: sync later")

    p = command("render", "write a device's config and secrets into a folder, as under /")
    p.add_argument("id")
    p.add_argument("--out", type=Path, required=True, help="folder (created; secrets 0600)")

    p = command("flash", "write a device onto a mounted Raspberry Pi OS boot partition")
    p.add_argument("id")
    p.add_argument(
        "--boot",
        type=Path,
        required=True,
        help="the card's boot partition as mounted here (/media/$USER/bootfs)",
    )
    p.add_argument(
        "--os",
        choices=("auto", "bookworm", "trixie"),
        default="auto",
        help="auto: trixie if the partition has cloud-init's user-data",
    )
    p.add_argument("--wheel", type=Path, help="this project's wheel (default: built now)")
    p.add_argument(
        "--wheelhouse",
        type=Path,
        help="folder of dependency wheels for the Pi (sites without internet)",
    )
    p.add_argument(
        "--ssh-key",
        type=Path,
        action="append",
        default=[],
        help="a public key file the technicians log in with (repeatable; also "
        "card.ssh_keys in provision.yaml)",
    )
    p.add_argument("--wifi-ssid", help="override card.wifi_ssid")
    p.add_argument("--wifi-psk-file", type=Path, help="file holding the Wi-Fi passphrase")
    p.add_argument("--apn", help="override card.apn (an LTE modem's SIM)")

    p = command("sync", "write the broker's passwd/acl(/ca/crl), gateway registry, store sites")
    p.add_argument("--no-reload", action="store_true", help="do not run broker.reload_command")
    return parser


def main(argv: list[str], prog: str = "machimori provision") -> int:
    args = _parser(prog).parse_args(argv)
    if args.command == "init":
        return _init(args)
    from gateway.provision.home import Home  # cryptography and the rest only past --help

    try:
        home = Home(args.home)
        return COMMANDS[args.command](home, args)
    except (ConfigError, CatalogueError, VaultError) as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 2


def _init(args: argparse.Namespace) -> int:
    path = args.home / "provision.yaml"
    if path.exists() and not args.force:
        print(f"provision: {path} exists (--force replaces it)", file=sys.stderr)
        return 2
    out = args.outputs.resolve() if args.outputs else None  # the file's own folder is not cwd
    text = TEMPLATE.format(
        city=yaml.safe_dump(args.city, allow_unicode=True).splitlines()[0],
        host=args.broker_host,
        port=args.broker_port,
        tls=str(not args.no_tls).lower(),
        client_certs=str(args.client_certs).lower(),
        reload=args.reload_command,
        broker_dir=out / "mosquitto" if out else "/etc/mosquitto/machimori",
        registry=out / "devices.yaml" if out else "/etc/machimori/devices.yaml",
        sites=out / "sites.yaml" if out else "/etc/machimori/sites.yaml",
    )
    args.home.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    from gateway.provision.home import Home

    try:
        Home(args.home)  # the settings parse, and secrets/ is made 0700
    except (ConfigError, VaultError) as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}; edit it, then add devices (machimori provision add --help)")
    return 0


def _add(home: Any, args: argparse.Namespace) -> int:
    fields = {
        k: getattr(args, k)
        for k in (
            "id", "kind", "site", "site_en", "lat", "lon", "link", "dev_eui", "gateway", "modem",
            "port", "river", "river_en", "observe_from_m", "mount_height_m", "school", "route",
            "hostname", "notes",
        )
    }  # fmt: skip
    if args.levels:
        try:
            values = [float(v) for v in args.levels.split(",")]
        except ValueError:
            values = []
        if len(values) != 4:
            print("provision: --levels: expected four numbers, e.g. 1.5,2.0,2.6,3.0",
                  file=sys.stderr)  # fmt: skip
            return 2
        fields |= dict(zip(("standby", "caution", "evacuation", "danger"), values, strict=True))
    entry = home.new_entry(fields, "add")
    home.add(entry)
    home.catalogue.save()
    print(f"added {entry.id} ({_describe(entry)}); run `machimori provision sync` so the "
          "broker and gateway know it")  # fmt: skip
    return 0


def _import(home: Any, args: argparse.Namespace) -> int:
    bar = ProgressBar("issuing secrets", sys.stderr)
    entries, rejected = home.import_csv(
        args.csv, skip_existing=args.skip_existing, progress=bar.update
    )
    if rejected:
        for r in rejected:
            print(f"{args.csv}:{r.line}: {r.reason}", file=sys.stderr)
        print(f"provision: {len(rejected)} rows are wrong; nothing was imported", file=sys.stderr)
        return 2
    bar.done()
    home.catalogue.save()
    print(f"imported {len(entries)} devices; run `machimori provision sync`")
    return 0


def _list(home: Any, args: argparse.Namespace) -> int:
    rows = [
        e
        for e in home.catalogue
        if (args.kind is None or e.kind == args.kind)
        and (args.status == "all" or e.status == args.status)
    ]
    print(f"{'id':<16} {'kind':<8} {'status':<8} {'link':<8} {'site':<20} detail")
    for e in rows:
        status = "rotating" if e.rotating else e.status
        print(f"{e.id:<16} {e.kind:<8} {status:<8} {e.link:<8} {e.site[:20]:<20} {_detail(e)}")
    print(f"{len(rows)} of {len(home.catalogue)} entries")
    return 0


def _describe(entry: Entry) -> str:
    where = f" at {entry.site}" if entry.site else ""
    return f"{entry.kind}{where}, {entry.link}"


def _detail(entry: Entry) -> str:
    if entry.lorawan is not None:
        return f"DevEUI {entry.lorawan.dev_eui} via {entry.lorawan.gateway}"
    return entry.school or entry.route or ""


def _show(home: Any, args: argparse.Namespace) -> int:
    entry = home.catalogue.get(args.id)
    print(yaml.safe_dump(entry.record(), sort_keys=False, allow_unicode=True), end="")
    if not entry.active:
        print("secrets: deleted at revocation")
        return 0
    keys = home.device_secrets(entry)
    held = [n for n in ("mqtt_password", "app_key", "client_cert") if getattr(keys, n)]
    print(f"secrets: generation {keys.generation}: {', '.join(held)} in {home.vault.root}")
    if args.secrets:
        print("secrets (keep them off screens and out of tickets):")
        for name in ("mqtt_password", "app_key"):
            value = getattr(keys, name)
            if value:
                print(f"  {name}: {value}")
    return 0


def _revoke(home: Any, args: argparse.Namespace) -> int:
    entry = home.catalogue.get(args.id)
    home.revoke(entry)
    home.catalogue.save()
    print(f"revoked {entry.id}: its secrets are deleted; its data stays in the store")
    return 0 if args.no_sync else _run_sync(home, reload=True)


def _rotate(home: Any, args: argparse.Namespace) -> int:
    entry = home.catalogue.get(args.id)
    if args.confirm:
        home.confirm(entry)
        home.catalogue.save()
        print(f"{entry.id}: generation {entry.generation} is now the only one accepted")
        return 0 if args.no_sync else _run_sync(home, reload=True)
    home.rotate(entry)
    home.catalogue.save()
    print(
        f"{entry.id}: new secrets (generation {entry.generation}); the broker still accepts the "
        f"old ones. Install the new files (render or flash), restart its agent, then run "
        f"`machimori provision rotate --confirm {entry.id}`"
    )
    return 0


def _render(home: Any, args: argparse.Namespace) -> int:
    from gateway.provision.device_files import device_files, write_files

    entry = home.catalogue.get(args.id)
    for path in write_files(device_files(home, entry), args.out):
        print(path)
    return 0


def _flash(home: Any, args: argparse.Namespace) -> int:
    from gateway.provision.device_files import device_files
    from gateway.provision.sdcard import Card, CardError, flash, temporary_wheel

    entry = home.catalogue.get(args.id)
    settings = home.settings.card
    for name in ("wifi_ssid", "apn"):
        if getattr(args, name):
            setattr(settings, name, getattr(args, name))
    keys = list(settings.ssh_keys)
    for key_file in args.ssh_key:
        keys += [line for line in key_file.read_text().splitlines() if line.strip()]
    if not keys:
        print("provision: no SSH key: add --ssh-key FILE or card.ssh_keys (logins are "
              "SSH-key only)", file=sys.stderr)  # fmt: skip
        return 2
    psk = args.wifi_psk_file.read_text().strip() if args.wifi_psk_file else ""
    if settings.wifi_ssid and not psk:
        print(f"provision: Wi-Fi {settings.wifi_ssid!r} needs --wifi-psk-file", file=sys.stderr)
        return 2
    tmp = None
    try:
        if args.wheel is None:
            print("building this project's wheel...", file=sys.stderr)
            tmp, wheel = temporary_wheel()
        else:
            wheel = args.wheel
        card = Card(settings, wheel, keys, psk, args.wheelhouse)
        written = flash(args.boot, entry, device_files(home, entry), card, args.os)
    except CardError as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 2
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"{entry.id}: {len(written)} files on {args.boot}; eject the card and boot the Pi")
    return 0


def _sync(home: Any, args: argparse.Namespace) -> int:
    return _run_sync(home, reload=not args.no_reload)


def _run_sync(home: Any, *, reload: bool) -> int:
    from gateway.provision.city_files import sync

    report = sync(home, reload=reload)
    for path in report.written:
        print(f"wrote {path}")
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{report.users} MQTT users, {report.lorawan} LoRaWAN devices, {report.sites} sites; "
          f"broker reload: {report.reload}")  # fmt: skip
    return 1 if report.reload.startswith("FAILED") else 0


class ProgressBar:
    """A one-line bar on a terminal; on a pipe or log, a line every 10%."""

    def __init__(self, label: str, out: Any, width: int = 30) -> None:
        self.label = label
        self.out = out
        self.width = width
        self.tty = out.isatty()
        self._last = -1

    def update(self, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if self.tty:
            filled = self.width * done // max(total, 1)
            bar = "#" * filled + "." * (self.width - filled)
            self.out.write(f"\r{self.label} [{bar}] {done}/{total}")
        elif tenth != self._last:
            self.out.write(f"{self.label}: {done}/{total}\n")
        self._last = tenth
        self.out.flush()

    def done(self) -> None:
        if self.tty and self._last >= 0:
            self.out.write("\n")


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "add": _add,
    "import": _import,
    "list": _list,
    "show": _show,
    "revoke": _revoke,
    "rotate": _rotate,
    "render": _render,
    "flash": _flash,
    "sync": _sync,
}
