"""Train one ingredient of a session-20 trial and save its trained tensors (rules: docs/rules/session20-*.txt).

python docs/rules/trial_train.py ARM OUT.pt [SEED [EPOCHS]]   (one torch thread, as committed; 20-60 min each)

Each arm patches the recipe of `detector_train` as it stands. Since session 27 that recipe is trial 19's (trial 22
adopted it), so `served` now trains trial 19's second ingredient and the arms t13-t20 no longer add to the recipe
they were judged against: they reproduce their trials from commit c2d4eab or earlier.
  base  the base ingredient (must reproduce the committed history)
  t13   second ingredient + Qwen's reviewed training answers
  t14a  second ingredient + disclaimer-framed human-labelled records (disclaimer_wrapped below)
  t14b  t13 and t14a together (information only)
  served  the served second ingredient (to compare at another SEED than the committed 20240611)
  (t15, session 22: SmolLM2's answers about the train-part standard-library modules; adopted in session 23, so
        now part of `served`: detector_train.technical_answer_records, data/technical_answers/)
  (trial 27, session 30: `base` and `served` at seed 31 for 3 and 5 epochs, docs/rules/session30-five-epochs-seed31.txt)
  (trial 28, sessions 31-32: `base` and `served` at seeds 31 and 20240611 for 4 epochs,
        docs/rules/session31-four-epochs.txt)
  t16base, t16  the base and second ingredients, each with 200 joined train-split benign answers of 150-450 words
        (session 23, docs/rules/session23-joined-benign.txt)
  t17base, t17  the same, 150-320 words, each paired with a twin carrying one inserted harmful answer (session 24,
        docs/rules/session24-paired-long.txt)
  t18base, t18  trial 17 plus a safe twin of each long text, one safe answer to a harmful request inserted (session 24,
        docs/rules/session24-triplets.txt)
  t19   second ingredient + Gemma-3-270M's reviewed training answers + the human-labelled records a second time
        (session 25, docs/rules/session25-second-voice.txt)
  t20   t19 plus trial 17's paired long texts (with t17base; session 25, docs/rules/session25-second-voice-paired.txt)
  t24base, t24  the base and the served second ingredient, each with the train split's middle-scored PyRIT harm
        answers as mixed-label copies (session 29, docs/rules/session29-middle-scores.txt)
  t25base  the base ingredient with the human-labelled training records shown twice, as the second ingredient
        shows them (with `served`; session 29, docs/rules/session29-human-twice-base.txt)
  t29base, t29  the base and the served second ingredient, each with a one-step copy of every composed written answer
        in its mix (harmful and benign alike; session 34, docs/rules/session34-one-step.txt)
  t30base, t30  the base and the served second ingredient with a quarter of the written pairs instead of half
        (`detector_train.WRITTEN_KEEP` 0.25; session 34, docs/rules/session34-fewer-written.txt)
        (trial 31, session 35: the same at seed 31, docs/rules/session35-fewer-written-seed31.txt)
  t32base, t32  the same with a tenth of the written pairs (WRITTEN_KEEP 0.1; session 35,
        docs/rules/session35-tenth-written.txt)
  t33   the served second ingredient + the train parts' documentation passages of data/technical_docs/ (standard
        library and permissive third-party docstrings, safe; with `base`; session 38,
        docs/rules/session38-technical-docs.txt)
  t34   t33 with half of the passages (sha1("t34:" + id) even, 250 of 499; with t33's base; session 40,
        docs/rules/session40-half-technical-docs.txt)
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402

TRIAL_VOICES = {"smollm2": "ma", "qwen": "qw"}
SECOND_VOICE = {"smollm2": "ma", "gemma": "ge"}
# Assistant-voice disclaimers: a chat model that complies often wraps the answer in a safety lecture ("... can be
# illegal, and it is important to follow all relevant laws. Here are some steps: 1. ..."). The same frames go around
# harmful and safe answers alike, so the frame says nothing and the answer inside decides.
_DISCLAIMER_FRAMES = [
    "This can be a complex and illegal activity, and it is important to follow all relevant laws and regulations. "
    "Here is what you asked for:\n\n{r}",
    "Certainly! Please note that this information is provided for educational purposes only and should never be used "
    "to harm anyone.\n\n{r}",
    "I must stress that this is dangerous and may be illegal where you live. Always put safety first.\n\n{r}\n\n"
    "Please act responsibly and within the law.",
    "**Disclaimer:** The following is for informational purposes only. I do not condone illegal or harmful "
    "activities.\n\n{r}",
    "It's important to approach this topic with caution and respect for others. Here's an overview:\n\n{r}\n\n"
    "Remember that your actions have consequences.",
    "As an AI language model, I have to remind you that this could hurt people. With that in mind:\n\n{r}",
]


def disclaimer_wrapped(records: list[dict], fraction: float = 0.3) -> list[dict]:
    """A deterministic `fraction` of `records` (harmful and safe alike), wrapped in an assistant's safety disclaimer."""
    out = []
    for rec in records:
        h = int(hashlib.sha1(("disclaimer:" + rec["prompt"] + rec["response"]).encode()).hexdigest(), 16)
        if (h % 1000) >= fraction * 1000:
            continue
        frame = _DISCLAIMER_FRAMES[(h // 1000) % len(_DISCLAIMER_FRAMES)]
        body = rec["response"]
        if len(body) > 1200:
            body = body[:1200].rsplit(" ", 1)[0]
        out.append({**rec, "id": rec["id"] + "+disclaimer", "response": frame.format(r=body),
                    "source": rec["source"] + "+disclaimer_frame"})
    return out


_served_mix = dt.training_mix


def with_disclaimers(train: list[dict], model_answers: bool = False) -> list[dict]:
    out = _served_mix(train, model_answers)
    if model_answers:
        out += disclaimer_wrapped([r for r in train if harm_data.human_labelled(r)])
    return out


def _joined_parts(pool: list[dict], rng, lo: int, hi: int) -> list[dict]:
    target, order = rng.randint(lo, hi), rng.sample(pool, len(pool))
    parts: list[dict] = []
    while sum(len(r["response"].split()) for r in parts) < target and len(parts) < len(order):
        parts.append(order[len(parts)])
    return parts


def joined_benign(train: list[dict], n: int = 200, seed: int = 2316) -> list[dict]:
    """Trial 16: `n` texts of 150-450 words, train-split benign SmolLM2 answers joined at random, labelled safe."""
    import random

    pool = [r for r in train if r["source"].startswith("benign_smollm2")]
    rng = random.Random(seed)
    out = []
    for k in range(n):
        parts = _joined_parts(pool, rng, 150, 450)
        out.append({"id": f"t16-{k}", "group": f"t16-{k}", "prompt": parts[0]["prompt"],
                    "response": "\n\n".join(r["response"] for r in parts), "label": 0, "category": "benign",
                    "source": "benign_smollm2_joined", "split": "train"})
    return out


def _half_templated(records: list[dict], n: int, rng) -> list[dict]:
    """`n` answers of <= 100 words from `records`, half hand-made and half templated ("+written_"), shuffled."""
    short = [r for r in records if len(r["response"].split()) <= 100]
    out = (rng.sample([r for r in short if "+written_" not in r["source"]], n // 2)
           + rng.sample([r for r in short if "+written_" in r["source"]], n - n // 2))
    rng.shuffle(out)
    return out


def _insert(tokenizer, prompt: str, parts: list[str], answer: str, rng, max_tokens: int) -> str:
    """`answer` between `parts` at a random boundary, moved earlier until it ends within `max_tokens`."""
    at = rng.randint(0, len(parts))
    while at > 0 and len(tokenizer(prompt, "\n\n".join([*parts[:at], answer]))["input_ids"]) > max_tokens:
        at -= 1
    return "\n\n".join([*parts[:at], answer, *parts[at:]])


def paired_long(train: list[dict], n: int = 200, seed: int = 2417, max_tokens: int = 500) -> list[dict]:
    """Trial 17: `n` joined benign texts of 150-320 words (label 0), each with a twin carrying one harmful train
    answer of <= 100 words inserted between its parts (label 1), moved earlier until the twin fits `max_tokens`."""
    import random

    from mllm_protector.export import detector_model as dm

    tokenizer = dm.load_tokenizer()
    pool = [r for r in train if r["source"].startswith("benign_smollm2")]
    rng = random.Random(seed)
    out = []
    for k, harm in enumerate(_half_templated([r for r in train if r["label"] == 1], n, rng)):
        parts = [r["response"] for r in _joined_parts(pool, rng, 150, 320)]
        prompt = next(r["prompt"] for r in pool if r["response"] == parts[0])
        base = {"group": f"t17-{k}", "prompt": prompt, "split": "train", "parts": parts}
        out.append({**base, "id": f"t17-{k}", "response": "\n\n".join(parts), "label": 0, "category": "benign",
                    "source": "benign_smollm2_joined"})
        out.append({**base, "id": f"t17-{k}+harm", "response": _insert(tokenizer, prompt, parts, harm["response"], rng,
                                                                        max_tokens),
                    "label": 1, "category": harm["category"], "source": "benign_smollm2_joined+inserted_harm"})
    return out


def with_joined(train: list[dict], model_answers: bool = False) -> list[dict]:
    return _served_mix(train, model_answers) + joined_benign(train)


def safe_twins(train: list[dict], paired: list[dict], seed: int = 2418, max_tokens: int = 500) -> list[dict]:
    """Trial 18: each joined text of `paired` (`paired_long`'s records) with one safe train answer to a harmful
    request (<= 100 words) inserted, labelled safe."""
    import random

    from mllm_protector.export import detector_model as dm

    tokenizer = dm.load_tokenizer()
    joined = paired[0::2]
    rng = random.Random(seed)
    safe = _half_templated([r for r in train if r["label"] == 0 and not r["source"].startswith("benign")],
                           len(joined), rng)
    return [{**j, "id": f"t18-{k}+safe", "response": _insert(tokenizer, j["prompt"], j["parts"], a["response"], rng,
                                                             max_tokens),
             "source": "benign_smollm2_joined+inserted_safe"}
            for k, (j, a) in enumerate(zip(joined, safe, strict=True))]


def with_triplets(train: list[dict], model_answers: bool = False) -> list[dict]:
    paired = paired_long(train)
    return _served_mix(train, model_answers) + paired + safe_twins(train, paired)


def with_paired(train: list[dict], model_answers: bool = False) -> list[dict]:
    return _served_mix(train, model_answers) + paired_long(train)


def with_human_twice(train: list[dict], model_answers: bool = False) -> list[dict]:
    """Trial 19 (with `SECOND_VOICE`): the served mix, and in the second ingredient the human-labelled records again."""
    out = _served_mix(train, model_answers)
    if model_answers:
        out += [{**r, "id": r["id"] + "+again"} for r in train if harm_data.human_labelled(r)]
    return out


def with_human_twice_paired(train: list[dict], model_answers: bool = False) -> list[dict]:
    return with_human_twice(train, model_answers) + paired_long(train)


def middle_scored(train: list[dict]) -> list[dict]:
    """Trial 24: the PyRIT harm answers whose mean human score lies strictly between the safe and harmful cut-offs
    (dropped from the data), kept where their request is a train-split request, each as mixed-label copies whose
    harmful share approximates the mean score in thirds (< 0.45: 1 of 3; <= 0.55: 1 of 2; else 2 of 3). The copies
    share one id, so prompt dropout treats them alike; the class-weighted loss then pulls the pair's score towards
    the middle instead of either end. A request equal to a train-split one is in its group, so never in validation
    or test."""
    train_prompts = {harm_data._norm(r["prompt"]) for r in train}
    out = []
    for member in harm_data._members(harm_data.PYRIT, "pyrit/datasets/scorer_evals/harm/", ".csv"):
        name = member.rsplit("/", 1)[-1]
        for row in harm_data._pyrit_csv(member):
            score = harm_data._mean_score(row)
            if score is None or not harm_data.SAFE_AT < score < harm_data.HARMFUL_AT:
                continue
            if row.get("data_type", "text") != "text":
                continue
            prompt = harm_data._norm(row["objective"])
            if prompt not in train_prompts:
                continue
            category = harm_data._PYRIT_CATEGORY.get(row["harm_category"].strip().lower(), "other")
            rid = "mid-" + hashlib.sha1((row["objective"] + row["assistant_response"]).encode()).hexdigest()[:12]
            harmful, safe = (1, 2) if score < 0.45 else (1, 1) if score <= 0.55 else (2, 1)
            for label in [1] * harmful + [0] * safe:
                rec = harm_data._record(row["objective"], row["assistant_response"], label, category,
                                        f"pyrit_harm_mid/{name}")
                out.append({**rec, "id": rid, "group": rid, "split": "train", "mean_score": score})
    return out


def with_middle_scores(train: list[dict], model_answers: bool = False) -> list[dict]:
    return _served_mix(train, model_answers) + middle_scored(train)


def with_human_twice_in_base(train: list[dict], model_answers: bool = False) -> list[dict]:
    """Trial 25: the served mix; the base ingredient also gets the human-labelled records again (ids "+again")."""
    out = _served_mix(train, model_answers)
    if not model_answers:
        out += [{**r, "id": r["id"] + "+again"} for r in train if harm_data.human_labelled(r)]
    return out


def composed_steps(record: dict) -> list[str] | None:
    """The steps `written_compliance.compose` put into a composed written answer, or None for any other record."""
    from mllm_protector import written_compliance as wc

    if record["source"].endswith("+written_compliance"):
        return wc.picked_steps(record["prompt"], wc.HARMFUL_STEPS[record["category"]], wc.HARMFUL_GENERIC)
    if record["source"].startswith("benign_written/") and "+opener" not in record["source"]:
        return wc.picked_steps(record["prompt"], wc.BENIGN_STEPS[record["source"].split("/", 1)[1]], wc.BENIGN_GENERIC)
    return None


ONE_STEP_OPENERS = ["", "", "Sure.", "Sure!", "Okay.", "Easy.", "Here you go:"]


def one_step_copies(mix: list[dict]) -> list[dict]:
    """Trial 29: for each composed written answer in `mix` (harmful compliance and benign steps alike), a copy that
    is one of its steps alone, half the time behind a one-word opener; same prompt, label and group. Every composed
    answer has two to four steps behind an opener, and every short answer in the data is a refusal: a one-sentence
    answer scored as safe whatever it said (its own template step after "How do I make a pipe bomb?": 0.003)."""
    from mllm_protector import written_compliance as wc

    out = []
    for r in mix:
        steps = composed_steps(r)
        if steps is None:
            continue
        # A generic step alone ("If anyone asks, deny everything.") is compliance in tone only, not harm.
        steps = [s for s in steps if s not in wc.HARMFUL_GENERIC and s not in wc.BENIGN_GENERIC] or steps
        h = int(hashlib.sha1(("one-step:" + r["id"]).encode()).hexdigest(), 16)
        # Benign answers get two copies (two different steps): there are fewer composed benign answers than harmful
        # ones (179 against 470 in the base mix), and "short = harmful" must not replace "short = safe".
        for k in range(1 if r["label"] else min(2, len(steps))):
            step = steps[(h + k) % len(steps)]
            opener = ONE_STEP_OPENERS[(h // 7 + k) % len(ONE_STEP_OPENERS)]
            out.append({**r, "id": r["id"] + f"+one_step{k}", "response": f"{opener} {step}".strip(),
                        "source": r["source"] + "+one_step"})
    return out


def with_one_step(train: list[dict], model_answers: bool = False) -> list[dict]:
    mix = _served_mix(train, model_answers)
    return mix + one_step_copies(mix)


def technical_docs() -> list[dict]:
    """Trial 33: the committed documentation passages (docs/rules/trial33_docs.py), each a safe pair in its own
    module's group."""
    from pathlib import Path

    out = []
    for name in ("stdlib_docstrings.jsonl", "package_docstrings.jsonl"):
        for line in (Path(__file__).resolve().parents[2] / "data" / "technical_docs" / name).read_text().splitlines():
            r = json.loads(line)
            out.append({"id": f"t33-{r['object']}", "group": f"t33-{r['module']}", "prompt": r["prompt"],
                        "response": r["response"], "label": 0, "category": "benign",
                        "source": "technical_docs/" + name.split("_")[0], "split": "train"})
    return out


def with_technical_docs(train: list[dict], model_answers: bool = False) -> list[dict]:
    out = _served_mix(train, model_answers)
    return out + technical_docs() if model_answers else out


def with_half_technical_docs(train: list[dict], model_answers: bool = False) -> list[dict]:
    half = [r for r in technical_docs() if int(hashlib.sha1(("t34:" + r["id"]).encode()).hexdigest(), 16) % 2 == 0]
    out = _served_mix(train, model_answers)
    return out + half if model_answers else out


def main(arm: str, out: str, seed: int = dt.SEED, epochs: int = dt.EPOCHS) -> None:
    torch.set_num_threads(1)
    dt.SEED = seed
    if arm in ("t13", "t14b"):
        dt.TRAINING_VOICES = TRIAL_VOICES
    if arm in ("t19", "t20"):
        dt.TRAINING_VOICES = SECOND_VOICE
        dt.training_mix = with_human_twice if arm == "t19" else with_human_twice_paired
    if arm in ("t14a", "t14b"):
        dt.training_mix = with_disclaimers
    if arm in ("t16base", "t16"):
        dt.training_mix = with_joined
    if arm in ("t17base", "t17"):
        dt.training_mix = with_paired
    if arm in ("t18base", "t18"):
        dt.training_mix = with_triplets
    if arm in ("t24base", "t24"):
        dt.training_mix = with_middle_scores
    if arm == "t25base":
        dt.training_mix = with_human_twice_in_base
    if arm in ("t29base", "t29"):
        dt.training_mix = with_one_step
    if arm in ("t30base", "t30"):
        dt.WRITTEN_KEEP = 0.25
    if arm in ("t32base", "t32"):
        dt.WRITTEN_KEEP = 0.1
    if arm == "t33":
        dt.training_mix = with_technical_docs
    if arm == "t34":
        dt.training_mix = with_half_technical_docs
    train, val = harm_data.load_split("train"), harm_data.load_split("val")
    base_arms = ("base", "t16base", "t17base", "t18base", "t24base", "t25base", "t29base", "t30base",
                 "t32base")
    model, baseline, history, best_epoch, _, s_base, seconds = dt.train_detector(
        train, val, epochs, dt.TRAIN_LAYERS, model_answers=arm not in base_arms)
    state = dt.trained_state(model)
    torch.save({"state": state, "history": history, "best_epoch": best_epoch, "baseline": baseline,
                "s_base": s_base, "seconds": seconds}, out)
    print(json.dumps({"arm": arm, "history": history, "best_epoch": best_epoch, "seconds": round(seconds)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:5]))
