"""Reward terms of the Open RS recipe and the shared, time-bounded math verifier.

    from openrs.rewards import REWARDS, get_reward, build_reward_funcs
    funcs, weights = build_reward_funcs(cfg.reward)   # -> trl.GRPOTrainer(reward_funcs=funcs), reward_weights

Modules: `terms` (the terms), `params` (parameter validation), `registry` (names, builders), `verifier` (shared
pass + cache + metrics), `pool` (worker processes with a hard time limit), `mathcheck` (gold parse, verify and
caches inside a worker), `extraction` (the completion's answer, one scan for all normalizations), `text`
(completion text), `config` (Hydra schema of the `reward` group), `reference` (the seed's naive code path, for
parity tests and benchmarks).
"""

from openrs.rewards.config import RewardConfig, RewardTermConfig, VerifierConfig
from openrs.rewards.registry import build_reward_funcs, default_verifier, get_reward
from openrs.rewards.terms import REWARDS, check_params
from openrs.rewards.verifier import SharedVerifier, Verdict

__all__ = [
    "REWARDS",
    "RewardConfig",
    "RewardTermConfig",
    "SharedVerifier",
    "Verdict",
    "VerifierConfig",
    "build_reward_funcs",
    "check_params",
    "default_verifier",
    "get_reward",
]
