"""What passes in front of the camera: the five harmful animals of the brief, people, vehicles.

Each subject is drawn side-on from a few ellipses and strokes, with the marks a person (and a small
CNN) tells the species apart by: the bear's bulk and pale chest crescent, the boar's wedge body and
long snout, the macaque's red face and long limbs, the sika deer's thin legs, long neck, spots and
white rump, the serow's shaggy dark coat, pale throat and short horns. ``look`` draws one
individual's colours and proportions from a seeded generator; ``phase`` animates the gait.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scenes.paint import Body, Material

Look = dict[str, Any]
BLACK = Material((18, 18, 20), 40)


def _legs(
    b: Body,
    phase: float,
    hips: list[float],
    top: float,
    length: float,
    width: float,
    stride: float,
    far: Material,
) -> None:
    """Four legs: far pair first (darker), near pair after the body is drawn by the caller."""
    for i, u in enumerate(hips):
        b.leg(u, top, length, width, stride * math.sin(phase + math.pi * (i + 0.5)), far)


def _near_legs(
    b: Body,
    phase: float,
    hips: list[float],
    top: float,
    length: float,
    width: float,
    stride: float,
    m: Material,
) -> None:
    for i, u in enumerate(hips):
        b.leg(u, top, length, width, stride * math.sin(phase + math.pi * i), m)


def bear_look(rng: np.random.Generator) -> Look:
    fur = Material((24, 24, 28), 75).jitter(rng, 12)
    return {
        "fur": fur,
        "muzzle": Material((75, 100, 130), 115).jitter(rng, 15),
        "crescent": Material((220, 222, 225), 205).jitter(rng, 15),
        "bulk": rng.uniform(0.9, 1.1),
    }


def bear(b: Body, phase: float, k: Look) -> None:
    fur, bulk = k["fur"], k["bulk"]
    hips = [-0.32, 0.3]
    _legs(b, phase, hips, -0.3, 0.3, 0.12, 0.08, fur.scaled(0.8))
    b.ellipse(0, -0.42, 0.5, 0.24 * bulk, 0, fur)
    b.ellipse(0.18, -0.55, 0.25, 0.15 * bulk, -8, fur)
    b.ellipse(0.56, -0.46, 0.16, 0.14, 0, fur)
    b.ellipse(0.5, -0.6, 0.05, 0.05, 0, fur)
    b.ellipse(0.62, -0.6, 0.05, 0.05, 0, fur)
    b.ellipse(0.71, -0.43, 0.09, 0.06, 12, k["muzzle"])
    b.ellipse(0.79, -0.45, 0.025, 0.025, 0, BLACK)
    crescent = [
        (0.34, -0.46),
        (0.43, -0.3),
        (0.52, -0.46),
        (0.48, -0.46),
        (0.43, -0.36),
        (0.38, -0.46),
    ]
    b.poly(crescent, k["crescent"])
    _near_legs(b, phase, hips, -0.3, 0.3, 0.12, 0.08, fur)


def boar_look(rng: np.random.Generator) -> Look:
    return {
        "coat": Material((45, 58, 72), 95).jitter(rng, 15),
        "mane": Material((28, 34, 40), 70).jitter(rng, 10),
        "snout": Material((110, 120, 150), 130).jitter(rng, 15),
    }


def boar(b: Body, phase: float, k: Look) -> None:
    coat = k["coat"]
    hips = [-0.3, 0.25]
    _legs(b, phase, hips, -0.22, 0.22, 0.06, 0.07, coat.scaled(0.7))
    b.poly(
        [(-0.5, -0.35), (-0.35, -0.55), (0.25, -0.66), (0.42, -0.55), (0.45, -0.25), (-0.4, -0.2)],
        coat,
    )
    b.poly([(0.4, -0.58), (0.75, -0.33), (0.78, -0.24), (0.42, -0.28)], coat)
    b.ellipse(0.77, -0.29, 0.025, 0.05, 0, k["snout"])
    b.poly([(0.38, -0.6), (0.42, -0.72), (0.47, -0.58)], coat)
    b.line((-0.35, -0.56), (0.3, -0.66), 0.05, k["mane"])
    b.line((-0.5, -0.35), (-0.58, -0.25), 0.02, coat)
    _near_legs(b, phase, hips, -0.22, 0.22, 0.06, 0.07, coat)


def macaque_look(rng: np.random.Generator) -> Look:
    return {
        "fur": Material((95, 115, 135), 140).jitter(rng, 18),
        "face": Material((95, 95, 205), 150).jitter(rng, 15),
        "sitting": bool(rng.random() < 0.35),
    }


def macaque(b: Body, phase: float, k: Look) -> None:
    fur, face = k["fur"], k["face"]
    if k["sitting"]:
        b.ellipse(0, -0.38, 0.22, 0.34, 10, fur)
        b.ellipse(0.1, -0.8, 0.14, 0.14, 0, fur)
        b.ellipse(0.18, -0.78, 0.08, 0.1, 0, face)
        b.line((0.12, -0.5), (0.22, -0.1), 0.07, fur)
        b.ellipse(-0.05, -0.05, 0.25, 0.07, 0, fur)
        return
    hips = [-0.28, 0.28]
    _legs(b, phase, hips, -0.4, 0.4, 0.07, 0.12, fur.scaled(0.8))
    b.ellipse(0, -0.48, 0.36, 0.16, -8, fur)
    b.line((-0.36, -0.5), (-0.46, -0.62), 0.05, fur)
    b.ellipse(0.44, -0.6, 0.14, 0.13, 0, fur)
    b.ellipse(0.52, -0.58, 0.08, 0.09, 0, face)
    _near_legs(b, phase, hips, -0.4, 0.4, 0.07, 0.12, fur)


def deer_look(rng: np.random.Generator) -> Look:
    summer = bool(rng.random() < 0.6)
    coat = Material((45, 85, 150), 150) if summer else Material((70, 85, 100), 130)
    return {
        "coat": coat.jitter(rng, 15),
        "rump": Material((225, 228, 230), 215).jitter(rng, 10),
        "spots": summer,
        "antlers": bool(rng.random() < 0.45),
        "spot_seed": int(rng.integers(1 << 30)),
    }


def deer(b: Body, phase: float, k: Look) -> None:
    coat = k["coat"]
    hips = [-0.3, 0.28]
    _legs(b, phase, hips, -0.55, 0.55, 0.045, 0.12, coat.scaled(0.75))
    b.ellipse(0, -0.68, 0.42, 0.17, 0, coat)
    b.poly([(0.28, -0.78), (0.48, -1.12), (0.58, -1.08), (0.42, -0.62)], coat)
    b.ellipse(0.6, -1.1, 0.13, 0.06, 20, coat)
    b.poly([(0.5, -1.15), (0.44, -1.27), (0.55, -1.17)], coat)
    b.ellipse(-0.38, -0.72, 0.07, 0.1, 0, k["rump"])
    if k["spots"]:
        rng = np.random.default_rng(k["spot_seed"])
        for _ in range(12):
            u, v = rng.uniform(-0.3, 0.3), rng.uniform(-0.78, -0.62)
            b.ellipse(u, v, 0.025, 0.02, 0, k["rump"])
    if k["antlers"]:
        tine = coat.scaled(0.6)
        b.line((0.55, -1.15), (0.45, -1.45), 0.02, tine)
        b.line((0.5, -1.3), (0.62, -1.42), 0.018, tine)
        b.line((0.47, -1.4), (0.36, -1.5), 0.018, tine)
    _near_legs(b, phase, hips, -0.55, 0.55, 0.045, 0.12, coat)


def serow_look(rng: np.random.Generator) -> Look:
    return {
        "coat": Material((52, 52, 58), 95).jitter(rng, 12),
        "throat": Material((190, 192, 195), 185).jitter(rng, 15),
        "shag": int(rng.integers(1 << 30)),
    }


def serow(b: Body, phase: float, k: Look) -> None:
    coat = k["coat"]
    hips = [-0.28, 0.27]
    _legs(b, phase, hips, -0.42, 0.42, 0.08, 0.09, coat.scaled(0.75))
    b.ellipse(0, -0.6, 0.42, 0.22, 0, coat)
    rng = np.random.default_rng(k["shag"])
    for u in np.linspace(-0.35, 0.35, 9):
        b.line((u, -0.45), (u + rng.uniform(-0.03, 0.03), -0.36), 0.035, coat)
    b.ellipse(0.45, -0.78, 0.14, 0.2, -30, coat)
    b.ellipse(0.62, -0.9, 0.15, 0.09, 35, coat)
    b.ellipse(0.42, -0.66, 0.08, 0.14, -25, k["throat"])
    b.line((0.55, -1.0), (0.48, -1.12), 0.025, BLACK)
    b.ellipse(0.5, -1.02, 0.07, 0.03, -40, coat)
    _near_legs(b, phase, hips, -0.42, 0.42, 0.08, 0.09, coat)


CLOTHES = [
    (40, 40, 200),
    (200, 90, 30),
    (40, 160, 230),
    (60, 60, 60),
    (30, 200, 200),
    (150, 150, 150),
    (50, 120, 50),
    (200, 200, 220),
]


def person_look(rng: np.random.Generator) -> Look:
    top = CLOTHES[rng.integers(len(CLOTHES))]
    bottom = CLOTHES[rng.integers(len(CLOTHES))]
    return {
        "top": Material(top, int(rng.uniform(110, 220))).jitter(rng, 20),
        "bottom": Material(bottom, int(rng.uniform(60, 180))).jitter(rng, 20),
        "skin": Material((120, 160, 205), 190).jitter(rng, 15),
        "hat": bool(rng.random() < 0.4),
    }


def person(b: Body, phase: float, k: Look) -> None:
    """``b.length`` is the person's height."""
    swing = 0.12 * math.sin(phase)
    b.line((0, -0.5), (swing, 0), 0.08, k["bottom"].scaled(0.8))
    b.line((0, -0.5), (-swing, 0), 0.08, k["bottom"])
    b.poly([(-0.1, -0.82), (0.1, -0.82), (0.09, -0.48), (-0.09, -0.48)], k["top"])
    b.line((0.02, -0.8), (0.02 + swing * 0.8, -0.52), 0.05, k["top"].scaled(0.85))
    b.ellipse(0.01, -0.9, 0.06, 0.07, 0, k["skin"])
    if k["hat"]:
        b.ellipse(0.01, -0.96, 0.075, 0.03, 0, k["top"].scaled(0.6))


