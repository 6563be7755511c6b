"""``flash``: a device's files onto a mounted Raspberry Pi OS boot partition, so that the Pi
boots into its agent with no further step.

Two first-boot mechanisms, as Raspberry Pi Imager uses them:

- Bookworm: ``firstrun.sh`` on the boot partition, run once by systemd from ``cmdline.txt``
  (``systemd.run=``); it sets the hostname, the technicians' user (SSH key only), Wi-Fi and the
  time zone, then removes itself from ``cmdline.txt``;
- Trixie and later: cloud-init's NoCloud files ``user-data``, ``network-config``, ``meta-data``.

Both then run ``machimori/install.sh``, which is the same for both: the service user, the
device's files into /etc/machimori (secrets 0600, owned by the service user), the project's wheel
and systemd units, an LTE connection if the card has an APN, and it deletes the secrets from the
FAT partition (which has no file modes). ``machimori-firstboot.service`` then waits for the
network, installs the wheel into /opt/machimori, and enables the agent's unit.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from gateway.provision.catalogue import FIELD_KINDS, Entry
from gateway.provision.device_files import DeviceFile, write_files
from gateway.provision.settings import CardSettings

ROOT = Path(__file__).resolve().parents[2]  # the checkout: configs/systemd, models/
BOOT = "/boot/firmware"  # where Raspberry Pi OS mounts the boot partition
HERE = f"{BOOT}/machimori"
Os = Literal["auto", "bookworm", "trixie"]
KERNEL_RUN = (
    f" systemd.run={BOOT}/firstrun.sh systemd.run_success_action=reboot"
    " systemd.unit=kernel-command-line.target"
)
MODELS = ("wildlife-v1.tflite", "wildlife-v1.labels")


class CardError(ValueError):
    """The target is not a boot partition, or something the card needs is missing."""


@dataclass
class Card:
    """What goes on the card besides the device's files."""

    settings: CardSettings
    wheel: Path
    ssh_keys: list[str] = field(default_factory=list)  # public key lines
    wifi_psk: str = field(default="", repr=False)  # the passphrase; only its PSK is written
    wheelhouse: Path | None = None  # wheels of the dependencies for the Pi, for offline sites


def wifi_psk(ssid: str, passphrase: str) -> str:
    """The WPA2 pre-shared key (IEEE 802.11i: PBKDF2-SHA1, SSID as salt, 4096 rounds), which
    is what goes on the card instead of the passphrase, as Raspberry Pi Imager does."""
    if not 8 <= len(passphrase) <= 63:
        raise CardError("a WPA2 passphrase has 8 to 63 characters")
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def detect_os(boot: Path, wanted: Os) -> Literal["bookworm", "trixie"]:
    if not (boot / "config.txt").exists():
        raise CardError(f"{boot} has no config.txt: not a mounted Raspberry Pi OS boot partition")
    if wanted != "auto":
        return wanted
    if (boot / "user-data").exists() or (boot / "meta-data").exists():
        return "trixie"  # its images ship cloud-init's NoCloud files on the boot partition
    return "bookworm"


def unit_for(entry: Entry) -> str:
    return "machimori-camera.service" if entry.kind == "camera" else f"machimori-agent@{entry.id}"


def build_wheel(out: Path) -> Path:
    """This project's wheel, built from the checkout (no dependencies: the Pi gets those)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = sorted(out.glob("machimori-*.whl"))
    if not wheels:
        raise CardError(f"pip built no machimori wheel in {out}")
    return wheels[-1]


def flash(
    boot: Path, entry: Entry, files: list[DeviceFile], card: Card, os_wanted: Os = "auto"
) -> list[Path]:
    """Write everything onto the boot partition mounted at ``boot``; returns what was written."""
    if entry.kind not in FIELD_KINDS:
        raise CardError(f"{entry.id} is a city {entry.kind}: only field devices boot from a card")
    os_name = detect_os(boot, os_wanted)
    if not card.wheel.is_file():
        raise CardError(f"no wheel at {card.wheel}")
    staging = boot / "machimori"
    shutil.rmtree(staging, ignore_errors=True)
    written = write_files(files, staging)
    written += _copy(card.wheel, staging / "dist")
    if card.wheelhouse is not None:
        for wheel in sorted(card.wheelhouse.glob("*.whl")):
            written += _copy(wheel, staging / "dist")
    if entry.kind == "camera":
        for name in MODELS:
            written += _copy(ROOT / "models" / name, staging / "models")
    for unit in ("machimori-agent@.service", "machimori-camera.service"):
        written += _copy(ROOT / "configs" / "systemd" / unit, staging / "systemd")
    written.append(_write(staging / "systemd" / "machimori-firstboot.service", FIRSTBOOT_UNIT))
    written.append(_write(staging / "firstboot.sh", firstboot_script(entry, card), 0o755))
    lte = _lte_connection(card.settings)
    if lte:
        written.append(_write(staging / "nm" / "machimori-lte.nmconnection", lte, 0o600))
    psk = wifi_psk(card.settings.wifi_ssid, card.wifi_psk) if card.settings.wifi_ssid else ""
    if os_name == "bookworm" and psk:
        nm = _wifi_connection(card.settings, psk)
        written.append(_write(staging / "nm" / "machimori-wifi.nmconnection", nm, 0o600))
    written.append(_write(staging / "install.sh", install_script(entry, card.settings), 0o755))
    if os_name == "bookworm":
        written.append(_write(boot / "firstrun.sh", firstrun_script(entry, card), 0o755))
        written.append(_add_firstrun_to_cmdline(boot / "cmdline.txt"))
    else:
        written += _cloud_init(boot, entry, card, psk)
    return written


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _copy(source: Path, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(source, folder / source.name))]


def _add_firstrun_to_cmdline(path: Path) -> Path:
    if not path.exists():
        raise CardError(f"{path} is missing: not a Raspberry Pi OS (Bookworm) boot partition")
    line = path.read_text().strip().split(KERNEL_RUN)[0]  # flashing twice adds it once
    if "\n" in line:
        raise CardError(f"{path} has more than one line; Raspberry Pi OS reads only one")
    path.write_text(line + KERNEL_RUN + "\n")
    return path


def _q(text: str) -> str:
    return shlex.quote(text)


def firstrun_script(entry: Entry, card: Card) -> str:
    """Bookworm's first boot, in the shape Raspberry Pi Imager gives it: its helper scripts where
    the image has them, plain commands where it does not; then it removes itself."""
    s = card.settings
    keys = "\n".join(card.ssh_keys)
    return f"""#!/bin/bash
