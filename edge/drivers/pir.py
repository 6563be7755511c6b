"""A passive-infrared motion sensor (HC-SR501, AM312 and the like) on a GPIO pin, via gpiozero.

PIR modules see warm bodies moving, not rain, headlights or a swaying branch, which is what makes
them a good trigger next to (or in front of) image motion gating. Their output is a level that
stays high for the module's hold time; a rising edge between two polls is latched so a short
pulse is not missed. Tests and the simulator use gpiozero's MockFactory pins.
"""

from __future__ import annotations

import threading

from gpiozero import MotionSensor
from gpiozero.exc import GPIOZeroError


class PirError(RuntimeError):
    """The pin cannot be used: no GPIO on this machine, a wrong pin name, a pin in use."""


class Pir:
    def __init__(self, pin: int | str, *, queue_len: int = 1, sample_rate: float = 10.0) -> None:
        try:
            self.sensor = MotionSensor(pin, queue_len=queue_len, sample_rate=sample_rate)
        except GPIOZeroError as exc:
            raise PirError(
                f"PIR on pin {pin!r}: {exc} (set GPIOZERO_PIN_FACTORY, e.g. lgpio on a Pi 5)"
            ) from exc
        self.activations = 0
        self._latched = threading.Event()
        self.sensor.when_motion = self._on_motion

    def _on_motion(self) -> None:
        self.activations += 1
        self._latched.set()

    def triggered(self) -> bool:
        """Motion now, or a rising edge since the last call."""
        edge = self._latched.is_set()
        self._latched.clear()
        return edge or bool(self.sensor.motion_detected)

    def close(self) -> None:
        self.sensor.close()
