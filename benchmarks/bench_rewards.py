"""Reward throughput and worst case: the shared verifier against the seed's naive, sequential code path.

    .venv/bin/python benchmarks/bench_rewards.py                       # both tables, ~4-6 minutes on 2 cores
    .venv/bin/python benchmarks/bench_rewards.py --style env --repeats 1 --skip-adversarial

Throughput: >= 800 GRPO-like completions (~10k characters, groups of 6 per prompt; golds are the full MATH
solutions of /work/shared/data/benchmarks/train_sample.jsonl when present, else generated), scored with
accuracy + cosine + length in steps of `--batch` completions. Baseline: `openrs.rewards.reference`, i.e. each
term parses the gold and the completion anew, sequentially, in-process, as the seed did. Every path warms up
(imports, ANTLR's prediction cache) on other problems first; values must equal the baseline's or the script fails.
Worst case: adversarial completions, each judged alone by the shared verifier, and by the seed's code path in a
subprocess that is killed after `--seed-limit` seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from openrs.rewards import SharedVerifier, build_reward_funcs, get_reward
from openrs.rewards import extraction as ex
from openrs.rewards import mathcheck as mc
from openrs.rewards.reference import seed_accuracy, seed_correct, seed_cosine, seed_length

TRAIN_SAMPLE = Path("/work/shared/data/benchmarks/train_sample.jsonl")
MAX_LEN = 3584  # rs3's cosine max_len
Steps = list[tuple[list[str], list[str]]]


def load_problems() -> tuple[list[dict], str]:
    if TRAIN_SAMPLE.exists():
        rows = [json.loads(line) for line in TRAIN_SAMPLE.read_text().splitlines() if line.strip()]
        return [
            {"solution": r["solution"], "answer": r["answer"]} for r in rows
        ], f"{TRAIN_SAMPLE.name} ({len(rows)} rows)"
    rng = random.Random(0)  # fallback: generated problems with a worked, boxed solution
    rows = []
    for _ in range(500):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        step = f"We compute ${a} \\times {b}$ by splitting ${b}$ into tens and units, then add the products. "
        rows.append({"solution": step * 8 + f"So the product is $\\boxed{{{a * b}}}$.", "answer": str(a * b)})
    return rows, "generated arithmetic (train_sample.jsonl absent)"


ENDINGS = {  # how a completion states its answer, after the reasoning
    "plain": "**Final Answer**\nThe answer is \\boxed{{{a}}}.",  # a bare \boxed (R1-distill's usual form)
    "display": "**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]",  # \boxed inside \[ \]
    "inline": "The answer is $\\boxed{{{a}}}$.",  # \boxed inside $ $
}
STYLES = {
    "mixed": (("plain", 0.35), ("display", 0.25), ("inline", 0.30)),
    "env": (("display", 0.45), ("inline", 0.45)),
    "plain": (("plain", 0.9),),
}  # the rest of each mix (10%): truncated, no answer


def make_batch(n: int, problems: list[dict], bodies: list[dict], style: str, seed: int) -> tuple[list[str], list[str]]:
    """GRPO-like completions: groups of 6 per problem, ~10k chars of LaTeX-heavy reasoning, then a final answer
    (half right; wrong ones from a few common slips)."""
    rng = random.Random(seed)
    texts, golds = [], []
    while len(texts) < n:
        row = rng.choice(problems)
        for _ in range(6):
            body, size = [], 0
            while size < 9600:  # reasoning: other solutions' text with their boxes removed
                piece = rng.choice(bodies)["solution"].replace("\\boxed", "")
                body.append(piece)
                size += len(piece) + 1
            answer = (
                row["answer"] if rng.random() < 0.5 else rng.choice(["7", "12", "\\frac{1}{2}", row["answer"] + "+1"])
            )
            r, ending = rng.random(), "I ran out of room before finishing"
            for name, share in STYLES[style]:
                if r < share:
                    ending = ENDINGS[name].format(a=answer)
                    break
                r -= share
            texts.append("<think>\n" + "\n".join(body)[:9600] + "\n</think>\n\n" + ending)
            golds.append(row["solution"])
    return texts[:n], golds[:n]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def seed_path(steps: Steps) -> list:
    return [[seed_accuracy(t, g), seed_cosine(t, g, max_len=MAX_LEN), seed_length(t, g)] for t, g in steps]


def in_process_path(steps: Steps) -> list:
    """The shared pass without pool or time limit (attribution only): each distinct pair judged once."""
    out = []
    for texts, golds in steps:
        judged = {}
        for t, g in zip(texts, golds, strict=True):
            if (t, g) not in judged:
                judged[(t, g)] = mc.check((t, g, ("all", True)))
        acc, cos, correct_true = [], [], []
        for t, g in zip(texts, golds, strict=True):
            ok, (c_all, c_true) = judged[(t, g)]
            acc.append(float(c_all) if ok else 1.0)
            correct_true.append(c_true if ok else True)
            lo, hi = (0.5, 1.0) if c_true else (-0.5, 0.0)
            cos.append(float(lo + 0.5 * (hi - lo) * (1.0 + math.cos(len(t) / MAX_LEN * math.pi))) if ok else 1.0)
        lengths = [len(t) for t in texts]
        a, b = min(lengths), max(lengths)
        lam = [0.5 - (x - a) / (b - a) if b > a else 0.0 for x in lengths]
        length = [float(v if c else min(0, v)) if b > a else 0.0 for v, c in zip(lam, correct_true, strict=True)]
        out.append([acc, cos, length])
    return out


def reward_cfg(workers: int, boxed_all: bool = False) -> dict:
    seed_mode = {"unparseable_gold": "seed"}
    extra = {"boxed": "all"} if boxed_all else {}
    return {
        "terms": {
            "accuracy": {"params": seed_mode},
            "cosine": {"params": {"max_len": MAX_LEN, **seed_mode, **extra}},
            "length": {"params": {**seed_mode, **extra}},
        },
        "verifier": {"workers": workers, "timeout_s": 30.0},
    }


def run_pool(cfg: dict, warm: Steps, steps: Steps) -> tuple[float, list]:
    """A fresh verifier: workers start and warm up (untimed), then the timed steps."""
    funcs, _ = build_reward_funcs(cfg)
    [[f(completions=t, solution=g) for f in funcs] for t, g in warm]
    secs, out = timed(lambda: [[f(completions=t, solution=g) for f in funcs] for t, g in steps])
    funcs[0].verifier.close()
    return secs, out


def _measure(path: str, workers: int, args: argparse.Namespace, q) -> None:
    """One path, in a fresh process: warm-up (each process sees `--warm` completions of other problems), timed run."""
    rows, _ = load_problems()
    cut = len(rows) * 4 // 5  # warm-up problems are disjoint from the timed ones (no gold-cache head start)
    texts, golds = make_batch(args.n, rows[:cut], rows, args.style, seed=0)
    warm_t, warm_g = make_batch(args.warm * max(1, workers), rows[cut:], rows, args.style, seed=99)
    steps, warm = _split(texts, golds, args.batch), _split(warm_t, warm_g, args.batch)
    mc.quiet_math_verify_logs()
    if path == "seed":
        seed_path(warm)
        q.put(timed(lambda: seed_path(steps)))
    elif path == "in-process":
        mc.init_worker()  # what a pool worker does at start
        in_process_path(warm)
        q.put(timed(lambda: in_process_path(steps)))
    else:
        q.put(run_pool(reward_cfg(workers, boxed_all=path == "boxed-all"), warm, steps))


def measure(path: str, workers: int, args: argparse.Namespace) -> tuple[float, list]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(path, workers, args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def _split(texts: list[str], golds: list[str], batch: int) -> Steps:
    return [(texts[i : i + batch], golds[i : i + batch]) for i in range(0, len(texts), batch)]


def throughput(args: argparse.Namespace) -> None:
    rows, source = load_problems()
    texts, golds = make_batch(args.n, rows[: len(rows) * 4 // 5], rows, args.style, seed=0)
    mean_chars = sum(map(len, texts)) / len(texts)
    print(
        f"\n## Throughput: {args.n} completions ({args.style} answer styles), mean {mean_chars:,.0f} chars, "
        f"steps of {args.batch}; golds: {source}; each path in a fresh process after {args.warm} warm-up "
        f"completions per process; load average {os.getloadavg()[0]:.1f}"
    )
    breakdown(texts[:120], golds[:120], args)

    paths = [
        ("seed", 1, "seed-like baseline: 3 terms each parse gold + completion, verify; sequential"),
        ("in-process", 1, "shared pass + caches, in-process, 1 core (attribution only: no time limit)"),
    ]
    paths += [("pool", w, f"shared verifier, {w} worker process(es)") for w in args.workers]
    if args.boxed_all:
        w = max(args.workers)
        paths.append(("boxed-all", w, f"shared verifier, {w} workers, cosine/length boxed=all (not seed parity)"))
    results: dict[str, list[float]] = {}
    base = None
    notes: dict[str, str] = {}
    for _ in range(args.repeats):
        for path, workers, label in paths:
            secs, out = measure(path, workers, args)
            results.setdefault(label, []).append(secs)
            if path == "seed":
                base = out
            elif path == "boxed-all":
                diffs = sum(
                    x != y
                    for s1, s2 in zip(out, base, strict=True)
                    for a, b in zip(s1, s2, strict=True)
                    for x, y in zip(a, b, strict=True)
                )
                notes[label] = f"{diffs} of {3 * args.n} rewards differ from the seed"
            elif out != base:
                raise SystemExit(f"{label}: values differ from the seed baseline")
    best_base = min(results[paths[0][2]])
    print(f"\n| path | best s (of {args.repeats}) | median s | completions/s | speed-up (best) | note |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for label, ts in results.items():
        print(
            f"| {label} | {min(ts):.2f} | {statistics.median(ts):.2f} | {args.n / min(ts):,.0f} | "
            f"{best_base / min(ts):.1f}x | {notes.get(label, '')} |"
        )
    print("\nReward values of every seed-parity path identical to the baseline (asserted).")


def breakdown(texts: list[str], golds: list[str], args: argparse.Namespace) -> None:
    """Where the seed's time goes, per completion and term (in-process, math-verify's own caches only)."""
    from math_verify import parse, verify

    mc.quiet_math_verify_logs()
    patterns = ex._scan_patterns([ex.answer_config("all")])
    parts = {
        "gold parse (full solution text)": lambda t, g: parse(
            g, extraction_mode="first_match", extraction_config=list(mc.GOLD_CONFIG)
        ),
        "completion: regex scan only": lambda t, g: ex._first_match(t, patterns),
        "completion: full parse, boxed=all (accuracy)": lambda t, g: parse(
            t, extraction_config=[ex.answer_config("all")], extraction_mode="first_match"
        ),
        "completion: full parse, boxed=True (cosine, length)": lambda t, g: parse(
            t, extraction_config=[ex.answer_config(True)], extraction_mode="first_match"
        ),
    }
    rows, _ = load_problems()
    warm_t, warm_g = make_batch(min(args.warm, 120), rows[len(rows) * 4 // 5 :], rows, args.style, seed=99)
    for fn in parts.values():  # warm ANTLR on other problems
        [fn(t, g) for t, g in zip(warm_t, warm_g, strict=True)]
    print("\n| seed step part (per completion, per term; math-verify's 20-entry caches only) | ms |\n| --- | ---: |")
    for name, fn in parts.items():
        secs, _ = timed(lambda fn=fn: [fn(t, g) for t, g in zip(texts, golds, strict=True)])
        print(f"| {name} | {1e3 * secs / len(texts):.2f} |")
    gp = [parse(g, extraction_mode="first_match", extraction_config=list(mc.GOLD_CONFIG)) for g in golds]
    ap = [parse(t, extraction_config=[ex.answer_config("all")], extraction_mode="first_match") for t in texts]
    secs, _ = timed(lambda: [verify(a, g) for a, g in zip(ap, gp, strict=True)])
    print(f"| verify | {1e3 * secs / len(texts):.2f} |")


ADVERSARIAL: dict[str, str] = {
    "power tower 9^9^9^9 in \\boxed": "\\boxed{9^{9^{9^{9}}}}",
    "power tower 10^10^10 in $\\boxed$": "The answer is $\\boxed{10^{10^{10}}}$.",
    "huge factorial (10^10)!": "\\boxed{(10^{10})!}",
    "factorial 100000000!": "\\boxed{100000000!}",
    "1 MB of text, box at the end": "word " * 200_000 + "\\boxed{12}",
    "1 MB inside one \\boxed": "\\boxed{" + "1+" * 500_000 + "1}",
    "10,000 nested braces": "\\boxed{" + "{" * 10_000 + "12" + "}" * 10_000 + "}",
    "10,000 unbalanced \\left(": "$\\boxed{" + "\\left(" * 10_000 + "12}$",
    "non-ASCII answer": "Ответ: $\\boxed{١٢ 十二 ½ √∞}$ — 😀",
    "300 nested \\frac": "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
}


def _seed_child(text: str, q) -> None:
    mc.quiet_math_verify_logs()
    start = time.perf_counter()
    correct = [seed_correct(text, "$12$", boxed) for boxed in ("all", True, True)]  # accuracy, cosine, length
    q.put((time.perf_counter() - start, correct[0]))


def seed_in_subprocess(text: str, limit: float) -> str:
    """The seed's accuracy + cosine + length judging of one completion, in a child process's main thread (so its
    signal timeouts work: 5 s per parse and per verify comparison), killed at `limit`."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_seed_child, args=(text, q), daemon=True)
    p.start()
    deadline = time.monotonic() + limit + 3  # + the child's imports
    while p.is_alive() and time.monotonic() < deadline and q.empty():
        time.sleep(0.05)
    if q.empty():
        p.kill()
        p.join()
        return f"> {limit:.0f} s (killed)"
    secs, correct = q.get()
    p.join()
    return f"{secs:.2f} s ({'right' if correct else 'wrong'})"