# First boot of {entry.id}, written by `machimori provision flash` (Raspberry Pi OS Bookworm).
# Run once by systemd (systemd.run= in cmdline.txt), then removed with that option.
set +e

NEW_HOST={_q(entry.host)}
OLD_HOST=$(tr -d " \\t\\n\\r" </etc/hostname)
if [ -f /usr/lib/raspberrypi-sys-mods/imager_custom ]; then
   /usr/lib/raspberrypi-sys-mods/imager_custom set_hostname "$NEW_HOST"
else
   echo "$NEW_HOST" >/etc/hostname
   sed -i "s/127.0.1.1.*$OLD_HOST/127.0.1.1\\t$NEW_HOST/g" /etc/hosts
fi

# The technicians' user: SSH key only (no password can log in: its hash is '*').
FIRSTUSER=$(getent passwd 1000 | cut -d: -f1)
if [ -f /usr/lib/userconf-pi/userconf ]; then
   /usr/lib/userconf-pi/userconf {_q(s.admin_user)} '*'
else
   echo "$FIRSTUSER:*" | chpasswd -e
   if [ -n "$FIRSTUSER" ] && [ "$FIRSTUSER" != {_q(s.admin_user)} ]; then
      usermod -l {_q(s.admin_user)} "$FIRSTUSER"
      usermod -m -d /home/{_q(s.admin_user)} {_q(s.admin_user)}
      groupmod -n {_q(s.admin_user)} "$FIRSTUSER"
   fi
fi
ADMIN_HOME=$(getent passwd {_q(s.admin_user)} | cut -d: -f6)
install -o {_q(s.admin_user)} -m 700 -d "$ADMIN_HOME/.ssh"
printf '%s\\n' {_q(keys)} >"$ADMIN_HOME/.ssh/authorized_keys"
chown {_q(s.admin_user)}: "$ADMIN_HOME/.ssh/authorized_keys"
chmod 600 "$ADMIN_HOME/.ssh/authorized_keys"
printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\n' \\
   >/etc/ssh/sshd_config.d/machimori.conf
systemctl enable ssh

if [ -f /usr/lib/raspberrypi-sys-mods/imager_custom ]; then
   /usr/lib/raspberrypi-sys-mods/imager_custom set_wlan_country {_q(s.country)} 2>/dev/null
fi
rfkill unblock wifi 2>/dev/null
rm -f /etc/localtime
echo {_q(s.timezone)} >/etc/timezone
dpkg-reconfigure -f noninteractive tzdata

sh {HERE}/install.sh

rm -f {BOOT}/firstrun.sh
sed -i 's| systemd.run.*||g' {BOOT}/cmdline.txt
exit 0
"""


def install_script(entry: Entry, s: CardSettings) -> str:
    """The machimori part of the first boot, the same on Bookworm and Trixie."""
    user = _q(s.service_user)
    return f"""#!/bin/sh
# machimori on {entry.id}: written by `machimori provision flash`, run once at first boot.
# Moves the device's files and secrets off the FAT boot partition (which has no file modes).
set -eu
SRC={HERE}

if ! id {user} >/dev/null 2>&1; then
   useradd --system --home-dir /var/lib/machimori --shell /usr/sbin/nologin {user}
