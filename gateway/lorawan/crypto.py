"""LoRaWAN 1.0.x cryptography: MICs, FRMPayload and Join-Accept ciphers, session keys.

Every function works for both ends of the link, so the network server and the device simulators
share one implementation. Byte strings are as sent on air; integer fields (DevAddr, FCnt, nonces,
NetID) are converted to little-endian octets here, as LoRaWAN 1.0.4 §1.2 requires.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

BLOCK = 16
MIC_LEN = 4
UPLINK = 0
DOWNLINK = 1


def _ecb(key: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def cmac_mic(key: bytes, msg: bytes) -> bytes:
    """First four octets of AES-128 CMAC: the MIC of Join-Request and Join-Accept frames.

    LoRaWAN 1.0.4 §6.2.5: MIC = aes128_cmac(AppKey, MHDR | JoinEUI | DevEUI | DevNonce)[0..3];
    §6.2.6: MIC = aes128_cmac(AppKey, MHDR | JoinNonce | NetID | DevAddr | DLSettings | RxDelay
    | CFList)[0..3].
    """
    mac = CMAC(algorithms.AES(key))
    mac.update(msg)
    return mac.finalize()[:MIC_LEN]


def _frame_block(first: int, direction: int, dev_addr: int, fcnt: int, last: int) -> bytes:
    """The B0 / Ai block layout shared by §4.4 (Table 13) and §4.3.3 (Table 12)."""
    return (
        bytes([first, 0, 0, 0, 0, direction])
        + dev_addr.to_bytes(4, "little")
        + fcnt.to_bytes(4, "little")
        + bytes([0, last])
    )


def data_mic(key: bytes, *, uplink: bool, dev_addr: int, fcnt: int, msg: bytes) -> bytes:
    """MIC of a data frame (LoRaWAN 1.0.4 §4.4): CMAC(NwkSKey, B0 | MHDR | MACPayload)[0..3].

    ``fcnt`` is the full 32-bit counter although only its low 16 bits travel on air, which is why
    the receiver must reconstruct it (see ``gateway.lorawan.fcnt``) before checking the MIC.
    """
    if len(msg) > 255:
        raise ValueError("a LoRa PHY payload is at most 255 octets")
    b0 = _frame_block(0x49, UPLINK if uplink else DOWNLINK, dev_addr, fcnt, len(msg))
    return cmac_mic(key, b0 + msg)


def crypt_frm_payload(
    key: bytes, payload: bytes, *, uplink: bool, dev_addr: int, fcnt: int
) -> bytes:
    """Encrypt or decrypt FRMPayload (LoRaWAN 1.0.4 §4.3.3); the keystream XOR is its own inverse.

    ``key`` is the AppSKey for FPort 1..255 and the NwkSKey for FPort 0.
    """
    blocks = -(-len(payload) // BLOCK)
    direction = UPLINK if uplink else DOWNLINK
    a = b"".join(_frame_block(0x01, direction, dev_addr, fcnt, i) for i in range(1, blocks + 1))
    keystream = _ecb(key, a, encrypt=True)
    return bytes(p ^ s for p, s in zip(payload, keystream, strict=False))


def encrypt_join_accept(app_key: bytes, plaintext: bytes) -> bytes:
    """Network side: "encrypt" JoinNonce..CFList | MIC, which §6.2.6 defines as AES *decrypt*.

    Using decryption lets the end-device recover the frame with the AES encrypt it already has.
    """
    return _ecb(app_key, plaintext, encrypt=False)


def decrypt_join_accept(app_key: bytes, ciphertext: bytes) -> bytes:
    """Device side: recover JoinNonce..CFList | MIC with AES encrypt (§6.2.6)."""
    return _ecb(app_key, ciphertext, encrypt=True)


@dataclass(frozen=True)
class SessionKeys:
    """The two LoRaWAN 1.0.x session keys a successful join yields."""

    nwk_s_key: bytes
    app_s_key: bytes


def derive_session_keys(
    app_key: bytes, *, join_nonce: int, net_id: int, dev_nonce: int
) -> SessionKeys:
    """LoRaWAN 1.0.4 §6.2.6: aes128_encrypt(AppKey, 0x01|0x02 | JoinNonce | NetID | DevNonce | pad).

    JoinNonce is the AppNonce of earlier 1.0.x revisions.
    """
    tail = (
        join_nonce.to_bytes(3, "little")
        + net_id.to_bytes(3, "little")
        + dev_nonce.to_bytes(2, "little")
        + bytes(7)
    )
    both = _ecb(app_key, b"\x01" + tail + b"\x02" + tail, encrypt=True)
    return SessionKeys(nwk_s_key=both[:BLOCK], app_s_key=both[BLOCK:])
