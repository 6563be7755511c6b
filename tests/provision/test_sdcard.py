"""`machimori provision flash` onto folders laid out like Raspberry Pi OS boot partitions
(Bookworm: firstrun.sh; Trixie: cloud-init): every file, its mode and its content, the scripts
parse, and the device's config passes `machimori agent check` where the card puts it."""

from __future__ import annotations

import stat
import subprocess
import zipfile

import pytest
import yaml

from gateway.provision.sdcard import build_wheel, wifi_psk
from machimori.cli import main as machimori

RIVER = ("--kind", "river", "--levels", "1.5,2.0,2.6,3.0", "--mount-height", "5.2")
CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 rootwait"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx3tech tech@city.example"
pytestmark = pytest.mark.xdist_group("wheel")  # one worker builds the wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def boot_partition(path, os_name):
    """What Raspberry Pi OS images have on their FAT boot partition (the files we touch)."""
    path.mkdir()
    (path / "config.txt").write_text("dtparam=audio=on\nenable_uart=1\n")
    (path / "cmdline.txt").write_text(CMDLINE + "\n")
    if os_name == "trixie":
        (path / "user-data").write_text("#cloud-config\n")
        (path / "meta-data").write_text("instance-id: rpios-image\n")
        (path / "network-config").write_text("network:\n  version: 2\n")
    return path


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def card_city(city, tmp_path):
    city.init(card={"wifi_ssid": "nagai-site-lte", "ssh_keys": [SSH_KEY]})
    city.ok("add", "river-05", *RIVER, "--site", "長井橋", "--hostname", "gauge-nagaibashi")
    city.ok("add", "river-06", *RIVER, "--link", "lorawan", "--dev-eui", "AC1F09FFFE000006")
    psk = tmp_path / "psk"
    psk.write_text("correct horse battery\n")
    return city, psk


def flash(city, device, boot, wheel, psk, *more):
    return city.ok(
        "flash", device, "--boot", str(boot), "--wheel", str(wheel), "--wifi-psk-file", str(psk),
        *more,
    )  # fmt: skip


