"""Text on video frames with a built-in 5x7 bitmap font: no font file, no extra dependency.

Upper case, digits and common punctuation; lower case is drawn as upper case, anything else as a
blank. Enough for an instruction and a status line over an evaluation video.
"""

from __future__ import annotations

import numpy as np

GLYPH_W, GLYPH_H = 5, 7  # [px] at scale 1; characters advance GLYPH_W + 1

# Each glyph: 7 rows of 5 pixels, "#" on.
_ROWS = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "####. ....# ....# .###. ....# ....# ####.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "/": "....# ....# ...#. ..#.. .#... #.... #....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "'": "..#.. ..#.. .#... ..... ..... ..... .....",
    '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
    "%": "##..# ##..# ...#. ..#.. .#... #..## #..##",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "_": "..... ..... ..... ..... ..... ..... #####",
    " ": "..... ..... ..... ..... ..... ..... .....",
}
GLYPHS = {ch: np.array([[c == "#" for c in row] for row in rows.split()], dtype=bool) for ch, rows in _ROWS.items()}


def text_width(text: str, scale: int = 1) -> int:
    """[px] the text takes on one line."""
    return max(len(text) * (GLYPH_W + 1) - 1, 0) * scale


def draw_text(image: np.ndarray, text: str, x: int, y: int, scale: int = 1, color=(255, 255, 255)) -> np.ndarray:
    """Draw `text` in place into `image` (H, W, 3) uint8 with its top-left corner at pixel (x, y);
    clipped at the edges. Returns the image."""
    h, w = image.shape[:2]
    for i, ch in enumerate(text):
        glyph = GLYPHS.get(ch.upper(), GLYPHS[" "])
        mask = np.kron(glyph, np.ones((scale, scale), dtype=bool))
        x0 = x + i * (GLYPH_W + 1) * scale
        ys, xs = np.nonzero(mask)
        ys, xs = ys + y, xs + x0
        keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        image[ys[keep], xs[keep]] = color
    return image


def wrap(text: str, width_px: int, scale: int = 1) -> list[str]:
    """`text` broken at spaces into lines no wider than `width_px` (a longer word gets a line of its own)."""
    per_line = max(1, (width_px // scale + 1) // (GLYPH_W + 1))
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def caption(image: np.ndarray, lines: list[str], top: bool, scale: int = 1, color=(255, 255, 255)) -> np.ndarray:
    """Lines of text on a darkened band at the top or bottom of `image` (in place); returns it."""
    line_h = (GLYPH_H + 3) * scale
    band = line_h * len(lines) + 2 * scale
    h = image.shape[0]
    y0 = 0 if top else h - band
    image[y0 : y0 + band] = (image[y0 : y0 + band] * 0.35).astype(np.uint8)
    for k, line in enumerate(lines):
        draw_text(image, line, 3 * scale, y0 + 2 * scale + k * line_h, scale, color)
    return image
