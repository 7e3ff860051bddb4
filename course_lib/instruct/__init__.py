"""Lesson 09: from a GPT to an assistant. Part A instruction-tunes lesson 06's character GPT on a synthetic
instruction set (chat markers, response-only loss, exact match on held-out lines, phrasings and tasks); part B
measures a real chat model (SmolLM2, in course_lib.gpt.llama) on SST-2 zero- and few-shot, and probes what it
makes up.
"""
from .chat_eval import (SST2_SYSTEM, SST2_LABELS, CONTENT_FREE, sst2_label_tokens, sst2_conversation,
                        common_prefix_length, label_logprobs, calibrate)
from .fact_probe import (FactQuestion, FACT_PROBE, REFUSAL, is_refusal, is_correct, score_fact_probe)
from .evaluate import (greedy_until, answers, exact_match)
from .sft import (ChatCharTokenizer, add_chat_tokens, encode_example, collate, response_loss, sft_batches, sft_loss,
                  pretrained_char_gpt)
from .tasks import (USER, ASSISTANT, END, CHAT_TOKENS, NUMBER_WORDS, words, Task, TASKS, task, Example, chat_prompt,
                    make_example, shakespeare_lines, InstructionSet, script_prompt)