def test_bookworm_card(card_city, tmp_path, wheel):
    city, psk = card_city
    boot = boot_partition(tmp_path / "bootfs", "bookworm")
    flash(city, "river-05", boot, wheel, psk)
    flash(city, "river-05", boot, wheel, psk)  # flashing twice changes nothing twice

    cmdline = (boot / "cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.startswith(CMDLINE + " ")
    assert cmdline.count("systemd.run=/boot/firmware/firstrun.sh") == 1
    assert "systemd.run_success_action=reboot systemd.unit=kernel-command-line.target" in cmdline

    firstrun = (boot / "firstrun.sh").read_text()
    assert mode(boot / "firstrun.sh") == 0o755
    assert 'imager_custom set_hostname "$NEW_HOST"' in firstrun
    assert "NEW_HOST=gauge-nagaibashi" in firstrun
    assert SSH_KEY in firstrun and "PasswordAuthentication no" in firstrun
    assert "/usr/lib/userconf-pi/userconf tech '*'" in firstrun  # no password can log in
    assert "sh /boot/firmware/machimori/install.sh" in firstrun
    assert firstrun.rstrip().endswith("exit 0")
    assert "sed -i 's| systemd.run.*||g' /boot/firmware/cmdline.txt" in firstrun

    staged = boot / "machimori"
    files = {str(p.relative_to(staged)): mode(p) for p in staged.rglob("*") if p.is_file()}
    assert files == {
        "etc/machimori/river-05.yaml": 0o644,
        "etc/machimori/river-05.mqtt": 0o600,
        "etc/machimori/city-ca.crt": 0o644,  # verifies the broker (the city CA signed it)
        f"dist/{wheel.name}": 0o644,
        "systemd/machimori-agent@.service": 0o644,
        "systemd/machimori-camera.service": 0o644,
        "systemd/machimori-firstboot.service": 0o644,
        "firstboot.sh": 0o755,
        "install.sh": 0o755,
        "nm/machimori-wifi.nmconnection": 0o600,
    }
    password = city.secret("river-05", "mqtt.password")
    assert (staged / "etc/machimori/river-05.mqtt").read_text() == password
    wifi = (staged / "nm/machimori-wifi.nmconnection").read_text()
    assert "ssid=nagai-site-lte" in wifi
    assert f"psk={wifi_psk('nagai-site-lte', 'correct horse battery')}" in wifi
    assert "correct horse battery" not in "".join(
        p.read_text(errors="replace") for p in boot.rglob("*") if p.is_file() and p.suffix != ".whl"
    )
    install = (staged / "install.sh").read_text()
    assert "install -m 0600 -o machimori -g machimori" in install and 'rm -rf "$SRC"' in install
    firstboot = (staged / "firstboot.sh").read_text()
    assert f"'/opt/machimori/dist/{wheel.name}'" in firstboot  # by path: no index can answer
    assert "systemctl enable --now machimori-agent@river-05" in firstboot
    for script in ("firstrun.sh", "machimori/install.sh", "machimori/firstboot.sh"):
        shell = "bash" if script == "firstrun.sh" else "sh"
        subprocess.run([shell, "-n", str(boot / script)], check=True)
    with zipfile.ZipFile(staged / "dist" / wheel.name) as whl:
        assert "gateway/provision/cli.py" in whl.namelist()
        assert "edge/agents/river/agent.py" in whl.namelist()


def test_trixie_card_with_cloud_init(card_city, tmp_path, wheel):
    city, psk = card_city
    boot = boot_partition(tmp_path / "bootfs", "trixie")
    flash(city, "river-06", boot, wheel, psk, "--apn", "iijmio.jp")
    assert not (boot / "firstrun.sh").exists()
    assert (boot / "cmdline.txt").read_text() == CMDLINE + "\n"
    user_data = (boot / "user-data").read_text()
    assert user_data.startswith("#cloud-config\n")
    data = yaml.safe_load(user_data)
    assert data["hostname"] == "river-06" and data["ssh_pwauth"] is False
    (admin,) = data["users"]
    assert admin["name"] == "tech" and admin["lock_passwd"] is True
    assert admin["ssh_authorized_keys"] == [SSH_KEY]
    assert ["sh", "/boot/firmware/machimori/install.sh"] in data["runcmd"]
    network = yaml.safe_load((boot / "network-config").read_text())["network"]
    ap = network["wifis"]["wlan0"]["access-points"]["nagai-site-lte"]
    assert ap == {"password": wifi_psk("nagai-site-lte", "correct horse battery")}
    assert mode(boot / "network-config") == 0o600
    meta = yaml.safe_load((boot / "meta-data").read_text())
    assert meta["instance-id"] == "machimori-river-06-1"  # a rotation makes cloud-init run again
    staged = boot / "machimori"
    assert mode(staged / "etc/machimori/river-06.appkey") == 0o600
    assert (staged / "etc/machimori/river-06.appkey").read_text() == city.secret(
        "river-06", "app_key"
    )
    assert not (staged / "etc/machimori/river-06.mqtt").exists()  # LoRaWAN: no MQTT login
    assert not (staged / "nm/machimori-wifi.nmconnection").exists()  # network-config has it
    lte = (staged / "nm/machimori-lte.nmconnection").read_text()
    assert "type=gsm" in lte and "apn=iijmio.jp" in lte


def test_rendered_configs_pass_the_agents_own_check(card_city, tmp_path, capsys):
    """`render` lays files out as under /; with /etc/machimori pointed at that folder (as the
    card's install.sh puts them there), `machimori agent check` accepts both configs."""
    city, _ = card_city
    for device in ("river-05", "river-06"):
        root = tmp_path / device
        city.ok("render", device, "--out", str(root))
        etc = root / "etc" / "machimori"
        config = etc / f"{device}.yaml"
        config.write_text(config.read_text().replace("/etc/machimori/", f"{etc}/"))
        capsys.readouterr()
        assert machimori(["agent", "check", "--config", str(config)]) == 0
        assert f"river agent for {device}" in capsys.readouterr().out
    lora = yaml.safe_load((tmp_path / "river-06/etc/machimori/river-06.yaml").read_text())
    assert lora["lorawan"]["modem"]["dev_eui"] == "AC1F09FFFE000006"
    assert lora["link"] == "lorawan" and "mqtt" not in lora


def test_flash_refuses_what_is_not_a_boot_partition(card_city, tmp_path, wheel, capsys):
    city, psk = card_city
    not_boot = tmp_path / "photos"
    not_boot.mkdir()
    capsys.readouterr()
    code = city.run("flash", "river-05", "--boot", str(not_boot), "--wheel", str(wheel),
                    "--wifi-psk-file", str(psk))  # fmt: skip
    assert code == 2 and "not a mounted Raspberry Pi OS boot partition" in capsys.readouterr().err
    assert list(not_boot.iterdir()) == []
    city.configure(card={"ssh_keys": []})
    boot = boot_partition(tmp_path / "bootfs", "bookworm")
    code = city.run("flash", "river-05", "--boot", str(boot), "--wheel", str(wheel),
                    "--wifi-psk-file", str(psk))  # fmt: skip
    assert code == 2 and "no SSH key" in capsys.readouterr().err
