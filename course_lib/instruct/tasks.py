"""Lesson 09, part A: a synthetic instruction set made from Shakespeare lines.

    data = InstructionSet.build(text, seed=0)     # seeded: tasks x phrasings x lines
    data.sample_train(rng)                        # one training example (seen tasks, training phrasings)
    data.split("seen" | "new_phrasing" | "unseen")  # the held-out evaluation sets

The chat format, one string per example (the three markers are single tokens, see `instruct.sft`):

    <|user|>Upper-case this line.\nO Romeo, Romeo!<|end|><|assistant|>O ROMEO, ROMEO!<|end|>

Tasks are small string functions of one Shakespeare line; each has a few phrasings of its instruction. Held
out from training: new lines (the validation part of the text), one phrasing of every trained task, and whole
tasks (`Task.seen = False`).
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
CHAT_TOKENS = (USER, ASSISTANT, END)


def words(line: str) -> list[str]:
    """Words of a line: runs of letters, joined by inner apostrophes ("know't" is one word; punctuation and
    quotation marks are not part of a word)."""
    return re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*", line)


# tiny Shakespeare has no digits but "3", so counts are answered in words
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve")


@dataclass(frozen=True)
class Task:
    name: str
    phrasings: tuple[str, ...]           # used in training (for a seen task)
    held_out_phrasing: str               # never trained on: tests whether the model learned the task or the words
    answer: Callable[[str, str], str]    # (speaker, line) -> the answer
    uses_speaker: bool = False           # the input shows "SPEAKER: line" instead of the line alone
    seen: bool = True                    # False: a whole task kept out of training


TASKS: tuple[Task, ...] = (
    Task("repeat", ("Repeat this line.", "Say it again.", "Echo this."), "Copy it out exactly.",
         lambda s, l: l),
    Task("upper", ("Upper-case this line.", "Write it in capitals.", "Shout it."), "Make every letter big.",
         lambda s, l: l.upper()),
    Task("first_word", ("What is the first word?", "Give the opening word.", "First word only."),
         "Which word comes first?", lambda s, l: words(l)[0]),
    Task("last_word", ("What is the last word?", "Give the final word.", "Last word only."),
         "Which word ends it?", lambda s, l: words(l)[-1]),
    Task("speaker", ("Who speaks this line?", "Name the speaker.", "Who says this?"),
         "Whose line is it?", lambda s, l: s, uses_speaker=True),
    Task("count_words", ("How many words?", "Count the words.", "Number of words?"),
         "Give the word count.", lambda s, l: NUMBER_WORDS[len(words(l))]),
    # never trained on
    Task("lower", ("Lower-case this line.", "Write it in small letters."), "Whisper it.",
         lambda s, l: l.lower(), seen=False),
    Task("reverse_words", ("Reverse the word order.", "Say the words backwards."), "Words in reverse.",
         lambda s, l: " ".join(reversed(words(l))), seen=False),
)


def task(name: str) -> Task:
    for t in TASKS:
        if t.name == name:
            return t
    raise KeyError(f"no task {name!r}: expected one of {[t.name for t in TASKS]}")


@dataclass(frozen=True)
class Example:
    task: str
    instruction: str
    input: str
    answer: str

    @property
    def prompt(self) -> str:
        return chat_prompt(self.instruction, self.input)

    @property
    def text(self) -> str:
        return self.prompt + self.answer + END


def chat_prompt(instruction: str, line: str) -> str:
    return f"{USER}{instruction}\n{line}{END}{ASSISTANT}"


def make_example(t: Task, instruction: str, speaker: str, line: str) -> Example:
    shown = f"{speaker}: {line}" if t.uses_speaker else line
    return Example(t.name, instruction, shown, t.answer(speaker, line))


def shakespeare_lines(text: str, min_words: int = 3, max_words: int = 7, max_chars: int = 36,
                      max_speaker_chars: int = 14) -> list[tuple[str, str]]:
    """(speaker, line) pairs from tiny Shakespeare: short plain lines (letters and simple punctuation) whose
    speaker's name is short, so a whole example fits in a 128-character context."""
    out, speaker, previous = [], None, ""
    for raw in text.split("\n"):
        if not previous.strip() and re.fullmatch(r"[A-Z][A-Za-z ]*:", raw):   # a name after a blank line
            speaker = raw[:-1]
        elif not raw.strip():
            speaker = None
        elif (speaker and len(speaker) <= max_speaker_chars and len(raw) <= max_chars
              and min_words <= len(words(raw)) <= max_words and re.fullmatch(r"[A-Za-z',;:.!? -]+", raw)
              and raw == raw.strip() and not re.search(r"(^|[^A-Za-z])'|'($|[^A-Za-z])", raw)):
            # (no quotation marks: an apostrophe only ever sits inside a word, as in "know't")
            out.append((speaker, raw))
        previous = raw
    return out


