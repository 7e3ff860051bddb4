"""Lesson 11: reasoning. The addition task in three answer formats and its program verifier (`addition`), supervised
training on a format (`supervised`), test-time compute: pass@k and majority vote (`sampling`), and RL with a
verifiable reward on lesson 10's loop (`rl`).
"""
from .addition import (VOCAB, END, FORMATS, DIGITS, PROMPT_LEN, addition_tokenizer, prompt, completion_length, columns,
                       completion, answer_text, parse_answer, verify, right_length, read_prompt, ProblemSplit,
                       encode_prompts, encode_examples, decode_completions, answers, sequence_reward, problems_of)
from .sampling import (pass_at_k, majority_vote, majority_vote_accuracy, sample_completions, sample_answers,
                       greedy_accuracy, pass_curve, never_solved)
from .supervised import (FormatRun, train_format)
from .rl import (RLRun, rl_config, checked_rates, rl_with_verifier)
from .real_model import (STYLES, two_digit_problems, chat_questions, read_final_number, ask_all)
