"""Procedurally drawn RGB stimulus images with semantic categories.

Each image shows one object of a category in :data:`CATEGORIES` (a face, a sign with text,
an outdoor scene, a plate of food or an animal) at a random position, size, orientation and
colour on a weakly textured background, with a COCO-style caption. Images are drawn with
Pillow on a supersampled canvas and downsampled with a Lanczos filter, so edges stay smooth
at any output size.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES: tuple[str, ...] = ("face", "text", "scene", "food", "animal")
#: Subtypes of each category, in the order of :attr:`StimulusSet.subtype`.
SUBTYPES: dict[str, tuple[str, ...]] = {
    "face": ("smiling", "surprised"), "text": ("white", "blue", "green", "grey"),
    "scene": ("tree", "autumn tree", "house"), "food": ("white", "blue", "yellow"),
    "animal": ("brown", "black", "grey", "white", "orange"),
}

_MIN_SIZE = 16
_CANVAS = 256  # smallest supersampled canvas side (pixels); at least 2x supersampling
_RADIUS = (0.15, 0.45)  # object radius range, fraction of the image side
_MAX_ROTATION = 35.0  # degrees either way, objects
_MAX_TILT = 8.0  # degrees either way, scene horizons
_CONTRAST = 100.0  # smallest RGB distance (0..255 scale) between an object's main colour and the background

_COLOURS = {
    "red": (200, 40, 40), "orange": (235, 130, 30), "yellow": (235, 210, 50), "green": (60, 160, 70),
    "blue": (50, 90, 200), "purple": (130, 60, 170), "pink": (235, 140, 180), "brown": (130, 85, 45),
    "grey": (128, 128, 128), "white": (235, 235, 235), "black": (30, 30, 30),
}
_SKIN = ((245, 210, 180), (225, 180, 140), (200, 150, 110), (160, 110, 75), (115, 75, 50))
_HAIR = ((25, 20, 20), (90, 55, 30), (200, 160, 80), (150, 150, 150))
_IRIS = ((70, 45, 25), (50, 100, 170), (60, 120, 70))
_SIGNS = {"white": (242, 242, 236), "blue": (170, 195, 240), "green": (175, 220, 180), "grey": (200, 200, 205)}
_INKS = ((20, 20, 25), (20, 30, 90), (110, 20, 20))
_PLATES = {"white": (245, 245, 240), "blue": (150, 180, 230), "yellow": (240, 225, 160)}
_FOODS = {"red": (200, 40, 35), "green": (70, 160, 50), "yellow": (240, 200, 50), "orange": (240, 130, 30),
          "brown": (130, 80, 40)}
_ANIMALS = ("brown", "black", "grey", "white", "orange")
_SKIES = {"blue": ((60, 110, 210), (175, 210, 245)), "orange": ((220, 110, 60), (250, 205, 130)),
          "grey": ((115, 120, 130), (200, 200, 205))}
_GROUNDS = {"green grass": (70, 145, 60), "yellow sand": (215, 190, 120), "white snow": (232, 236, 244)}
_NUMBERS = {2: "two", 3: "three", 4: "four"}

# Letter-like glyphs: polylines in a unit cell, x right and y down in [0, 1].
_GLYPHS = (
    (((0, 0), (0, 1), (1, 1)),),
    (((0, 0), (1, 0)), ((0.5, 0), (0.5, 1))),
    (((1, 0), (0, 0), (0, 1), (1, 1)), ((0, 0.5), (0.8, 0.5))),
    (((0, 0), (0, 1)), ((1, 0), (1, 1)), ((0, 0.5), (1, 0.5))),
    (((0, 0), (0.5, 1), (1, 0)),),
    (((0, 1), (0.5, 0), (1, 1)), ((0.25, 0.6), (0.75, 0.6))),
    (((0, 1), (0, 0), (1, 1), (1, 0)),),
    (((0.5, 0), (0.5, 1)),),
    (((0, 0), (1, 1)), ((1, 0), (0, 1))),
    (((0, 0), (1, 0), (0, 1), (1, 1)),),
    (((0, 0), (0, 1), (1, 1), (1, 0)),),
    (((1, 0), (0, 0), (0, 1), (1, 1), (1, 0.5), (0.5, 0.5)),),
    (((0, 1), (0, 0), (1, 0), (1, 0.5), (0, 0.5)),),
    (((0, 0), (1, 0), (1, 1), (0, 1), (0, 0)),),
)


@dataclass(frozen=True)
class StimulusSet:
    """Stimulus images with their category, caption and object geometry.

    Attributes
    ----------
    images : ndarray of uint8, shape (n_images, size, size, 3)
        RGB images.
    category : ndarray of int64, shape (n_images,)
        Index into :data:`CATEGORIES`.
    captions : list of str, length n_images
        One COCO-style caption per image.
    object_size : ndarray of float64, shape (n_images,)
        Object radius as a fraction of the image side (0..1). Scenes fill the frame; for
        them this is the radius of the main landmark (a tree or a house).
    object_xy : ndarray of float64, shape (n_images, 2)
        Object centre (x, y) as fractions of the image width and height (0..1), y down.
    subtype : ndarray of int64, shape (n_images,)
        Index into ``SUBTYPES[CATEGORIES[category]]``: a face's expression, a sign's colour, a
        scene's landmark, a plate's colour, an animal's colour.
    count : ndarray of int64, shape (n_images,)
        Things in the image: 1 face or animal, lines of text, trees of a scene (landmark
        included), pieces of food.
    colour : ndarray of float64, shape (n_images, 3)
        Main colour, RGB in 0..1: skin, sign, sky, plate or body.
    """

    images: np.ndarray
    category: np.ndarray
    captions: list[str]
    object_size: np.ndarray
    object_xy: np.ndarray
    subtype: np.ndarray
    count: np.ndarray
    colour: np.ndarray


def make_stimuli(n_images: int, size: int = 64, seed: int | np.random.Generator = 0) -> StimulusSet:
    """Draw a set of categorised stimulus images.

    Categories cycle through shuffled blocks of :data:`CATEGORIES`, so counts differ by at
    most one and every category appears once ``n_images >= len(CATEGORIES)``.

    Parameters
    ----------
    n_images : int
        Number of images, >= 1.
    size : int, default 64
        Image side in pixels, >= 16.
    seed : int or numpy.random.Generator, default 0
        Seed or generator; the same seed gives byte-identical images. A generator is
        advanced in place.

    Returns
    -------
    StimulusSet
        Images of shape (n_images, size, size, 3) and their annotations.

    Raises
    ------
    ValueError
        If ``n_images < 1`` or ``size < 16``.
    """
    n_images, size = operator.index(n_images), operator.index(size)
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if size < _MIN_SIZE:
        raise ValueError(f"size must be >= {_MIN_SIZE} pixels, got {size}")
    rng = np.random.default_rng(seed)
    n_cat = len(CATEGORIES)
    n_blocks = -(-n_images // n_cat)
    category = np.concatenate([rng.permutation(n_cat) for _ in range(n_blocks)])[:n_images].astype(np.int64)
    side = size * max(2, -(-_CANVAS // size))

    images = np.empty((n_images, size, size, 3), np.uint8)
    captions = []
    object_size, object_xy = np.empty(n_images), np.empty((n_images, 2))
    subtype, count, colour = np.empty(n_images, np.int64), np.empty(n_images, np.int64), np.empty((n_images, 3))
    for i, cat in enumerate(category):
        drawn = _draw_image(CATEGORIES[cat], side, rng)
        images[i] = np.asarray(drawn.canvas.resize((size, size), Image.LANCZOS))
        captions.append(drawn.caption)
        object_size[i], object_xy[i] = drawn.radius, drawn.xy
        subtype[i] = SUBTYPES[CATEGORIES[cat]].index(drawn.subtype)
        count[i], colour[i] = drawn.count, np.asarray(drawn.colour) / 255.0
    return StimulusSet(images, category, captions, object_size, object_xy, subtype, count, colour)


# -- drawing helpers --------------------------------------------------------------------------

class _Pen:
    """Draws on an image in its own coordinates: pixel = origin + unit * coordinate."""

    def __init__(self, image: Image.Image, origin: float, unit: float):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.origin = origin
        self.unit = unit

    def _px(self, points) -> list[tuple[float, float]]:
        return [(self.origin + self.unit * x, self.origin + self.unit * y) for x, y in points]

    def _width(self, width: float) -> int:
        return max(1, round(width * self.unit))

    def ellipse(self, x, y, rx, ry, fill) -> None:
        self.draw.ellipse(self._px([(x - rx, y - ry), (x + rx, y + ry)]), fill=fill)

    def arc(self, x, y, rx, ry, start, end, fill, width) -> None:
        self.draw.arc(self._px([(x - rx, y - ry), (x + rx, y + ry)]), start, end, fill=fill,
                      width=self._width(width))

    def rectangle(self, x0, y0, x1, y1, fill, outline=None, width=0.0, radius=0.0) -> None:
        self.draw.rounded_rectangle(self._px([(x0, y0), (x1, y1)]), radius=round(radius * self.unit), fill=fill,
                                    outline=outline, width=self._width(width) if outline else 0)

    def polygon(self, points, fill) -> None:
        self.draw.polygon(self._px(points), fill=fill)

    def line(self, points, fill, width) -> None:
        self.draw.line(self._px(points), fill=fill, width=self._width(width), joint="curve")


def _jitter(rgb, rng: np.random.Generator, amount: int = 12) -> tuple[int, ...]:
    """A colour with each channel moved by up to ``amount`` (0..255 scale)."""
    return tuple(int(c) for c in np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255))


def _shade(rgb, factor: float) -> tuple[int, ...]:
    """A colour scaled by ``factor`` (< 1 darker, > 1 lighter), clipped to 0..255."""
    return tuple(int(min(255, c * factor)) for c in rgb)


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _where(x: float, y: float) -> str:
    """Position phrase of a centre (fractions of width and height, y down)."""
    col = "left" if x < 0.4 else "right" if x > 0.6 else ""
    row = "top" if y < 0.4 else "bottom" if y > 0.6 else ""
    if col and row:
        return f"in the {row} {col}"
    if col:
        return f"on the {col}"
    return f"at the {row}" if row else "in the centre"


def _size_word(radius: float) -> str:
    return "small " if radius < 0.22 else "large " if radius > 0.36 else ""


def _background(side: int, rng: np.random.Generator, avoid: tuple[int, ...]) -> tuple[Image.Image, str]:
    """A random-colour background with a weak low-frequency texture (k x k noise, upsampled).

    The colour is drawn from those at least ``_CONTRAST`` (RGB distance) away from ``avoid``.
    """
    names = [n for n, rgb in _COLOURS.items() if np.linalg.norm(np.subtract(rgb, avoid)) >= _CONTRAST]
    name = str(rng.choice(names))
    k = int(rng.integers(2, 6))
    texture = np.asarray(_COLOURS[name], float) + rng.normal(0.0, rng.uniform(0.0, 10.0), (k, k, 3))
    small = Image.fromarray(np.clip(texture, 0, 255).astype(np.uint8))
    return small.resize((side, side), Image.BICUBIC), name


@dataclass(frozen=True)
class _Drawn:
    """One supersampled image and what it shows."""

    canvas: Image.Image
    caption: str
    radius: float
    xy: np.ndarray
    subtype: str
    count: int
    colour: tuple[int, ...]


@dataclass(frozen=True)
class _Object:
    """What an object drawer drew: caption phrase, main colour (the background avoids it), subtype, count."""

    phrase: str
    rgb: tuple[int, ...]
    subtype: str
    count: int = 1


def _draw_image(name: str, side: int, rng: np.random.Generator) -> _Drawn:
    """One supersampled image of a category."""
    if name == "scene":
        return _draw_scene(side, rng)
    radius = rng.uniform(*_RADIUS)
    xy = rng.uniform(0.7 * radius, 1.0 - 0.7 * radius, 2)
    layer = Image.new("RGBA", (round(2 * radius * side),) * 2, (0, 0, 0, 0))
    drawn = _OBJECTS[name](_Pen(layer, layer.width / 2, layer.width / 2), rng)
    main_rgb = drawn.rgb
    canvas, bg = _background(side, rng, main_rgb)
    if name != "text" and rng.random() < 0.5:
        layer = layer.transpose(Image.FLIP_LEFT_RIGHT)
    # Rotate premultiplied so transparent pixels do not darken the edges.
    angle = rng.uniform(-_MAX_ROTATION, _MAX_ROTATION)
    layer = layer.convert("RGBa").rotate(angle, resample=Image.BILINEAR, expand=True).convert("RGBA")
    canvas.paste(layer, (round(xy[0] * side - layer.width / 2), round(xy[1] * side - layer.height / 2)), layer)
    caption = (f"{_article(_size_word(radius) + drawn.phrase).capitalize()} {_where(*xy)} of {_article(bg)} "
               "background.")
    return _Drawn(canvas, caption, radius, xy, drawn.subtype, drawn.count, drawn.rgb)


# -- objects: drawn in a layer with coordinates in [-1, 1] (1 = object radius) -------------------

def _face(pen: _Pen, rng: np.random.Generator) -> _Object:
    skin = _jitter(_SKIN[rng.integers(len(_SKIN))], rng)
    hair = _jitter(_HAIR[rng.integers(len(_HAIR))], rng)
    pen.ellipse(0, -0.12, 0.8, 0.86, hair)
    for s in (-1, 1):
        pen.ellipse(s * 0.7, 0.08, 0.12, 0.18, _shade(skin, 0.9))
    pen.ellipse(0, 0.06, 0.7, 0.9, skin)
    pen.ellipse(0, -0.62, 0.56, 0.2, hair)
    iris = _IRIS[rng.integers(len(_IRIS))]
    for s in (-1, 1):
        pen.ellipse(s * 0.28, -0.12, 0.15, 0.09, (250, 250, 250))
        pen.ellipse(s * 0.28, -0.12, 0.07, 0.08, iris)
        pen.ellipse(s * 0.28, -0.12, 0.03, 0.035, (10, 10, 10))
        pen.line([(s * 0.4, -0.3), (s * 0.15, -0.3)], hair, 0.05)
    pen.polygon([(0, -0.05), (-0.09, 0.25), (0.09, 0.25)], _shade(skin, 0.8))
    lips = _jitter((170, 60, 60), rng)
    if rng.random() < 0.7:
        expression = "smiling"
        pen.arc(0, 0.3, 0.3, 0.22, 20, 160, lips, 0.07)
    else:
        expression = "surprised"
        pen.ellipse(0, 0.5, 0.1, 0.13, lips)
    return _Object(f"{expression} face", skin, expression)


def _text(pen: _Pen, rng: np.random.Generator) -> _Object:
    sign = str(rng.choice(list(_SIGNS)))
    half_h = rng.uniform(0.5, 0.8)
    pen.rectangle(-0.95, -half_h, 0.95, half_h, _jitter(_SIGNS[sign], rng, 6), _shade(_SIGNS[sign], 0.6),
                  0.04, 0.08)
    ink = _INKS[rng.integers(len(_INKS))]
    n_rows = int(rng.integers(2, 5))
    pitch = (2 * half_h - 0.3) / n_rows  # row spacing
    gh = min(0.6 * pitch, 0.25)  # glyph height
    gw, gap = 0.55 * gh, 0.35 * gh
    for r in range(n_rows):
        top = -half_h + 0.15 + r * pitch + (pitch - gh) / 2
        end = 0.8 if r < n_rows - 1 else rng.uniform(-0.2, 0.8)
        x = -0.8
        for n_letters, glyph in zip(rng.integers(2, 6, 20), rng.integers(0, len(_GLYPHS), (20, 5))):
            n_fit = min(n_letters, int((end - x) // (gw + gap)))  # shorten the word that ends the row
            if n_fit < 1:
                break
            for g in glyph[:n_fit]:
                for stroke in _GLYPHS[g]:
                    pen.line([(x + gw * u, top + gh * v) for u, v in stroke], ink, 0.12 * gh)
                x += gw + gap
            x += gw
    return _Object(f"{sign} sign with {_NUMBERS[n_rows]} lines of text", _SIGNS[sign], sign, n_rows)


def _food(pen: _Pen, rng: np.random.Generator) -> _Object:
    plate = str(rng.choice(list(_PLATES)))
    rgb = _jitter(_PLATES[plate], rng, 6)
    pen.ellipse(0, 0, 0.95, 0.95, _shade(rgb, 0.82))
    pen.ellipse(0, 0, 0.8, 0.8, rgb)
    pen.ellipse(0, 0, 0.62, 0.62, _shade(rgb, 0.95))
    names = list(_FOODS)
    foods = [names[i] for i in rng.integers(0, len(names), int(rng.integers(3, 7)))]
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    for food in foods:
        cx, cy = rng.uniform(-0.38, 0.38, 2)
        radius = rng.uniform(0.14, 0.26) * (1 + 0.25 * rng.uniform(-1, 1, angles.size))
        pen.polygon(list(zip(cx + radius * np.cos(angles), cy + radius * np.sin(angles))), _jitter(_FOODS[food], rng))
    distinct = list(dict.fromkeys(foods))[:2]
    return _Object(f"{plate} plate of {' and '.join(distinct)} food", rgb, plate, len(foods))


def _animal(pen: _Pen, rng: np.random.Generator) -> _Object:
    colour = str(rng.choice(_ANIMALS))
    body = _jitter(_COLOURS[colour], rng)
    dark = _shade(body, 0.75) if colour != "black" else (60, 60, 60)
    length, leg = rng.uniform(0.45, 0.6), rng.uniform(0.55, 0.8)
    for x in (-0.75 * length, -0.5 * length, 0.5 * length, 0.75 * length):
        pen.line([(x, 0.05), (x, leg)], dark if x in (-0.5 * length, 0.75 * length) else body, 0.1)
    tail_y = rng.uniform(-0.5, 0.3)
    pen.line([(-0.9 * length, -0.05), (-length - 0.2, tail_y * 0.5), (-length - 0.35, tail_y)], body, 0.07)
    pen.ellipse(0, 0.05, length, 0.28, body)
    pen.polygon([(0.6 * length, -0.1), (length + 0.05, -0.45), (length + 0.25, -0.3), (0.8 * length, 0.15)], body)
    hx = length + 0.2
    pen.polygon([(hx - 0.15, -0.5), (hx - 0.1, -0.72), (hx + 0.02, -0.52)], dark)
    pen.ellipse(hx, -0.4, 0.2, 0.17, body)
    pen.ellipse(hx + 0.18, -0.35, 0.12, 0.09, body)
    pen.ellipse(hx + 0.28, -0.37, 0.035, 0.03, (15, 15, 15))
    pen.ellipse(hx + 0.05, -0.45, 0.035, 0.035, (15, 15, 15) if colour != "black" else (230, 230, 230))
    return _Object(f"{colour} animal", body, colour)


_OBJECTS = {"face": _face, "text": _text, "food": _food, "animal": _animal}


# -- scenes: drawn on the whole canvas with coordinates in [0, 1] ------------------------------

def _draw_scene(side: int, rng: np.random.Generator) -> _Drawn:
    """A landscape filling the frame; the recorded object is its main landmark."""
    sky = str(rng.choice(list(_SKIES)))
    top, low = (np.asarray(c, float) for c in _SKIES[sky])
    gradient = np.linspace(top, low, side)[:, None, :] + rng.normal(0, 4, 3)
    canvas = Image.fromarray(np.broadcast_to(np.clip(gradient, 0, 255), (side, side, 3)).astype(np.uint8))
    pen = _Pen(canvas, 0.0, side)

    horizon = rng.uniform(0.4, 0.65)
    slope = math.tan(math.radians(rng.uniform(-_MAX_TILT, _MAX_TILT)))
    ground_name = str(rng.choice(list(_GROUNDS)))
    ground = _jitter(_GROUNDS[ground_name], rng)
    sun = rng.random() < 0.5
    if sun:
        pen.ellipse(rng.uniform(0.1, 0.9), rng.uniform(0.08, horizon - 0.15), 0.07, 0.07, _jitter((250, 230, 120), rng))
    for _ in range(int(rng.integers(0, 4))):
        x = rng.uniform(0, 1)
        pen.ellipse(x, horizon + slope * (x - 0.5), rng.uniform(0.2, 0.45), rng.uniform(0.06, 0.18),
                    _shade(_jitter(ground, rng), 0.85))
    pen.polygon([(-0.1, horizon - 0.6 * slope), (1.1, horizon + 0.6 * slope), (1.1, 1.1), (-0.1, 1.1)], ground)
    small_trees = rng.uniform(0, 1, int(rng.integers(0, 4)))
    for x in small_trees:
        _tree(pen, x, horizon + slope * (x - 0.5) - 0.04, 0.05, rng)

    radius = rng.uniform(*_RADIUS)
    x = rng.uniform(0.7 * radius, 1.0 - 0.7 * radius)
    base = rng.uniform(max(horizon + slope * (x - 0.5) + 0.05, radius + 0.02), 1.0)
    house = rng.random() >= 0.5
    landmark = _house(pen, x, base - radius, radius, rng) if house else _tree(pen, x, base - radius, radius, rng)
    xy = np.array([x, base - radius])
    caption = (f"An outdoor scene with {_article(landmark)} {_where(*xy)}, {ground_name} "
               f"and {_article(sky)} sky{' with a sun' if sun else ''}.")
    sky_rgb = tuple(int(c) for c in (top + low) / 2)
    return _Drawn(canvas, caption, radius, xy, "house" if house else landmark, len(small_trees) + (not house), sky_rgb)


def _tree(pen: _Pen, x: float, y: float, r: float, rng: np.random.Generator) -> str:
    """A tree of radius ``r`` centred at (x, y); returns its caption phrase."""
    pen.rectangle(x - 0.12 * r, y, x + 0.12 * r, y + r, _jitter((100, 65, 35), rng))
    autumn = rng.random() < 0.25
    crown = _jitter((225, 120, 30) if autumn else (45, 120, 45), rng, 20)
    pen.ellipse(x, y - 0.25 * r, 0.65 * r, 0.75 * r, crown)
    return "autumn tree" if autumn else "tree"


def _house(pen: _Pen, x: float, y: float, r: float, rng: np.random.Generator) -> str:
    """A house of radius ``r`` centred at (x, y); returns its caption phrase."""
    wall = str(rng.choice(["white", "yellow", "red"]))
    pen.rectangle(x - 0.7 * r, y - 0.1 * r, x + 0.7 * r, y + r, _jitter(_COLOURS[wall], rng))
    pen.polygon([(x - 0.85 * r, y - 0.05 * r), (x + 0.85 * r, y - 0.05 * r), (x, y - r)],
                _jitter((90, 50, 40), rng, 20))
    pen.rectangle(x - 0.15 * r, y + 0.45 * r, x + 0.15 * r, y + r, (70, 45, 30))
    for s in (-1, 1):
        pen.rectangle(x + s * 0.45 * r - 0.13 * r, y + 0.15 * r, x + s * 0.45 * r + 0.13 * r, y + 0.4 * r,
                      (150, 200, 235), (60, 60, 60), 0.03 * r)
    return f"{wall} house"