CAR_PAINT = [
    (240, 240, 240),
    (30, 30, 30),
    (40, 40, 180),
    (150, 110, 40),
    (170, 170, 175),
    (60, 120, 60),
]


def vehicle_look(rng: np.random.Generator) -> Look:
    paint = CAR_PAINT[rng.integers(len(CAR_PAINT))]
    return {
        "paint": Material(paint, int(rng.uniform(60, 220))).jitter(rng, 12),
        "glass": Material((70, 55, 45), 35).jitter(rng, 10),
        "van": bool(rng.random() < 0.35),
    }


def vehicle(b: Body, phase: float, k: Look) -> None:
    """Side view of a car or kei van; ``phase`` turns the wheels."""
    top = -0.52 if k["van"] else -0.42
    b.poly([(-0.5, -0.1), (-0.5, -0.24), (0.5, -0.26), (0.5, -0.1)], k["paint"])
    cabin = [(-0.45, -0.24), (-0.4, top), (0.2 if not k["van"] else 0.4, top), (0.35, -0.25)]
    b.poly(cabin, k["paint"])
    b.poly([(-0.36, -0.26), (-0.33, top + 0.04), (0.12, top + 0.04), (0.25, -0.26)], k["glass"])
    for u in (-0.3, 0.3):
        b.ellipse(u, -0.1, 0.1, 0.1, 0, BLACK)
        b.ellipse(u, -0.1, 0.045, 0.045, 0, Material((150, 150, 150), 150))
        b.line((u, -0.1), (u + 0.04 * math.cos(phase), -0.1 + 0.04 * math.sin(phase)), 0.015, BLACK)
    b.ellipse(0.49, -0.2, 0.02, 0.02, 0, Material((200, 240, 250), 250))


