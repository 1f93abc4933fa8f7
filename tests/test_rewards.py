"""Reward terms: the seed recipe's values on hand-written cases, parameter validation, the shared verifier."""

from __future__ import annotations

import json
import math
import pickle
import random
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from openrs.rewards import REWARDS, RewardConfig, SharedVerifier, build_reward_funcs, check_params, get_reward
from openrs.rewards.extraction import (
    _is_boxed_env_pattern,
    _scan_patterns,
    answer_config,
    boxed_env_scan_start,
)
from openrs.rewards.reference import seed_accuracy, seed_correct, seed_cosine, seed_length

REPO = Path(__file__).resolve().parents[1]

# Golds as the open-rs `solution` column holds them: LaTeX with $...$ or \boxed{} (a bare "12" does not parse).
GOLD = "$12$"
RIGHT = "<think>\nadd them\n</think>\nThe answer is $\\boxed{12}$."
WRONG = "<think>\nadd them\n</think>\nThe answer is $\\boxed{13}$."
# In $...$ the seed's cosine/length normalization (boxed=True) keeps "\boxed{" and fails; accuracy's "all" does not.
TEXT_IN_BOX = "$\\boxed{\\text{12}}$"
HANGS_SYMPY = "\\boxed{9^{9^{9^{9}}}}"  # verify() tries to evaluate the power tower: minutes to hours


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def verifier():
    v = SharedVerifier(workers=2, timeout_s=10.0)
    yield v
    v.close()


def term(name: str, verifier: SharedVerifier, **params):
    return get_reward(name, verifier=verifier, **params)


# --- registry and validation -------------------------------------------------------------------------------


def test_registered_names():
    assert set(REWARDS) == {
        "accuracy",
        "format",
        "tag_count",
        "cosine",
        "length",
        "repetition_penalty",
        "reasoning_steps",
    }
    for name in REWARDS:
        assert get_reward(name).__name__ == name


def test_unknown_reward_names_the_bad_one_and_lists_valid():
    with pytest.raises(ValueError, match=r"unknown reward 'acuracy'.*accuracy.*cosine.*reasoning_steps"):
        get_reward("acuracy")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "cosine",
            {"maxlen": 10},
            r"unknown parameter\(s\) 'maxlen'; valid parameters: boxed, clamp, .*max_len",
        ),
        ("format", {"x": 1}, r"'format': unknown parameter\(s\) 'x'; valid parameters: \(none\)"),
        ("cosine", {"max_len": 0}, r"'max_len' must be > 0"),
        ("cosine", {"max_len": 10.5}, r"'max_len' must be an int"),
        ("cosine", {"max_value_correct": "1"}, r"'max_value_correct' must be a finite float"),
        ("cosine", {"clamp": 1}, r"'clamp' must be a bool"),
        ("cosine", {"length_unit": "words"}, r"'length_unit' must be one of \['chars', 'tokens'\]"),
        ("accuracy", {"boxed": 1}, r"'boxed' must be one of \['all', 'last', 'none', True\]"),
        ("accuracy", {"unparseable_gold": None}, r"'unparseable_gold' must be one of \['seed', 'skip'\]"),
        ("repetition_penalty", {"max_penalty": 0.5}, r"'max_penalty' must be <= 0"),
        ("repetition_penalty", {"ngram_size": 0}, r"'ngram_size' must be >= 1"),
    ],
)
def test_invalid_params_name_the_param(name, params, message):
    with pytest.raises(ValueError, match=message):
        get_reward(name, **params)
    with pytest.raises(ValueError, match=message):
        check_params(name, params)


def test_check_params_fills_seed_defaults():
    assert check_params("cosine", {}) == {
        "min_value_wrong": 0.0,
        "max_value_wrong": -0.5,
        "min_value_correct": 0.5,
        "max_value_correct": 1.0,
        "max_len": 1000,
        "length_unit": "chars",
        "clamp": False,
        "boxed": True,
        "unparseable_gold": "seed",
    }
    assert check_params("accuracy", {})["boxed"] == "all"
    assert check_params("length", {})["boxed"] is True
    assert check_params("repetition_penalty", {}) == {"ngram_size": 3, "max_penalty": -1.0}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"terms": {}}, r"reward.terms: must name at least one"),
        ({"terms": {"cosin": {}}}, r"unknown reward 'cosin'"),
        (
            {"terms": {"format": {"weight": "x"}}},
            r"could not be converted to Float \(at reward.terms.format.weight\)",
        ),
        (
            {"terms": {"format": {"weight": float("inf")}}},
            r"reward.terms.format.weight=inf: must be a finite number",
        ),
        (
            {"terms": {"format": {"wieght": 1}}},
            r"Key 'wieght' not in 'RewardTermConfig' \(at reward.terms.format.wieght\)",
        ),
        (
            {"terms": {"cosine": {"params": {"max_len": -1}}}},
            r"reward.terms.cosine.params: .*'max_len' must be > 0",
        ),
        (
            {"terms": {"format": {}}, "verifier": {"workers": 0}},
            r"reward.verifier.workers must be a positive integer",
        ),
        (
            {"terms": {"format": {}}, "verifier": {"timeout_s": 0}},
            r"reward.verifier.timeout_s must be a positive number",
        ),
        ({"terms": {"format": {}}, "verifier": {"threads": 2}}, r"Key 'threads' not in 'VerifierConfig'"),
        ({"terms": {"format": {}}, "extra": 1}, r"Key 'extra' not in 'RewardConfig'"),
    ],
)
def test_build_reward_funcs_validates_eagerly(cfg, message):
    with pytest.raises(ValueError, match=message):
        build_reward_funcs(cfg)