fi
for group in dialout gpio video; do
   if getent group "$group" >/dev/null; then usermod -aG "$group" {user}; fi
done

install -d -m 0750 -o root -g {user} /etc/machimori
for f in "$SRC"/etc/machimori/*; do
   case "$f" in
      *.yaml|*.crt) install -m 0640 -o root -g {user} "$f" /etc/machimori/ ;;
      *) install -m 0600 -o {user} -g {user} "$f" /etc/machimori/ ;;
   esac
done

install -d -m 0755 /opt/machimori/dist /usr/local/lib/machimori
cp "$SRC"/dist/*.whl /opt/machimori/dist/
if [ -d "$SRC"/models ]; then
   install -d -m 0755 /opt/machimori/models
   cp "$SRC"/models/* /opt/machimori/models/
fi
install -m 0644 "$SRC"/systemd/*.service /etc/systemd/system/
install -m 0755 "$SRC"/firstboot.sh /usr/local/lib/machimori/firstboot.sh
if [ -d "$SRC"/nm ]; then
   install -m 0600 "$SRC"/nm/*.nmconnection /etc/NetworkManager/system-connections/
fi
systemctl enable machimori-firstboot.service

rm -rf "$SRC"
"""


def firstboot_script(entry: Entry, card: Card) -> str:
    """After the network is up: the venv, the wheel (by its path, never a name an index could
    answer), and the agent's unit enabled. systemd retries it until it succeeds."""
    extra = "[camera]" if entry.kind == "camera" else ""
    wheel = f"/opt/machimori/dist/{card.wheel.name}"
    offline = "--no-index " if card.wheelhouse is not None else ""
    return f"""#!/bin/sh
# machimori on {entry.id}: install the agent once the network is up, then start it.
set -eu
[ -x /opt/machimori/bin/python ] || python3 -m venv /opt/machimori
/opt/machimori/bin/pip install --quiet {offline}--find-links /opt/machimori/dist '{wheel}{extra}'
systemctl enable --now {unit_for(entry)}
systemctl disable machimori-firstboot.service
"""


FIRSTBOOT_UNIT = """\
# Installs machimori once the network is up, then enables the device's agent (see firstboot.sh).
[Unit]
Description=machimori first-boot install
After=network-online.target
Wants=network-online.target
ConditionPathExists=/usr/local/lib/machimori/firstboot.sh

[Service]
Type=oneshot
ExecStart=/usr/local/lib/machimori/firstboot.sh
Restart=on-failure
RestartSec=60

[Install]
WantedBy=multi-user.target
"""


def _wifi_connection(s: CardSettings, psk: str) -> str:
    return f"""[connection]
id=machimori-wifi
type=wifi
autoconnect=true

[wifi]
mode=infrastructure
ssid={s.wifi_ssid}

[wifi-security]
key-mgmt=wpa-psk
psk={psk}

[ipv4]
method=auto

[ipv6]
method=auto
"""


def _lte_connection(s: CardSettings) -> str:
    if not s.apn:
        return ""
    return f"""[connection]
id=machimori-lte
type=gsm
autoconnect=true

[gsm]
apn={s.apn}

[ipv4]
method=auto

[ipv6]
method=auto
"""


def _cloud_init(boot: Path, entry: Entry, card: Card, psk: str) -> list[Path]:
    """Trixie's NoCloud files: who logs in, the hostname, Wi-Fi, then install.sh."""
    s = card.settings
    user_data = {
        "hostname": entry.host,
        "manage_etc_hosts": True,
        "timezone": s.timezone,
        "ssh_pwauth": False,
        "users": [
            {
                "name": s.admin_user,
                "groups": ["adm", "dialout", "sudo", "video", "gpio"],
                "shell": "/bin/bash",
                "lock_passwd": True,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(card.ssh_keys),
            }
        ],
        "runcmd": [["systemctl", "enable", "--now", "ssh"], ["sh", f"{HERE}/install.sh"]],
    }
    network: dict[str, object] = {"version": 2}
    if psk:
        network["wifis"] = {
            "wlan0": {
                "renderer": "NetworkManager",
                "dhcp4": True,
                "optional": True,
                "regulatory-domain": s.country,
                "access-points": {s.wifi_ssid: {"password": psk}},
            }
        }
    else:
        network["ethernets"] = {"eth0": {"dhcp4": True, "optional": True}}
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, allow_unicode=True)  # noqa: E731
    return [
        _write(boot / "user-data", "#cloud-config\n" + dump(user_data)),
        _write(boot / "network-config", dump({"network": network}), 0o600),
        _write(
            boot / "meta-data",
            dump({"instance-id": f"machimori-{entry.id}-{entry.generation}"}),
        ),
    ]


def temporary_wheel() -> tuple[tempfile.TemporaryDirectory[str], Path]:
    """A wheel built into a temporary folder the caller cleans up."""
    tmp = tempfile.TemporaryDirectory(prefix="machimori-wheel-")
    return tmp, build_wheel(Path(tmp.name))
