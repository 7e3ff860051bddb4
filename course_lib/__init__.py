"""course_lib: the shared, device-agnostic code of the course RNN -> LSTM -> Seq2Seq -> attention ->
Transformer -> GPT -> BERT -> RLHF. One file per idea; lessons import from here."""

__version__ = "0.1.0"
