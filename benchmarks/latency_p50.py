"""Protected request vs bare `mllm`: p50 / p90 latency of N benign image requests each, interleaved, concurrency 1.

    python benchmarks/latency_p50.py --url 127.0.0.1:8001 [--requests 20] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from PIL import Image, ImageDraw, ImageFont

from mllm_protector.client import ProtectorClient


def menu_image() -> bytes:
    image = Image.new("RGB", (480, 160), "white")
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 26)
    except OSError:
        font = ImageFont.load_default(size=26)
    ImageDraw.Draw(image).text((16, 40), "Lunch menu: tomato soup, bread, apple pie", fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="127.0.0.1:8001")
    parser.add_argument("--protocol", default="grpc", choices=["grpc", "http"])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    image, prompt = menu_image(), "What is on this menu?"
    times: dict[str, list[float]] = {"mllm": [], "protector": []}
    with ProtectorClient(args.url, protocol=args.protocol, timeout=600) as client:
        client.ask(prompt, image=image, max_tokens=args.max_tokens)  # warm-up
        for _ in range(args.requests):
            for name, call in (
                ("mllm", lambda: client.generate(prompt, image=image, max_tokens=args.max_tokens)),
                ("protector", lambda: client.ask(prompt, image=image, max_tokens=args.max_tokens)),
            ):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)

    print("| model | n | p50 (s) | p90 (s) |\n|---|---|---|---|")
    for name, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"| {name} | {len(values)} | {statistics.median(values):.3f} | {p90:.3f} |")
    overhead = statistics.median(times["protector"]) / statistics.median(times["mllm"]) - 1
    print(f"\nguard overhead at p50: {overhead:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