# --- shipped configs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", sorted(p.stem for p in (REPO / "conf" / "reward").glob("*.yaml")))
def test_shipped_reward_configs_build(option):
    node = OmegaConf.load(REPO / "conf" / "reward" / f"{option}.yaml")
    schema = OmegaConf.structured(RewardConfig)
    root = OmegaConf.create({"max_len": 3584, "reward": OmegaConf.merge(schema, node)})
    funcs, weights = build_reward_funcs(root.reward)
    assert [f.__name__ for f in funcs] == list(node.terms)
    assert weights == [float(t.weight) for t in node.terms.values()]
    assert all(f.verifier is None or f.verifier._pool is None for f in funcs)  # no process until first use
    for f in funcs:  # every knob the yaml sets equals the seed default, except cosine's max_len (= ${max_len})
        expected = check_params(f.__name__, {"max_len": 3584} if f.__name__ == "cosine" else {})
        assert getattr(f, "params", {}) == expected


def test_default_options_match_the_paper():
    acc, _ = build_reward_funcs(OmegaConf.load(REPO / "conf" / "reward" / "accuracy.yaml"))
    assert [f.__name__ for f in acc] == ["format", "accuracy"]
    root = OmegaConf.create({"max_len": 3584, "reward": OmegaConf.load(REPO / "conf" / "reward" / "cosine.yaml")})
    cos, weights = build_reward_funcs(root.reward)
    assert [f.__name__ for f in cos] == ["format", "cosine"] and weights == [1.0, 2.0]
    assert cos[1].params["max_len"] == 3584


# --- text-only terms -----------------------------------------------------------------------------------------


def test_format_counts_closing_tag_once():
    f = get_reward("format")
    texts = ["x\n</think>\ny", "<think>\nx\n</think>\ny", "x</think>y", "a\n</think>\nb\n</think>\n", ""]
    assert f(completions=[chat(t) for t in texts]) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_tag_count_half_per_tag():
    f = get_reward("tag_count")
    texts = [
        "<think>\nx\n</think>\ny",
        "<think>\nx",
        "x\n</think>\n",
        "<think>\n<think>\n\n</think>\n",
        "none",
    ]
    assert f(completions=texts) == [1.0, 0.5, 0.5, 0.5, 0.0]


def test_reasoning_steps():
    f = get_reward("reasoning_steps")
    texts = [
        "Step 1: a\nStep 2: b\nStep 3: c",  # 3 markers -> 1.0
        "First, a. Next, b.",  # 2 -> 2/3
        "1. only at the very start\n2. not matched: ^ without MULTILINE",  # 1 -> 1/3
        "\n- a\n* b\n- c",  # "\n-" x2 + "\n*" -> 3 -> 1.0
        "nothing",
    ]
    assert f(completions=texts) == pytest.approx([1.0, 2 / 3, 1 / 3, 1.0, 0.0])


def test_repetition_penalty_values():
    f = get_reward("repetition_penalty")
    texts = ["", "two words", "a b c d e", "A b c a B C a b c", "x x x x x x"]
    # "A b c a B C a b c": 7 lower-cased trigrams, 3 unique ({abc, bca, cab}) -> (1 - 3/7) * -1
    assert f(completions=texts) == pytest.approx([0.0, 0.0, 0.0, -(1 - 3 / 7), -(1 - 1 / 4)])
    g = get_reward("repetition_penalty", ngram_size=1, max_penalty=-2.0)
    assert g(completions=["a a b b"]) == pytest.approx([-(1 - 2 / 4) * 2.0])