@dataclass(frozen=True)
class Species:
    """How to draw one kind of subject and how much of its body box it fills.

    ``extent`` is (back, front, top) in body units: the figure spans u in [back, front] and v in
    [top, 0]. ``size`` is the usual body length (height for a person) in metres.
    """

    draw: Callable[[Body, float, Look], None]
    look: Callable[[np.random.Generator], Look]
    extent: tuple[float, float, float]
    size: tuple[float, float]
    speed: float  # m/s walking past the camera


SPECIES: dict[str, Species] = {
    "bear": Species(bear, bear_look, (-0.5, 0.82, -0.68), (1.2, 1.6), 0.9),
    "boar": Species(boar, boar_look, (-0.58, 0.8, -0.72), (1.0, 1.4), 1.1),
    "macaque": Species(macaque, macaque_look, (-0.46, 0.6, -0.94), (0.5, 0.7), 1.0),
    "deer": Species(deer, deer_look, (-0.45, 0.73, -1.5), (1.0, 1.3), 1.2),
    "serow": Species(serow, serow_look, (-0.42, 0.77, -1.12), (0.9, 1.2), 0.8),
    "person": Species(person, person_look, (-0.15, 0.15, -1.0), (1.5, 1.85), 1.2),
    "vehicle": Species(vehicle, vehicle_look, (-0.5, 0.5, -0.52), (3.4, 4.5), 6.0),
}
