"""Training side of tinyaudio: the model zoo (`train.models`), its layers and configs.

Kept import-light on purpose: importing `train` does not import TensorFlow;
`train.models` and `train.layers` do.
"""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes, oneDNN) is noise for CLI users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