def test_completion_forms():
    f = get_reward("format")
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a\n</think>\nb"}]
    parts = [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a\n</think>\n"}, {"type": "text", "text": "b"}],
        }
    ]
    assert f(completions=[conv, parts, "a\n</think>\nb", [{"content": "a\n</think>\nb"}], []]) == [
        1,
        1,
        1,
        1,
        0,
    ]


# --- correctness terms ---------------------------------------------------------------------------------------


def test_accuracy_values(verifier):
    f = term("accuracy", verifier)
    texts = [RIGHT, WRONG, "no box, 12", "\\boxed{\\frac{24}{2}}", TEXT_IN_BOX, ""]
    assert f(completions=[chat(t) for t in texts], solution=[GOLD] * 6) == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_boxed_normalization_is_per_term(verifier):
    """The seed's accuracy ("all") and cosine/length (True) disagree on a \\text answer boxed inside $...$."""
    acc, cos = term("accuracy", verifier), term("cosine", verifier, max_len=100)
    assert acc(completions=[TEXT_IN_BOX], solution=[GOLD]) == [1.0]
    assert cos(completions=[TEXT_IN_BOX], solution=[GOLD])[0] < 0  # judged wrong
    cos_all = term("cosine", verifier, max_len=100, boxed="all")
    assert cos_all(completions=[TEXT_IN_BOX], solution=[GOLD])[0] > 0


def test_cosine_values_and_wraparound(verifier):
    f = term("cosine", verifier, max_len=3584)
    pad = lambda n, s: "x" * (n - len(s)) + s  # noqa: E731 - a completion of exactly n characters
    texts = [
        pad(1792, "$\\boxed{12}$"),
        pad(1792, "$\\boxed{13}$"),
        pad(3584, "$\\boxed{12}$"),
        pad(7168, "$\\boxed{12}$"),
        pad(7168, "$\\boxed{13}$"),
        pad(3584, "$\\boxed{13}$"),
    ]
    out = f(completions=texts, solution=[GOLD] * 6)
    # half of max_len: cos = 0 -> midpoints; at max_len: the end values; at 2 max_len the seed wraps back to the
    # start values: a correct 7,168-char completion earns the full 1.0, a wrong one the mildest penalty 0.0.
    assert out == pytest.approx([0.75, -0.25, 0.5, 1.0, 0.0, -0.5])


