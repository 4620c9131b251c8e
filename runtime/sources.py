"""Where blocks of audio come from: the microphone, a file, or raw PCM on stdin.

Every source is a context manager and an iterator of blocks, ``float32
(frames, channels)`` in [-1, 1] at ``source.sample_rate``. Sources count what
they lose (``dropped`` blocks, ``overflows`` reported by the audio driver)
instead of blocking: the audio thread must never wait for the model.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf

from runtime.dsp import pcm_to_float32
from runtime.errors import AudioSourceError, ConfigError, one_line, quiet_native_stderr
from runtime.files import not_a_file
from runtime.limits import MAX_BLOCK_FRAMES, MAX_CHANNELS, MAX_RATE, MIN_RATE


class Source:
    """Base: ``sample_rate``, ``channels``, ``dropped``, ``overflows``; iterate for blocks.
    ``warning``: one line about input that is used but suspect (e.g. a truncated file), or ``None``;
    ``late_warning``: the same, found only once the blocks ran out (a file that decoded short)."""

    sample_rate: int
    channels: int
    dropped: int = 0
    overflows: int = 0
    name: str = "source"
    warning: str | None = None
    late_warning: str | None = None

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------- file


class FileSource(Source):
    """An audio file (anything libsndfile reads), block by block.

    Args:
        path: the file.
        block_frames: frames per block.
        realtime: pace blocks at the file's own rate (as a microphone would
            deliver them) instead of as fast as possible.
    """

    def __init__(self, path: str | Path, block_frames: int = 1024, realtime: bool = False) -> None:
        if block_frames < 1:
            raise ConfigError(f"block size must be at least 1 frame, got {block_frames}")
        self.path = Path(path)
        self.name = self.path.name
        self.block_frames = int(block_frames)
        self.realtime = realtime
        problem = not_a_file(self.path, "audio file")
        if problem:
            raise AudioSourceError(problem)
        if self.path.stat().st_size == 0:  # libsndfile would say "Format not recognised"
            raise AudioSourceError(f"{self.name} is empty (0 bytes)")
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as e:  # soundfile.LibsndfileError, RuntimeError on older versions
            raise AudioSourceError(f"{self.name} is not a readable audio file ({one_line(e)})") from None
        if self._file.frames == 0:
            self._file.close()
            raise AudioSourceError(f"{self.name} contains no audio (0 frames)")
        self.sample_rate = int(self._file.samplerate)
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            self._file.close()
            raise AudioSourceError(f"{self.name}: its header gives {self.sample_rate} Hz, outside the {MIN_RATE}-{MAX_RATE} Hz "
                                   "of recorded audio (a broken header?)")
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        self.warning = truncation_warning(self.name, getattr(self._file, "extra_info", ""))

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        start = time.monotonic()
        done = 0
        while True:
            try:
                block = self._file.read(self.block_frames, dtype="float32", always_2d=True)
            except Exception as e:  # a file truncated or corrupt after its header
                raise AudioSourceError(f"{self.name}: read failed after {done} of the {self.frames} frames its header "
                                       f"declares (truncated or corrupt? {one_line(e)})") from None
            if block.shape[0] == 0:
                # A cut Ogg or MP3 decodes what is there and then ends without an error.
                if done < self.frames and self.warning is None:
                    self.late_warning = f"{self.name} {short_decode(done, self.frames)}; classified what was there"
                return
            if self.realtime:
                # Sleep until this block would have been captured, like a microphone delivers it.
                wait = start + (done + block.shape[0]) / self.sample_rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            done += block.shape[0]
            yield block


# libsndfile's header log notes a WAV data chunk that claims more bytes than the file holds
# as "data : 96000 (should be 32000)". Streaming writers (arecord to a pipe) leave the size
# at 0 or at the 2^31/2^32 placeholders, which is no truncation.
_CHUNK_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_PLACEHOLDER_SIZES = (0x7FFFFFFF, 0xFFFFFFFF, 0x7FFFF000, 0xFFFFF000)


def truncated_sizes(header_log: str) -> tuple[int, int] | None:
    """(declared, present) bytes of audio data when libsndfile's ``header_log`` (``SoundFile.extra_info``)
    says the data chunk is shorter than its header declares (a copy or download cut short), else None."""
    m = _CHUNK_SIZE.search(header_log or "")
    if m is None:
        return None
    declared, present = int(m.group(1)), int(m.group(2))
    if declared <= present or declared in _PLACEHOLDER_SIZES:
        return None
    return declared, present


def short_decode(decoded: int, declared: int) -> str:
    """Why a file that decoded fewer frames than its header declares is suspect (one line, no name)."""
    return (f"decoded to {decoded} of the {declared} frames its header declares "
            f"({100 * decoded / declared:.0f} %: truncated or corrupt?)")


def truncation_warning(name: str, header_log: str) -> str | None:
    """A one-line warning for a truncated file (see :func:`truncated_sizes`); the frames present still play."""
    sizes = truncated_sizes(header_log)
    if sizes is None:
        return None
    return f"{name} looks truncated: its header declares {sizes[0]} bytes of audio, the file holds {sizes[1]}; classifying what is there"


# ---------------------------------------------------------------- stdin

PCM_FORMATS = {"s16le": np.dtype("<i2"), "s32le": np.dtype("<i4"), "f32le": np.dtype("<f4")}


# The first bytes of the audio files soundfile reads (WAV, RF64, big-endian WAV, FLAC, Ogg, AIFF): raw
# PCM starting with one of them is vanishingly rare, a file piped into --stdin by mistake is not.
CONTAINER_MAGIC = (b"RIFF", b"RF64", b"RIFX", b"fLaC", b"OggS", b"FORM")
MAGIC_BYTES = 4
assert all(len(magic) == MAGIC_BYTES for magic in CONTAINER_MAGIC)


class RawSource(Source):
    """Headerless interleaved PCM from a byte stream (default: stdin).

    Args:
        rate: sample rate in Hz.
        channels: interleaved channels.
        sample_format: ``s16le``, ``s32le`` or ``f32le``.
        block_frames: frames per block.
    """

    def __init__(
        self,
        rate: int,
        channels: int = 1,
        sample_format: str = "s16le",
        block_frames: int = 1024,
        stream: BinaryIO | None = None,
    ) -> None:
        if not MIN_RATE <= rate <= MAX_RATE:
            raise ConfigError(f"raw PCM --rate must be {MIN_RATE} to {MAX_RATE} Hz, got {rate}")
        if not 1 <= channels <= MAX_CHANNELS:
            raise ConfigError(f"raw PCM needs 1 to {MAX_CHANNELS} channels, got {channels}")
        if sample_format not in PCM_FORMATS:
            raise ConfigError(f"unknown PCM format {sample_format!r}; choose one of {', '.join(PCM_FORMATS)}")
        if not 1 <= block_frames <= MAX_BLOCK_FRAMES:
            raise ConfigError(f"block size must be 1 to {MAX_BLOCK_FRAMES} frames, got {block_frames}")
        self.sample_rate, self.channels, self.block_frames = int(rate), int(channels), int(block_frames)
        self._dtype = PCM_FORMATS[sample_format]
        if stream is None and sys.stdin is None:  # started with stdin closed (`<&-`)
            raise AudioSourceError("stdin is closed; pipe raw PCM into --stdin (e.g. arecord -t raw -f S16_LE -r 16000 | ...)")
        self._stream = stream if stream is not None else sys.stdin.buffer
        self.name = "stdin"
        # Read the first whole frame now, so that a stream without one fails at open, like an
        # empty file does, instead of ending a run of 0 windows with exit 0; and the first four
        # bytes, to catch a file's header (arecord writes WAV unless given -t raw).
        frame_bytes = self._dtype.itemsize * self.channels
        want = max(frame_bytes, MAGIC_BYTES)
        self._head = b""
        while len(self._head) < want:
            chunk = self._stream.read(want - len(self._head))
            if not chunk:
                break
            self._head += chunk
        if len(self._head) < frame_bytes:
            raise AudioSourceError(
                f"stdin contains no audio ({len(self._head)} bytes; one frame of "
                f"{self.channels} x {sample_format} is {frame_bytes} bytes)"
            )
        if self._head[:MAGIC_BYTES] in CONTAINER_MAGIC:  # read as PCM, a 44-byte WAV header is 22 loud samples
            raise AudioSourceError(
                f"stdin starts with a {self._head[:MAGIC_BYTES].decode()} file header, but --stdin takes headerless PCM: "
                "give a file with --file, or record raw (arecord -t raw -f S16_LE -r 16000 | ...)"
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        frame_bytes = self._dtype.itemsize * self.channels
        pending, self._head = self._head, b""
        while True:
            chunk = self._stream.read(self.block_frames * frame_bytes)
            pending += chunk
            usable = len(pending) - len(pending) % frame_bytes
            if usable:  # at the end too: the frames read at open may be all the stream held
                raw = np.frombuffer(pending[:usable], dtype=self._dtype).reshape(-1, self.channels)
                pending = pending[usable:]
                yield pcm_to_float32(raw.astype(self._dtype.newbyteorder("="), copy=False))
            if not chunk:
                return  # a trailing partial frame is dropped


# ---------------------------------------------------------------- microphone


def _sounddevice():
    # Imported lazily: PortAudio is only needed for the microphone, and a
    # missing libportaudio must not break file or stdin mode.
    try:
        with quiet_native_stderr():  # PortAudio probes every ALSA device on import
            import sounddevice
    except OSError as e:
        raise AudioSourceError(f"no PortAudio library, the microphone is unavailable ({one_line(e)})") from None
    return sounddevice


def list_input_devices() -> list[dict]:
    """Input-capable devices: ``index``, ``name``, ``channels``, ``default_samplerate``, ``default``."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except Exception as e:
        raise AudioSourceError(f"cannot list audio devices ({one_line(e)})") from None
    return [
        {
            "index": i,
            "name": d["name"],
            "channels": int(d["max_input_channels"]),
            "default_samplerate": float(d["default_samplerate"]),
            "default": i == default_in,
        }
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


@dataclass(frozen=True)
class MicConfig:
    """Microphone settings.

    Attributes:
        device: index or (part of a) name; ``None``: the system default input.
        sample_rate: Hz; ``None``: the device's own default rate (no resampling in the driver).
        channels: ``None``: up to 2 (the engine downmixes).
        block_frames: frames per callback; 0 lets PortAudio choose.
        queue_blocks: bound of the callback -> main thread queue; when full,
            new blocks are dropped and counted.
        stall_timeout_s: no block for this long means the device is gone (at least twice
            the block's duration plus a second: a 4 s block comes every 4 s).
    """

    device: int | str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    block_frames: int = 0
    queue_blocks: int = 256
    stall_timeout_s: float = 3.0


class MicSource(Source):
    """Live input through sounddevice (PortAudio). The PortAudio callback only
    copies the block into a bounded queue (never blocks); iteration reads it."""

    def __init__(self, config: MicConfig = MicConfig()) -> None:
        self.config = config
        sd = self._sd = _sounddevice()
        device = config.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        try:
            with quiet_native_stderr():
                info = sd.query_devices(device, "input")
        except Exception as e:
            if device is None:  # PortAudio's own words here are "Error querying device -1"
                raise AudioSourceError("no microphone found (no default input device); "
                                       "pass --file or --stdin, or pick a device from --list-devices") from None
            raise AudioSourceError(f"no input device matching {device!r} ({one_line(e)}); see --list-devices") from None
        self.name = info["name"]
        self.device_index = int(info["index"])
        self.sample_rate = int(config.sample_rate or round(info["default_samplerate"]))
        self.channels = int(config.channels or min(2, int(info["max_input_channels"])))
        try:
            with quiet_native_stderr():
                sd.check_input_settings(self.device_index, channels=self.channels, dtype="float32", samplerate=self.sample_rate)
        except Exception as e:
            raise AudioSourceError(
                f"input device {self.name!r} does not support {self.sample_rate} Hz, {self.channels} channel(s) ({one_line(e)})"
            ) from None
        self.stall_limit_s = max(config.stall_timeout_s, 2 * config.block_frames / self.sample_rate + 1.0)
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=config.queue_blocks)
        self._finished = threading.Event()
        self._stream = None

    def _callback(self, indata, frames, time_info, status) -> None:
        # Runs on PortAudio's thread: no locks held for long, no waiting, no exceptions.
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        try:
            with quiet_native_stderr():
                self._stream = self._sd.InputStream(
                    device=self.device_index,
                    channels=self.channels,
                    samplerate=self.sample_rate,
                    dtype="float32",
                    blocksize=self.config.block_frames,
                    callback=self._callback,
                    finished_callback=self._finished.set,
                )
                self._stream.start()
        except Exception as e:
            raise AudioSourceError(f"cannot open input device {self.name!r} ({one_line(e)})") from None

    def __enter__(self) -> "MicSource":
        self.start()
        return self

    def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            try:
                stream.abort()
                stream.close()
            except Exception:
                pass  # the device may already be gone; closing must not mask the real error

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._stream is None:
            self.start()
        last = time.monotonic()
        while True:
            try:
                block = self._queue.get(timeout=0.1)
            except queue.Empty:
                gone = self._finished.is_set() or (self._stream is not None and not self._stream.active)
                if gone or time.monotonic() - last > self.stall_limit_s:
                    raise AudioSourceError(
                        f"input device {self.name!r} stopped delivering audio (disconnected?)"
                    ) from None
                continue
            last = time.monotonic()
            yield block

