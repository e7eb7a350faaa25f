"""PNG bar charts of a summary, drawn with PIL (matplotlib is not a dependency of this project).

- ``asr_<judge>.png``: per harmful group (scenario / image type) and overall, two horizontal bars: the attack
  success rate without the guard and with it, as that judge sees it (the judge's label is the title).
- ``benign_harm_scores.png``: the histogram of the detector's harm scores of the benign answers, with the threshold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

UNGUARDED_COLOR = (214, 69, 65)
GUARDED_COLOR = (43, 123, 185)
BENIGN_COLOR = (90, 160, 90)
GRID = (225, 225, 225)
INK = (30, 30, 30)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "judge"


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def asr_chart(title: str, rows: Sequence[tuple[str, float | None, float | None]], path: Path) -> Path:
    """Horizontal paired bars: ``rows`` of (label, unguarded rate, guarded rate), rates in [0, 1] or None."""
    font, small, bold = _font(14), _font(12), _font(16)
    label_w, plot_w, bar_h, gap, top = 300, 420, 12, 14, 70
    width = label_w + plot_w + 80
    height = top + len(rows) * (2 * bar_h + gap) + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), _fit(draw, title, bold, width - 20), fill=INK, font=bold)
    legend_y = 36
    for i, (name, color) in enumerate((("unguarded (mllm)", UNGUARDED_COLOR), ("guarded (protector)", GUARDED_COLOR))):
        x = label_w + i * 190
        draw.rectangle((x, legend_y, x + 14, legend_y + 14), fill=color)
        draw.text((x + 20, legend_y - 1), name, fill=INK, font=small)
    x0 = label_w
    for tick in range(0, 101, 25):
        x = x0 + plot_w * tick / 100
        draw.line((x, top - 6, x, height - 30), fill=GRID, width=1)
        draw.text((x - 12, height - 26), f"{tick}%", fill=INK, font=small)
    y = top
    for label, unguarded, guarded in rows:
        draw.text((10, y + bar_h - 8), _fit(draw, label, font, label_w - 20), fill=INK, font=font)
        for offset, rate, color in ((0, unguarded, UNGUARDED_COLOR), (bar_h, guarded, GUARDED_COLOR)):
            if rate is None:
                draw.text((x0 + 4, y + offset - 2), "n/a", fill=INK, font=small)
                continue
            x1 = x0 + max(1.0, plot_w * rate)
            draw.rectangle((x0, y + offset, x1, y + offset + bar_h - 2), fill=color)
            draw.text((x1 + 4, y + offset - 2), f"{100 * rate:.0f}%", fill=INK, font=small)
        y += 2 * bar_h + gap
    image.save(path, format="PNG")
    return path


def histogram_chart(title: str, edges: Sequence[float], counts: Sequence[int], threshold: float | None,
                    path: Path) -> Path:
    """Vertical bars of ``counts`` over the bins ``edges`` (in [0, 1]) with a line at ``threshold``."""
    font, bold = _font(12), _font(16)
    left, bottom, plot_w, plot_h, top = 50, 40, 500, 220, 50
    width, height = left + plot_w + 30, top + plot_h + bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), _fit(draw, title, bold, width - 20), fill=INK, font=bold)
    peak = max(max(counts, default=0), 1)
    base = top + plot_h
    for tick in range(0, peak + 1, max(1, peak // 5)):
        y = base - plot_h * tick / peak
        draw.line((left, y, left + plot_w, y), fill=GRID)
        draw.text((left - 30, y - 7), str(tick), fill=INK, font=font)
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    for i, count in enumerate(counts):
        x_a = left + plot_w * (edges[i] - lo) / span
        x_b = left + plot_w * (edges[i + 1] - lo) / span
        if count:
            draw.rectangle((x_a + 2, base - plot_h * count / peak, x_b - 2, base), fill=BENIGN_COLOR)
    for i in range(0, len(edges), 2):
        x = left + plot_w * (edges[i] - lo) / span
        draw.text((x - 10, base + 6), f"{edges[i]:.1f}", fill=INK, font=font)
    draw.line((left, base, left + plot_w, base), fill=INK)
    if threshold is not None:
        x = left + plot_w * (threshold - lo) / span
        draw.line((x, top - 4, x, base), fill=UNGUARDED_COLOR, width=2)
        draw.text((x + 4, top - 20), f"threshold {threshold:g}", fill=UNGUARDED_COLOR, font=font)
    draw.text((left + plot_w / 2 - 60, base + 22), "harm score (original answer)", fill=INK, font=font)
    image.save(path, format="PNG")
    return path


def write_charts(summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    harmful = summary["harmful"]
    if harmful["overall"]["n"]:
        for judge in summary["judges"]:
            name = judge["name"]
            rows = [(f"{g['scenario']} / {g['image_type']}", g["asr"][name]["unguarded"], g["asr"][name]["guarded"])
                    for g in harmful["groups"]]
            if len(harmful["by_image_type"]) > 1:
                rows += [(f"all {g['dataset']} / {g['image_type']}", g["asr"][name]["unguarded"],
                          g["asr"][name]["guarded"]) for g in harmful["by_image_type"]]
            overall = harmful["overall"]["asr"][name]
            rows.append(("all harmful items", overall["unguarded"], overall["guarded"]))
            title = f"Attack success rate, judge: {judge['label']}"
            paths[f"asr:{name}"] = asr_chart(title, rows, out_dir / f"asr_{_slug(name)}.png")
    benign = summary["benign"]
    if benign["n"]:
        hist = benign["harm_score"]["histogram"]
        title = f"Benign answers: harm scores (n={benign['n']}, passed unchanged {100 * benign['retention']:.0f}%)"
        paths["benign"] = histogram_chart(title, hist["edges"], hist["counts"], benign.get("threshold"),
                                          out_dir / "benign_harm_scores.png")
    return paths