def test_cosine_clamp_tokens_and_past_max_len_metric(verifier):
    logged: dict[str, float] = {}
    f = term("cosine", verifier, max_len=10, clamp=True, length_unit="tokens")
    texts = ["$\\boxed{12}$", "$\\boxed{13}$", "$\\boxed{12}$"]
    out = f(
        completions=texts,
        solution=[GOLD] * 3,
        completion_ids=[[0] * 5, [0] * 30, [0] * 20],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert out == pytest.approx([0.75, -0.5, 0.5])  # 5/10 tokens; 30 and 20 clamp to the max_len end values
    assert logged["cosine/past_max_len_share"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="completion_ids"):
        f(completions=texts, solution=[GOLD] * 3)


def test_cosine_custom_bounds_follow_formula(verifier):
    p = {
        "min_value_wrong": -1.0,
        "max_value_wrong": -0.25,
        "min_value_correct": 0.25,
        "max_value_correct": 2.0,
    }
    f = term("cosine", verifier, max_len=40, **p)
    texts = [RIGHT, WRONG]
    out = f(completions=texts, solution=[GOLD] * 2)
    for got, text, (lo, hi) in zip(out, texts, [(0.25, 2.0), (-0.25, -1.0)], strict=True):
        assert got == lo + 0.5 * (hi - lo) * (1.0 + math.cos(len(text) / 40 * math.pi))


def test_length_values(verifier):
    f = term("length", verifier)
    texts = [
        "$\\boxed{12}$",
        "$\\boxed{13}$" + "x" * 10,
        "$\\boxed{12}$" + "x" * 20,
        "$\\boxed{13}$" + "y" * 5,
    ]
    # lengths 12, 22, 32, 17: lambda = 0.5 - (len - 12) / 20
    assert f(completions=texts, solution=[GOLD] * 4) == pytest.approx([0.5, 0.0, -0.5, 0.0])
    assert f(completions=[RIGHT, WRONG], solution=[GOLD] * 2) == [0.0, 0.0]  # equal lengths


def test_unparseable_gold_seed_by_default_or_skip(verifier):
    logged: list[tuple[str, float]] = []
    texts, golds = ["$\\boxed{12}$", "$\\boxed{77}$", "abc" * 5], ["12", "no math here", GOLD]
    kw = {"completions": texts, "solution": golds, "log_metric": lambda k, v: logged.append((k, v))}
    assert term("accuracy", verifier)(**kw) == [1.0, 1.0, 0.0]  # the seed's value is the default
    assert ("verifier/unparseable_gold_rows", 2.0) in logged
    assert term("accuracy", verifier, unparseable_gold="skip")(**kw) == [None, None, 0.0]
    assert term("cosine", verifier)(**kw)[:2] == [1.0, 1.0]
    assert term("cosine", verifier, unparseable_gold="skip")(**kw)[:2] == [None, None]
    # length: the seed counted such rows as correct (lengths 12, 12, 15 -> lambda 0.5, 0.5, -0.5)
    assert term("length", verifier)(**kw) == pytest.approx([0.5, 0.5, -0.5])
    assert term("length", verifier, unparseable_gold="skip")(**kw) == [None, None, -0.5]


# Golds that parse to nothing, to a bare string (no sympy value), and to the empty set; each with a right-looking,
# a wrong and an empty completion. The seed scored the first as 1.0 (len(gold_parsed) == 0) and verified the others.
ODD_GOLDS = {"nothing": "no math at all", "bare_string": "$1 +$", "empty_set": "$\\emptyset$"}
ODD_TEXTS = ["$\\boxed{1 +}$", "$\\boxed{\\emptyset}$", "$\\boxed{\\varnothing}$", "$\\boxed{7}$", ""]


@pytest.mark.parametrize("kind", sorted(ODD_GOLDS))
def test_odd_golds_get_the_seeds_values_by_default(verifier, kind):
    from openrs.rewards.mathcheck import parse_gold

    gold = ODD_GOLDS[kind]
    parsed = parse_gold(gold)
    assert {
        "nothing": parsed == [],
        "bare_string": parsed and all(isinstance(x, str) for x in parsed),
        "empty_set": bool(parsed) and str(parsed[0]) == "EmptySet",
    }[kind], parsed
    texts, golds = ODD_TEXTS, [gold] * len(ODD_TEXTS)
    assert term("accuracy", verifier)(completions=texts, solution=golds) == seed_accuracy(texts, golds)
    assert term("cosine", verifier)(completions=texts, solution=golds) == seed_cosine(texts, golds)
    assert term("length", verifier)(completions=texts, solution=golds) == seed_length(texts, golds)


def test_needs_solution(verifier):
    with pytest.raises(ValueError, match="solution"):
        term("accuracy", verifier)(completions=[RIGHT])


def test_one_correctness_pass_shared_across_terms():
    funcs, _ = build_reward_funcs(
        {"terms": {"accuracy": {}, "cosine": {}, "length": {}}, "verifier": {"workers": 1, "timeout_s": 10.0}}
    )
    v = funcs[0].verifier
    assert all(f.verifier is v for f in funcs) and v.settings == ["all", True]
    logged: list[str] = []
    texts = [RIGHT, WRONG, TEXT_IN_BOX, RIGHT]  # one duplicate
    try:
        for f in funcs:
            f(completions=texts, solution=[GOLD] * 4, log_metric=lambda k, _: logged.append(k))
        assert v.totals["judged"] == 3  # each distinct (completion, gold) judged once, for both normalizations
        assert logged.count("verifier/seconds") == 1
    finally:
        v.close()


# --- parity with the seed's code path ------------------------------------------------------------------------


def _parity_cases(shared: Path | None) -> tuple[list[str], list[str]]:
    texts = [
        RIGHT,
        WRONG,
        TEXT_IN_BOX,
        "so \\boxed{\\text{12}}",
        "Answer: $x = 12$",
        "final answer is $12$. I hope",
        "\\[ \\boxed{12} \\]",
        "$\\boxed{1}$ and $\\boxed{2}$",
        "\\boxed{",
        "",
        "\\boxed{12.0}",
        "$\\frac{24}{2}$",
    ]
    golds = [GOLD, GOLD, GOLD, "\\boxed{12}", GOLD, GOLD, GOLD, "$1, 2$", GOLD, GOLD, GOLD, GOLD]
    if shared is not None:  # real MATH golds from ../shared: full solutions, as open-rs's `solution` column
        rows = [json.loads(line) for line in (shared / "train_sample.jsonl").read_text().splitlines()[:24]]
        for i, r in enumerate(rows):
            answer = r["answer"] if i % 3 else "7"
            texts.append(f"<think>\n{r['problem']}\n</think>\nSo the answer is $\\boxed{{{answer}}}$.")
            golds.append(r["solution"])
    return texts, golds


def test_parity_with_seed(verifier, shared_data):
    texts, golds = _parity_cases(shared_data)
    acc = term("accuracy", verifier, unparseable_gold="seed")
    assert acc(completions=texts, solution=golds) == seed_accuracy(texts, golds)
    cos = term("cosine", verifier, max_len=1000, unparseable_gold="seed")
    assert cos(completions=texts, solution=golds) == seed_cosine(texts, golds, max_len=1000)
    length = term("length", verifier, unparseable_gold="seed")
    assert length(completions=texts, solution=golds) == seed_length(texts, golds)
    assert seed_correct(TEXT_IN_BOX, GOLD, "all") is True and seed_correct(TEXT_IN_BOX, GOLD, True) is False


# --- time bound ----------------------------------------------------------------------------------------------


def test_timeout_kills_stuck_worker_and_next_batch_scores():
    limit = 1.5
    v = SharedVerifier(workers=2, timeout_s=limit)
    acc = get_reward("accuracy", verifier=v)
    cos = get_reward("cosine", verifier=v)  # registered up front (as build_reward_funcs does): one pass covers both
    try:
        assert acc(completions=[RIGHT], solution=[GOLD]) == [1.0]  # start the workers outside the timed part
        logged: dict[str, float] = {}
        start = time.monotonic()
        out = acc(
            completions=[HANGS_SYMPY, RIGHT, WRONG],
            solution=[GOLD] * 3,
            log_metric=lambda k, val: logged.__setitem__(k, val),
        )
        elapsed = time.monotonic() - start
        assert out == [0.0, 1.0, 0.0]
        assert elapsed < limit + 3.0, elapsed
        assert logged["verifier/timeouts"] == 1.0 and v.pool.replaced == 1
        # the verdict is cached: cosine in the same step does not wait again
        start = time.monotonic()
        wrong = -0.5 + 0.5 * 0.5 * (1 + math.cos(len(HANGS_SYMPY) / 1000 * math.pi))
        assert cos(completions=[HANGS_SYMPY], solution=[GOLD]) == pytest.approx([wrong])
        assert time.monotonic() - start < 1.0
        # the replaced worker serves the next batch
        batch = [RIGHT, "\\boxed{12}", WRONG, "$\\boxed{\\frac{36}{3}}$"]
        assert acc(completions=batch, solution=[GOLD] * 4) == [1.0, 1.0, 0.0, 1.0]
    finally:
        workers = list(v.pool._workers)
        v.close()
    assert all(w.proc.poll() is not None for w in workers)  # close() leaves no process behind


def test_terms_pickle_with_a_fresh_lazy_pool(verifier):
    f = term("accuracy", verifier)
    f(completions=[RIGHT], solution=[GOLD])
    g = pickle.loads(pickle.dumps(f))
    assert g.verifier is not verifier and g.verifier._pool is None and g.__name__ == "accuracy"
    try:
        assert g(completions=[RIGHT, WRONG], solution=[GOLD] * 2) == [1.0, 0.0]
    finally:
        g.verifier.close()


# --- the bounded regex scan is exact -------------------------------------------------------------------------


def test_boxed_env_scan_start_never_skips_a_match():
    """Differential check of `boxed_env_scan_start` against a full scan, on random LaTeX-ish token soup."""
    patterns = [p for p, _ in _scan_patterns([answer_config("all")]) if _is_boxed_env_pattern(p.pattern)]
    assert len(patterns) == 1, "math-verify's boxed regex changed: the bounded scan is off (still correct)"
    pattern = patterns[0]
    tokens = [
        "$",
        "$$",
        "\\[",
        "\\]",
        "\\(",
        "\\)",
        "\n",
        " ",
        "[",
        "]",
        "\\boxed{",
        "}",
        "{",
        "x",
        "12",
        "\\",
        "\\$",
        ",",
        " and ",
        "%",
        "\r",
        "\t",
    ]
    rng = random.Random(0)
    checked = 0
    for _ in range(4000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 40)))
        full = [(m.span(), m.groupdict()) for m in pattern.finditer(text)]
        bounded = [(m.span(), m.groupdict()) for m in pattern.finditer(text, boxed_env_scan_start(text))]
        assert bounded == full, text
        checked += bool(full)
    assert checked > 200  # the soup does produce matches


def test_tiny_verdict_cache_still_scores_the_whole_batch():
    v = SharedVerifier(workers=1, timeout_s=10.0, cache_size=1)
    try:
        acc = get_reward("accuracy", verifier=v)
        assert acc(completions=[RIGHT, WRONG, "\\boxed{12}", "\\boxed{1}"], solution=[GOLD] * 4) == [
            1.0,
            0.0,
            1.0,
            0.0,
        ]
    finally:
        v.close()
