"""Lesson 10: the judge, preferences and the reward model, PPO, DPO and the loop pieces they share.
"""
from .dpo import (DPOConfig, dpo_loss, sequence_logprobs, train_dpo)
from .judge import (WORD, words, JudgeConfig, SentimentJudge, LanguageModelJudge)
from .loop import (RLHFConfig, rl_copy, frozen_copy, pretrained_policy, make_prompts, sample_responses,
                   response_logprobs, check_rewards, kl_estimate, exact_kl, best_of_n_kl, whiten, win_rate,
                   response_nll, row_batches, Evaluator, distinct_fraction, frozen_params_unchanged, snapshot)
from .ppo import (PPOConfig, kl_penalised_rewards, gae, ppo_policy_loss, ppo_value_loss, rloo_advantages,
                  group_advantages, PolicyWithValue, PPOLog, PPORollouts, ppo_objective, train_ppo, prompt_length)
from .preferences import (bradley_terry_loss, noise_ceiling, sample_labels, PreferenceData,
                          collect_preferences, RewardConfig, RewardModel, pair_accuracy, train_reward_model)
