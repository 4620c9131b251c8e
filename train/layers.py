"""Custom Keras layers of the zoo: pure numeric code, no data, no I/O.

Every layer is registered for Keras serialization under the package
``tinyaudio`` so saved ``.keras`` files load with ``safe_mode=True`` (no Lambda
layers, no pickled code).

Shapes use B = batch, N = samples, T = frames, F = mel bins, C = channels.
All tensors are float32.
"""

from __future__ import annotations

import math

import numpy as np

from train.quiet import import_keras

keras = import_keras()  # the first Keras import of a run, without TensorFlow's start-up banner
ops = keras.ops

PACKAGE = "tinyaudio"


@keras.saving.register_keras_serializable(package=PACKAGE)
class PerSampleNormalization(keras.layers.Layer):
    """Divide each example by its own RMS: (B, N) -> (B, N, 1).

    The 1D paper's authors normalise every window by its RMS (no mean removal).
    The RMS is floored at ``floor`` (default 1e-4, i.e. -80 dBFS) so digital
    silence maps to zeros instead of NaN, and the gradient stays finite.
    The trailing channel axis is added here so the exported model's input is
    the 2-D (B, N) tensor MediaPipe's audio tasks expect.
    """

    def __init__(self, floor: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.floor = float(floor)

    def call(self, x):
        x = ops.cast(x, "float32")
        mean_square = ops.mean(ops.square(x), axis=-1, keepdims=True)
        # gain = 1 / max(RMS, floor), written so that every exported form keeps it finite:
        # - a multiply, not x / RMS: a full-int8 file quantizes the RMS with the scale of speech-level
        #   audio, where the floor rounds to zero, and its DIV aborted on silence ("data[i] != zero_point");
        # - the floor inside the square root, so rsqrt never sees 0 (XNNPACK's rsqrt(0) is NaN, and
        #   sqrt's gradient at 0 is infinite);
        # - scaled by c = floor ** -0.5 so that every constant (c, c**2 = 1 / floor, (c * floor)**2 =
        #   floor) is a normal float16 number: unscaled, floor**2 = 1e-8 is stored as 0 in a float16
        #   export and silence gave NaN on every class.
        # In float32 this is x / max(RMS, floor) to rounding, so trained checkpoints are unchanged.
        c = self.floor ** -0.5
        gain = c * ops.rsqrt(ops.maximum(mean_square * (c * c), (c * self.floor) ** 2))
        return ops.expand_dims(x * gain, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, 1)

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CircularShifts(keras.layers.Layer):
    """RollMix's phase-discarding layer: (B, N, 1) -> (B, N, K).

    Training: each example gets K independent random circular shifts in
    [0, N). Inference: the fixed shifts k*N//K, k = 0..K-1 (the paper does not
    say; fixed shifts make inference deterministic). The inference path is
    written with slices and a concatenation so it converts to TFLite and ONNX
    builtins; the gather of the training path never reaches an exported graph.
    """

    def __init__(self, shifts: int = 4, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if shifts < 1:
            raise ValueError(f"shifts must be >= 1, got {shifts}")
        self.shifts = int(shifts)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def fixed_shifts(self, n: int) -> list[int]:
        return [k * n // self.shifts for k in range(self.shifts)]

    def call(self, x, training=None):
        n = x.shape[1]
        if n is None:
            raise ValueError("CircularShifts needs a static number of samples")
        if training:
            batch = ops.shape(x)[0]
            offsets = keras.random.randint(
                (batch, 1, self.shifts), 0, n, seed=self.seed_generator, dtype="int32"
            )
            idx = (ops.reshape(ops.arange(n, dtype="int32"), (1, n, 1)) + offsets) % n
            return ops.take_along_axis(ops.repeat(x, self.shifts, axis=-1), idx, axis=1)
        channels = []
        for s in self.fixed_shifts(n):
            channels.append(x if s == 0 else ops.concatenate([x[:, s:, :], x[:, :s, :]], axis=1))
        return ops.concatenate(channels, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.shifts)

    def get_config(self):
        return {**super().get_config(), "shifts": self.shifts, "seed": self.seed}


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SincConv1D(keras.layers.Layer):
    """SincNet's band-pass filter bank (Ravanelli & Bengio 2018): (B, N, 1) -> (B, N', filters).

    Two trainable parameters per filter: a low cut-off and a band width (Hz,
    stored as offsets above ``min_low_hz`` / ``min_band_hz``). The filters are
    recomputed from them in ``call`` on every step, so the cut-offs really
    train (a known Keras port builds them once in ``build`` and freezes them).
    Once the graph is frozen for export, the filter computation constant-folds
    and the layer becomes one plain convolution (TFLite CONV_2D, ONNX Conv).

    Initialisation: mel-spaced bands from 30 Hz to sr/2 - (min_low + min_band);
    window: symmetric Hamming built from its left half; odd kernel; no bias;
    padding "valid".

    Units of the trainable weights: ``hz_per_unit`` Hz, default (None) the
    sample rate, as SincNet's first code: an Adam step moves a weight by about
    the learning rate whatever its size, so a cut-off moves by ~lr*sr Hz a step
    and the filters adapt. In plain Hz (1.0, SincNet's current reference code)
    they drift under 2 Hz in 50 epochs at lr 1e-3: in practice a fixed mel
    filter bank. Files saved before this argument existed were in Hz.
    """

    def __init__(
        self,
        filters: int = 32,
        kernel_size: int = 251,
        strides: int = 2,
        sample_rate: int = 22050,
        min_low_hz: float = 50.0,
        min_band_hz: float = 50.0,
        hz_per_unit: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.sample_rate = int(sample_rate)
        self.min_low_hz = float(min_low_hz)
        self.min_band_hz = float(min_band_hz)
        self.hz_per_unit = float(self.sample_rate if hz_per_unit is None else hz_per_unit)
        if self.hz_per_unit <= 0:
            raise ValueError(f"hz_per_unit must be positive, got {hz_per_unit}")
        half = (self.kernel_size - 1) // 2
        # Time axis of the left half, in radians per Hz: 2*pi*n/sr for n = -half..-1.
        self._n = (2.0 * math.pi * np.arange(-half, 0, dtype=np.float64) / self.sample_rate).astype(
            np.float32
        )
        n_lin = np.linspace(0.0, self.kernel_size / 2.0 - 1.0, half)
        self._window = (0.54 - 0.46 * np.cos(2.0 * math.pi * n_lin / self.kernel_size)).astype(
            np.float32
        )

    def build(self, input_shape):
        if input_shape[-1] != 1:
            raise ValueError(f"SincConv1D expects one input channel, got {input_shape[-1]}")
        high_hz = self.sample_rate / 2.0 - (self.min_low_hz + self.min_band_hz)
        mel = np.linspace(_hz_to_mel(30.0), _hz_to_mel(high_hz), self.filters + 1)
        hz = _mel_to_hz(mel)
        self.low_hz = self.add_weight(
            name="low_hz",
            shape=(self.filters,),
            initializer=keras.initializers.Constant((hz[:-1] - self.min_low_hz) / self.hz_per_unit),
            trainable=True,
        )
        self.band_hz = self.add_weight(
            name="band_hz",
            shape=(self.filters,),
            initializer=keras.initializers.Constant(np.diff(hz) / self.hz_per_unit),
            trainable=True,
        )

    def cutoffs_hz(self):
        """(low, high) cut-off of every filter in Hz: two (filters,) float32 tensors."""
        low = self.min_low_hz + ops.abs(self.low_hz) * self.hz_per_unit
        high = ops.clip(low + self.min_band_hz + ops.abs(self.band_hz) * self.hz_per_unit,
                        self.min_low_hz, self.sample_rate / 2.0)
        return low, high

    def kernel(self):
        """The current filters, shape (kernel_size, 1, filters), float32."""
        low, high = self.cutoffs_hz()
        band = high - low
        n = ops.convert_to_tensor(self._n)[None, :]  # (1, half)
        window = ops.convert_to_tensor(self._window)[None, :]
        left = (ops.sin(high[:, None] * n) - ops.sin(low[:, None] * n)) / (n / 2.0) * window
        center = 2.0 * band[:, None]
        right = ops.flip(left, axis=1)
        filters = ops.concatenate([left, center, right], axis=1) / (2.0 * band[:, None])
        return ops.expand_dims(ops.transpose(filters), axis=1)

    def call(self, x):
        return ops.conv(x, self.kernel(), strides=self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        out = None if n is None else (n - self.kernel_size) // self.strides + 1
        return (input_shape[0], out, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "sample_rate": self.sample_rate,
            "min_low_hz": self.min_low_hz,
            "min_band_hz": self.min_band_hz,
            "hz_per_unit": self.hz_per_unit,
        }

    @classmethod
    def from_config(cls, config):
        # a file saved before ``hz_per_unit`` existed holds its cut-offs in Hz
        return cls(**{"hz_per_unit": 1.0, **config})


def mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular HTK-mel filter bank, shape (n_fft // 2 + 1, n_mels), float32.

    Filters are area-normalised (Slaney style) so wide high bands do not
    dominate; a filter narrower than one FFT bin keeps the bin nearest its
    centre so no mel channel is identically zero.
    """
    bins = n_fft // 2 + 1
    fft_hz = np.linspace(0.0, sample_rate / 2.0, bins)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (fft_hz[:, None] - lower[None, :]) / (centre - lower)[None, :]
    down = (upper[None, :] - fft_hz[:, None]) / (upper - centre)[None, :]
    weights = np.maximum(0.0, np.minimum(up, down))
    empty = weights.sum(axis=0) == 0.0
    nearest = np.abs(fft_hz[:, None] - centre[None, :]).argmin(axis=0)
    weights[nearest[empty], np.flatnonzero(empty)] = 1.0
    weights *= (2.0 / (upper - lower))[None, :]
    return weights.astype(np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogMelSpectrogram(keras.layers.Layer):
    """In-graph log-mel front end: (B, N, 1) -> (B, T, F, 1), T = ceil(N / hop).

    Route chosen for portability (see shared/docs/model-spec.md, front-end
    facts): ``tf.signal.stft(pad_end=True)`` -> ``tf.abs`` -> constant mel
    matrix -> ``log(mel + floor)``. TFLite lowers it to the builtins RFFT2D +
    COMPLEX_ABS + BATCH_MATMUL + LOG; tf2onnx lowers the RFFT to a DFT MatMul.
    keras.layers.MelSpectrogram is avoided on purpose: it does not go through
    tf2onnx 1.17 and its dB floor depends on the batch maximum, so one
    example's output would depend on the others in the batch. Everything here
    is per example.

    The mel matrix is a constant rebuilt from the config, not a weight, so it
    neither counts as a parameter nor bloats the ``.keras`` file.

    On the TensorFlow backend (training on CPU, and always for export) the
    graph is the ``tf.signal`` one above. On other Keras backends (JAX or
    PyTorch, to train on an accelerator) :meth:`portable` computes the same
    numbers with ``keras.ops`` (framing by gather, periodic Hann, ``rfft``);
    a test holds the two to float32 round-off, so a checkpoint trained on
    either exports the same model.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 120,
        fmin: float = 0.0,
        fmax: float | None = None,
        log_floor: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax) if fmax is not None else sample_rate / 2.0
        self.log_floor = float(log_floor)
        if not 0.0 <= self.fmin < self.fmax <= sample_rate / 2.0:
            raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got {self.fmin}, {self.fmax}")
        self._mel = mel_matrix(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)

    def frames(self, n: int) -> int:
        return -(-n // self.hop_length)

    def call(self, x):
        if keras.backend.backend() != "tensorflow":
            return self.portable(x)
        import tensorflow as tf

        pcm = tf.squeeze(x, axis=-1)
        spec = tf.signal.stft(
            pcm,
            frame_length=self.n_fft,
            frame_step=self.hop_length,
            fft_length=self.n_fft,
            window_fn=tf.signal.hann_window,
            pad_end=True,
        )
        mel = tf.matmul(tf.abs(spec), tf.constant(self._mel))
        return tf.expand_dims(tf.math.log(mel + self.log_floor), axis=-1)

    def portable(self, x):
        """The same front end in ``keras.ops`` only: (B, N, 1) float32 -> (B, T, F, 1).

        Mirrors ``tf.signal.stft(pad_end=True)``: T = ceil(N / hop) frames, the
        signal zero-padded at the end so the last frame is whole, each frame
        times a periodic Hann window, then an ``n_fft``-point real FFT.
        """
        n = x.shape[1]
        if n is None:
            raise ValueError("LogMelSpectrogram.portable needs a fixed input length")
        t = self.frames(n)
        # the samples the T frames cover; fewer than n when hop > n_fft (frames skip samples), never negative
        pcm = ops.pad(ops.squeeze(x, axis=-1), [[0, 0], [0, max(0, (t - 1) * self.hop_length + self.n_fft - n)]])
        index = (np.arange(t)[:, None] * self.hop_length + np.arange(self.n_fft)[None, :]).astype("int32")
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.n_fft) / self.n_fft)  # periodic, as tf.signal
        frames = ops.take(pcm, index, axis=1) * ops.convert_to_tensor(hann.astype(np.float32))
        real, imag = ops.rfft(frames, fft_length=self.n_fft)
        magnitude = ops.sqrt(ops.square(real) + ops.square(imag))
        mel = ops.matmul(magnitude, ops.convert_to_tensor(self._mel))
        return ops.expand_dims(ops.log(mel + self.log_floor), axis=-1)

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        return (input_shape[0], None if n is None else self.frames(n), self.n_mels, 1)

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "log_floor": self.log_floor,
        }