def worst_case(timeout_s: float, seed_limit: float) -> None:
    print(
        f"\n## Worst case: each adversarial completion alone, gold $12$, verifier limit {timeout_s:.0f} s, "
        f"2 workers; load average {os.getloadavg()[0]:.1f}"
    )
    v = SharedVerifier(workers=2, timeout_s=timeout_s)
    acc = get_reward("accuracy", verifier=v)
    get_reward("cosine", verifier=v)  # both normalizations judged in the one pass, as in training
    acc(completions=["\\boxed{1}"], solution=["$1$"])  # start the workers
    print(
        "\n| completion | chars | shared verifier (all terms) | verdict | seed code path, 3 terms, main thread |\n| --- | ---: | ---: | --- | --- |"
    )
    worst = 0.0
    for name, text in ADVERSARIAL.items():
        logged: dict[str, float] = {}
        secs, out = timed(
            lambda text=text, logged=logged: acc(
                completions=[text], solution=["$12$"], log_metric=lambda k, val: logged.__setitem__(k, val)
            )
        )
        worst = max(worst, secs)
        verdict = "timed out: wrong" if logged.get("verifier/timeouts") else ("right" if out[0] == 1.0 else "wrong")
        seed = seed_in_subprocess(text, seed_limit) if seed_limit > 0 else "not run"
        print(f"| {name} | {len(text):,} | {secs:.2f} s | {verdict} | {seed} |")
    ok_s, ok = timed(lambda: acc(completions=["\\boxed{12}", "\\boxed{13}"], solution=["$12$"] * 2))
    replaced = v.pool.replaced
    v.close()
    print(
        f"\nMax seconds per completion: {worst:.2f} (limit {timeout_s:.0f} s). Next batch after the timeouts: "
        f"{ok} in {ok_s:.2f} s; workers replaced: {replaced}."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=804, help="completions (groups of 6)")
    ap.add_argument("--batch", type=int, default=96, help="completions per reward call (a GRPO step)")
    ap.add_argument("--style", choices=sorted(STYLES), default="mixed", help="how completions box their answer")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="verifier worker counts to time")
    ap.add_argument("--warm", type=int, default=480, help="warm-up completions per process (untimed)")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats of each path (best and median shown)")
    ap.add_argument("--boxed-all", action="store_true", help="also time cosine/length with boxed=all")
    ap.add_argument("--timeout", type=float, default=5.0, help="verifier limit per completion (worst case)")
    ap.add_argument("--seed-limit", type=float, default=40.0, help="kill the seed path after this; 0 = skip")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-adversarial", action="store_true")
    args = ap.parse_args()
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_adversarial:
        worst_case(args.timeout, args.seed_limit)


if __name__ == "__main__":
    main()
