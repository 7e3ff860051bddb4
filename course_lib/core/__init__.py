"""The machinery every lesson shares: paths, runtime (device, threads, seeds, autocast), presets, the Trainer
and its callbacks, checkpoints, data, metrics and plots.
"""
from .checkpoints import (DIGEST_KEY, CheckpointError, atomic_write, tensors_digest, save_tensors,
                          load_tensors, save_weights, load_weights_and_metadata, load_weights)
from .checks import (integer, real, same_shape, non_empty, token_ids, names)
from .data import (MIRROR_ENV, DataError, ChecksumError, RemoteFile, Dataset, REGISTRY, sha256_of, ORPHAN_AGE,
                   fetch, fetch_all, read_text, load_shakespeare, train_val_split, load_names, load_sst2,
                   describe_registry)
from .metrics import (accuracy, wilson_interval, ngram_counts, bleu, corpus_bleu, bleu_by_bucket)
from .parameters import (count_parameters)
from .paths import (ROOT, NOTEBOOKS, data_dir, build_dir, results_dir, checkpoints_dir)
from .plots import (LiveLossPlot, loss_curves, fit_exponential, fit_power_law, log_lines, lines, heatmap)
from .presets import (Presets)
from .progress import (progress_enabled)
from .runtime import (PROFILES, check_profile, pick_device, set_threads, seed_everything, cpu_has_native_bf16,
                      cpu_amp_allowed, autocast, describe, setup)
from .train import (TrainConfig, lr_at, History, unwrap, to_device, make_optimizer, EVENTS, Trainer)
