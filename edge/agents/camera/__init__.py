"""The wildlife camera agent; the only part of machimori that imports OpenCV and LiteRT."""

from edge.agents.camera.agent import CameraAgent

__all__ = ["CameraAgent"]
