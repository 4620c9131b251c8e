"""Training side of tinyaudio: the model zoo (`train.models`), its layers and configs.

Kept import-light on purpose: importing `train` does not import TensorFlow;
`train.models` and `train.layers` do.
"""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes, oneDNN) is noise for CLI users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Training on the CPU spends much of its time in the kernel re-zeroing buffers glibc handed back to
# it; train.malloc keeps them. It has to run before TensorFlow is imported (and starts its
# threads): applied later it recovered only part of the time here. TINYAUDIO_MALLOC=default: off.
from train.malloc import tune_malloc  # noqa: E402

tune_malloc()