@dataclass
class InstructionSet:
    train_lines: list[tuple[str, str]]
    eval_lines: list[tuple[str, str]]     # from the validation text: never seen in training
    seed: int = 0
    eval_per_task: int = 40
    tasks: tuple[Task, ...] = TASKS
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, text: str, seed: int = 0, eval_per_task: int = 40, val_fraction: float = 0.1,
              max_chars: int = 28, max_words: int = 6) -> "InstructionSet":
        cut = int(len(text) * (1 - val_fraction))           # nanoGPT's split, as lessons 06 and 10
        train = shakespeare_lines(text[:cut], max_words=max_words, max_chars=max_chars)
        held = shakespeare_lines(text[cut:], max_words=max_words, max_chars=max_chars)
        train_set = {line for _, line in train}
        held = list(dict.fromkeys((s, l) for s, l in held if l not in train_set))   # no line in both
        random.Random(seed).shuffle(held)
        if len(held) < eval_per_task:
            raise ValueError(f"only {len(held)} held-out lines for eval_per_task={eval_per_task}")
        return cls(train, held, seed, eval_per_task)

    @property
    def seen_tasks(self) -> list[Task]:
        return [t for t in self.tasks if t.seen]

    @property
    def unseen_tasks(self) -> list[Task]:
        return [t for t in self.tasks if not t.seen]

    def sample_train(self, rng: random.Random) -> Example:
        """One training example: a seen task, one of its training phrasings, a training line."""
        t = rng.choice(self.seen_tasks)
        speaker, line = rng.choice(self.train_lines)
        return make_example(t, rng.choice(t.phrasings), speaker, line)

    def split(self, name: str) -> list[Example]:
        """Evaluation sets, fixed by the seed (each task on `eval_per_task` held-out lines):
        "seen": seen tasks, training phrasings;  "new_phrasing": seen tasks, their held-out phrasing;
        "unseen": the held-out tasks (their first phrasing)."""
        if name not in self._cache:
            rng = random.Random(self.seed + 1)
            lines = self.eval_lines[:self.eval_per_task]
            if name == "seen":
                out = [make_example(t, rng.choice(t.phrasings), s, l) for t in self.seen_tasks for s, l in lines]
            elif name == "new_phrasing":
                out = [make_example(t, t.held_out_phrasing, s, l) for t in self.seen_tasks for s, l in lines]
            elif name == "unseen":
                out = [make_example(t, t.phrasings[0], s, l) for t in self.unseen_tasks for s, l in lines]
            else:
                raise ValueError(f"unknown split {name!r}: expected 'seen', 'new_phrasing' or 'unseen'")
            self._cache[name] = out
        return self._cache[name]

    def demonstrations(self, t: Task, k: int, seed: int = 0, max_chars: int = 16) -> list[Example]:
        """`k` worked examples of task `t` on short training lines (for few-shot prompts)."""
        rng = random.Random(seed)
        short = [(s, l) for s, l in self.train_lines if len(l) <= max_chars and len(s) <= 8]
        return [make_example(t, t.phrasings[0], s, l) for s, l in rng.sample(short, k)]


def script_prompt(demos: Sequence[Example], query: Example, instruction: str | None = None) -> str:
    """The same exchange written as a play script, the only dialogue format a model pretrained on Shakespeare
    knows (speaker name, colon, line break), for prompting the *untuned* model fairly:

        USER:\nRepeat this line.\nNow, my fair friend,\n\nBOT:\nNow, my fair friend,\n\nUSER:\n...\n\nBOT:\n
    """
    turn = lambda instr, line: f"USER:\n{instr}\n{line}\n\nBOT:\n"
    shots = "".join(turn(d.instruction, d.input) + d.answer + "\n\n" for d in demos)
    return shots + turn(instruction or query.instruction, query.input)
