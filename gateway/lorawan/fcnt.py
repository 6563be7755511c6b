"""Frame-counter reconstruction and replay decisions for received data frames.

Only the low 16 bits of the 32-bit FCnt travel on air (LoRaWAN 1.0.4 §4.3.1.5), so the receiver
infers the high bits from the last counter it accepted, the way ChirpStack does. The MIC is then
checked with the reconstructed counter; only after that succeeds may the caller store it as the
new ``last``. A frame repeating the last counter is a retransmission (NbTrans, or a confirmed
uplink whose ACK was lost); anything else at or behind it is a replay and is rejected.

``MAX_FCNT_GAP`` bounds how many frames may be lost between two accepted ones. LoRaWAN 1.0.3
§4.3.1.5 defined it as 16384 (LoRa Server accepted ``received - expected < MAX_FCNT_GAP``); 1.0.4
dropped it and relies on the MIC alone, which ``max_gap=None`` reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_FCNT_GAP = 16384
FCNT_MAX = 0xFFFFFFFF


class Verdict(Enum):
    """Accept as new, treat as a repeat of the last frame, or drop."""

    NEW = "new"
    RETRANSMISSION = "retransmission"
    REJECT = "reject"


@dataclass(frozen=True)
class FCntDecision:
    """What to do with a frame. ``fcnt`` is the full counter to check the MIC with, or None.

    ``reason`` is set on rejections only: ``fcnt_replay`` (an old counter), ``fcnt_gap``
    (``max_gap`` or more frames skipped) or ``fcnt_exhausted`` (the 32-bit counter has run out,
    the device must re-join).
    """

    verdict: Verdict
    fcnt: int | None
    reason: str | None = None


def _reject(reason: str) -> FCntDecision:
    return FCntDecision(Verdict.REJECT, None, reason)


def reconstruct_fcnt(
    last: int | None, received: int, *, max_gap: int | None = MAX_FCNT_GAP
) -> FCntDecision:
    """Decide on a frame whose 16-bit FCnt field is ``received``.

    ``last`` is the last accepted 32-bit counter of the session, None if none was accepted since
    the (re-)join or activation, when the next expected counter is 0.
    """
    if not 0 <= received <= 0xFFFF:
        raise ValueError("the FCnt field is 16 bits")
    if last is not None and received == last & 0xFFFF:
        return FCntDecision(Verdict.RETRANSMISSION, last)
    expected = 0 if last is None else last + 1
    ahead = (received - expected) & 0xFFFF  # frames lost in between, allowing for rollover
    if max_gap is not None and ahead >= max_gap:
        # Name it after the nearer reading of the 16 bits: an old counter or a far jump ahead.
        replay = last is not None and (last - received) & 0xFFFF < ahead
        return _reject("fcnt_replay" if replay else "fcnt_gap")
    if expected + ahead > FCNT_MAX:
        return _reject("fcnt_exhausted")
    return FCntDecision(Verdict.NEW, expected + ahead)
