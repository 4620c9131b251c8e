"""Upper bounds that catch typos before they waste memory, time or every byte of input.

One place for them, so the CLI, the sources and the model metadata refuse the same values
(standard library only: ``runtime.metadata`` is read by ``export`` too).
"""

from __future__ import annotations

# libsndfile refuses files with more than 1024 channels (SF_MAX_CHANNELS); raw PCM
# gets the same bound, since a frame wider than the whole stream reads as "no audio".
MAX_CHANNELS = 1024
# Capture periods are a few thousand frames at most; 65536 is over a second at
# 48 kHz and keeps one raw read (65536 x 1024 channels x 4 bytes) under 256 MiB.
MAX_BLOCK_FRAMES = 65536
# The highest rate audio interfaces offer. Far above it a typo (an extra zero or three)
# resamples a whole stream into a handful of samples: "0 windows" with no reason given.
MAX_RATE = 768_000
# Seconds given on a command line (a hop, a duration) become sample counts with round():
# a huge finite value overflows there, and nothing this toolkit does runs for a year.
MAX_SECONDS = 365 * 24 * 3600
# Below 1 kHz nothing a microphone records is left to classify (telephone speech is 8 kHz), and a
# header or --rate that low is a typo or a broken file: 8000 samples at "1 Hz" upsample to 16,000
# windows, and a 64k-frame block to gigabytes.
MIN_RATE = 1_000
# --smooth averages the last K windows; a thousand is minutes of audio at any hop here, and a
# typo far above it would cost K vector additions per window (or overflow the deque's length).
MAX_SMOOTH_WINDOWS = 1_000
# A classifier window is a second or a few; ten minutes (a ring buffer of 10 x 60 x rate
# floats) is far beyond any model here, and a metadata typo above it would allocate gigabytes.
MAX_WINDOW_SECONDS = 600
# Float audio is nominally within +-1 (full scale); a few dB over happens (a float mix, inter-sample
# peaks), 24 dB (16x) does not. Beyond it a float file holds garbage: finite values up to 3.4e38, which
# the resampler's filter turns into inf and NaN, and whose squares overflow a window's RMS.
MAX_SAMPLE_ABS = 16.0
