"""What one evaluation item is, and how a run picks a small, balanced subset of a large set."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HARMFUL = "harmful"
BENIGN = "benign"
LABELS = (HARMFUL, BENIGN)

_HARMFUL_NAMES = {"harmful", "unsafe", "attack", "jailbreak", "1", "true", "yes"}
_BENIGN_NAMES = {"benign", "safe", "harmless", "0", "false", "no"}


def parse_label(value: Any) -> str:
    """``"harmful"`` or ``"benign"`` from the usual spellings (``unsafe``/``safe``, 1/0, true/false)."""
    if isinstance(value, bool):
        return HARMFUL if value else BENIGN
    if isinstance(value, int):
        if value in (0, 1):
            return HARMFUL if value else BENIGN
    elif isinstance(value, str):
        name = value.strip().lower()
        if name in _HARMFUL_NAMES:
            return HARMFUL
        if name in _BENIGN_NAMES:
            return BENIGN
    raise ValueError(f"label must be 'harmful' or 'benign' (or unsafe/safe, 1/0, true/false), got {value!r}")


@dataclass(frozen=True)
class EvalItem:
    """One request of an evaluation set.

    ``prompt`` is the text sent with ``image`` (encoded bytes, a file path, or None for text only). ``question`` is
    the underlying request the judges should read when it differs from ``prompt`` (FigStep sends a fixed prompt and
    hides the request in the image; MM-SafetyBench keeps the original question); empty means ``prompt``.
    ``dataset`` / ``scenario`` / ``image_type`` are the report's grouping keys.
    """

    id: str
    prompt: str
    label: str
    image: bytes | Path | None = None
    dataset: str = "jsonl"
    scenario: str = ""
    image_type: str = ""
    question: str = ""

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"item {self.id}: label must be one of {LABELS}, got {self.label!r}")

    @property
    def judge_question(self) -> str:
        return self.question or self.prompt

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.dataset, self.scenario, self.image_type)

    def image_ref(self) -> str | None:
        """How the results file names the image: its path, ``<n> bytes`` for generated images, None without one."""
        if self.image is None:
            return None
        if isinstance(self.image, Path):
            return str(self.image)
        return f"<{len(self.image)} bytes>"

    def describe(self) -> dict[str, Any]:
        """The item's fields as stored in each result record (no image bytes)."""
        return {
            "id": self.id,
            "dataset": self.dataset,
            "scenario": self.scenario,
            "image_type": self.image_type,
            "label": self.label,
            "prompt": self.prompt,
            "question": self.question,
            "image": self.image_ref(),
        }


def select(
    items: Sequence[EvalItem],
    *,
    limit: int | None = None,
    per_group: int | None = None,
    scenarios: Iterable[str] = (),
    image_types: Iterable[str] = (),
) -> list[EvalItem]:
    """A deterministic subset of ``items``.

    ``scenarios`` / ``image_types`` keep only matching items (a scenario matches by its full name, case-insensitive,
    or by its number prefix, e.g. ``01`` for MM-SafetyBench's ``01-Illegal_Activitiy``). ``per_group`` keeps the
    first N items of each (dataset, scenario, image type). ``limit`` then takes a balanced sample: harmful and benign
    items alternate and, within a label, the groups take turns, so ``limit=4`` gives two of each from four groups.
    Without ``limit`` the order of ``items`` is kept.
    """
    wanted_scenarios = [s.strip().lower() for s in scenarios if s.strip()]
    wanted_types = {t.strip().lower() for t in image_types if t.strip()}
    chosen = [
        item
        for item in items
        if (not wanted_scenarios or _scenario_matches(item.scenario, wanted_scenarios))
        and (not wanted_types or item.image_type.lower() in wanted_types)
    ]
    if per_group is not None:
        if per_group < 1:
            raise ValueError(f"per_group must be at least 1, got {per_group}")
        counts: dict[tuple[str, str, str], int] = {}
        kept = []
        for item in chosen:
            counts[item.group] = counts.get(item.group, 0) + 1
            if counts[item.group] <= per_group:
                kept.append(item)
        chosen = kept
    if limit is None:
        return chosen
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    by_label = [_round_robin(item for item in chosen if item.label == label) for label in LABELS]
    return _interleave(by_label)[:limit]


def _scenario_matches(scenario: str, wanted: list[str]) -> bool:
    name = scenario.lower()
    return any(name == w or name.split("-", 1)[0] == w for w in wanted)


def _round_robin(items: Iterable[EvalItem]) -> list[EvalItem]:
    groups: OrderedDict[tuple[str, str, str], list[EvalItem]] = OrderedDict()
    for item in items:
        groups.setdefault(item.group, []).append(item)
    return _interleave(list(groups.values()))


def _interleave(lists: Sequence[Sequence[EvalItem]]) -> list[EvalItem]:
    out: list[EvalItem] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def check_unique_ids(items: Sequence[EvalItem]) -> None:
    """Raise ValueError if two items share an id (results are stored and resumed by id)."""
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"duplicate item id {item.id!r}: ids must be unique across the evaluated sets")
        seen.add(item.id)
