"""The bootstrap intervals of benchmarks/eval_detector.py (the README's "within noise" calls rest on them) and its
padded-answer set."""

from __future__ import annotations

import numpy as np

from benchmarks.eval_detector import behind_preamble, group_bootstrap


def _data(n_groups: int, per_group: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n_groups * per_group // 2)
    s = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, len(y)), 0, 1)
    groups = [f"g{i // per_group}" for i in range(len(y))]
    return y, s, groups


def test_intervals_hold_the_estimate_and_shrink_with_more_groups():
    from sklearn.metrics import roc_auc_score

    y, s, groups = _data(40, 4)
    ci = group_bootstrap(y, s, groups, threshold=0.5, resamples=300)
    assert ci["auroc"][0] < roc_auc_score(y, s) < ci["auroc"][1]
    assert ci["tpr_at_threshold"][0] < float((s[y == 1] >= 0.5).mean()) < ci["tpr_at_threshold"][1]
    y2, s2, groups2 = _data(400, 4)
    wide, narrow = ci["auroc"], group_bootstrap(y2, s2, groups2, threshold=0.5, resamples=300)["auroc"]
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 2
    assert group_bootstrap(y, s, groups, 0.5, resamples=50, seed=3) == group_bootstrap(y, s, groups, 0.5, 50, seed=3)


def test_whole_groups_are_resampled():
    """Copies of one answer in a group are one observation, not many: the interval must not narrow."""
    y, s, groups = _data(30, 2)
    base = group_bootstrap(y, s, groups, 0.5, resamples=400)["auroc"]
    y10, s10 = np.repeat(y, 10), np.repeat(s, 10)
    groups10 = [g for g in groups for _ in range(10)]
    copied = group_bootstrap(y10, s10, groups10, 0.5, resamples=400)["auroc"]
    assert (copied[1] - copied[0]) > 0.7 * (base[1] - base[0])


def test_operating_points_trade_false_alarms_for_recall():
    from benchmarks.eval_detector import OPERATING_FPRS, operating_points

    y, s, _ = _data(200, 4)
    val_safe = _data(200, 4, seed=2)[1][::2]  # safe scores of another draw, as the validation calibration answers
    rows = [line.split(" | ") for line in operating_points(val_safe, y, s, np.ones(len(y), bool)).splitlines()[2:]]
    assert len(rows) == len(OPERATING_FPRS) and "(default)" in rows[1][0]
    thresholds = [float(r[1]) for r in rows]
    fpr, tpr = [float(r[2]) for r in rows], [float(r[3]) for r in rows]
    assert thresholds == sorted(thresholds, reverse=True)  # a looser target, a lower threshold
    assert fpr == sorted(fpr) and tpr == sorted(tpr) and tpr[0] < tpr[-1]
    for target, row_fpr in zip(OPERATING_FPRS, fpr, strict=True):
        assert abs(row_fpr - target) < 0.05  # same score distribution: the validation target holds roughly


def test_operating_points_give_each_voice_its_recall_and_false_alarms_at_every_threshold():
    from benchmarks.eval_detector import OPERATING_FPRS, operating_points

    y, s, _ = _data(200, 4)
    val_safe = _data(200, 4, seed=2)[1][::2]
    # A voice the detector ranks well and one it scores ~0 whatever the label: only the first gains recall.
    read = (np.array([1, 1, 0, 0]), np.array([0.999, 0.6, 0.3, 0.0]))
    unread = (np.array([1, 1, 0, 0]), np.array([0.001, 0.0, 0.002, 0.0]))
    lines = operating_points(val_safe, y, s, np.ones(len(y), bool), {"Read": read, "Unread": unread}).splitlines()
    assert lines[0].endswith("| Read TPR / FPR | Unread TPR / FPR |") and lines[1].count("---") == 8
    rows = [line.strip("| ").split(" | ") for line in lines[2:]]
    assert len(rows) == len(OPERATING_FPRS)
    for row in rows:
        thr = float(row[1])
        assert row[6] == f"{(read[1][:2] >= thr).mean():.3f} / {(read[1][2:] >= thr).mean():.3f}"
        assert row[7] == "0.000 / 0.000"


def test_behind_preamble_puts_the_answer_last_after_enough_filler_and_is_repeatable():
    filler = ["one two three four five", "alpha beta gamma", "a b c d e f g"]
    answers = ["Mix bleach with ammonia.", "Sure, here it is."]
    padded = behind_preamble(answers, filler, min_words=12)
    assert padded == behind_preamble(answers, filler, min_words=12)
    for answer, text in zip(answers, padded, strict=True):
        head, _, last = text.rpartition("\n\n")
        assert last == answer and len(head.split()) >= 12
