"""Text rendered in an image, read with RapidOCR (PP-OCRv4 ONNX models shipped inside `rapidocr-onnxruntime`).

This is the channel a typographic attack uses: an instruction typed into a picture. The OCR stand-in MLLM reads the
image only through this text.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

# Recognition runs once per detected text box, and the stand-in keeps only the first 2,000 characters read: a page of
# 2,548 words held the single mllm instance for 15 s. 200 boxes carry far more than 2,000 characters of text.
MAX_BOXES = 200


class OcrReader:
    """Loads the detection, orientation and recognition models once; `read` is safe to call from several threads."""

    def __init__(self, min_score: float = 0.5, max_boxes: int = MAX_BOXES) -> None:
        """`max_boxes`: text boxes recognised at most per image (each costs ~6 ms of recognition on 2 cores)."""
        from rapidocr_onnxruntime import RapidOCR

        # The package default ("min" 736) scales every image UP until its short side is 736 px: a 640x200 picture
        # is detected at 2355x736 (~1.7 s on 2 cores). "max" keeps the native size up to 960-2000 px (~0.2 s)
        # and reads rendered text just as well.
        self._engine = RapidOCR(text_score=min_score, print_verbose=False, det_limit_type="max",
                                det_max_candidates=max_boxes)
        # RapidOCR keeps per-call state on the engine; one image at a time per reader.
        self._lock = threading.Lock()

    def read(self, image: Image.Image) -> str:
        """The text in `image`: one output line per text line, top to bottom, boxes left to right; "" if none."""
        rgb = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR works on BGR arrays
        with self._lock:
            result, _ = self._engine(np.ascontiguousarray(rgb))
        return join_lines(result or [])


def join_lines(result: list[list[Any]]) -> str:
    """Group RapidOCR's `[box, text, score]` items into lines (vertical overlap) and read them in order."""
    items = []
    for box, text, *_ in result:
        text = str(text).strip()
        if not text:
            continue
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        items.append((min(ys), max(ys), min(xs), text))
    items.sort(key=lambda it: (it[0] + it[1]) / 2)
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        top, bottom = item[0], item[1]
        if lines:
            line = lines[-1]
            l_top = min(i[0] for i in line)
            l_bottom = max(i[1] for i in line)
            overlap = min(bottom, l_bottom) - max(top, l_top)
            if overlap > 0.5 * min(bottom - top, l_bottom - l_top):
                line.append(item)
                continue
        lines.append([item])
    return "\n".join(" ".join(i[3] for i in sorted(line, key=lambda i: i[2])) for line in lines)
