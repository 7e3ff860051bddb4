"""Lessons 01-02: the RNN and LSTM cells, models built on them, gradient flow, synthetic memory tasks.
"""
from .exploding import (set_recurrent_gain, clip_grad_norm, SGDRun, sgd_run, effective_lr, ClippingTest,
                        clipping_test)
from .gradient_flow import (gradient_by_distance)
from .lstm import (GATES, LSTMCell, set_forget_bias)
from .rnn import (RNNCell, hidden_of, unroll, make_cell, make_torch_recurrent, copy_cell_into_torch,
                  Recurrent, RecurrentConfig, CharLM, SequenceClassifier)
from .synthetic import (delayed_recall, delayed_recall_vocab, reversal)
