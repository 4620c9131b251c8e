"""Live classification from the microphone, a file, or raw PCM on stdin.

    python -m runtime.live                          # default mic, bundled spoken-digit model
    python -m runtime.live --model m.tflite --file speech.wav --json
    arecord -t raw -f S16_LE -r 16000 | python -m runtime.live --stdin --rate 16000

Thin CLI: arguments -> :class:`LiveConfig` -> :func:`run`. Errors print one
line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from runtime.budgets import RunStats, get_budget, load_budgets
from runtime.cli import ArgumentParser
from runtime.engine import DEFAULT_SILENCE_DB, EngineConfig, StreamingEngine, WindowResult
from runtime.errors import USER_ERRORS, AudioSourceError, ConfigError, ModelLoadError, native_stderr_silenced, one_line
from runtime.model import load_model
from runtime.limits import MAX_BLOCK_FRAMES, MAX_CHANNELS, MAX_RATE, MAX_SAMPLE_ABS, MAX_SECONDS, MIN_RATE
from runtime.sources import FileSource, MicConfig, MicSource, RawSource, Source, list_input_devices

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "android_demo_assets" / "spoken_digit" / "model_int8.tflite"
DEFAULT_BUDGET = "low-end-phone"


@dataclass(frozen=True)
class LiveConfig:
    """One run of the live classifier (what the CLI flags say).

    Attributes:
        model: model file (``.tflite``/``.onnx``).
        file: read this audio file instead of the microphone.
        stdin: read raw PCM from stdin (``rate``, ``channels``, ``sample_format``).
        realtime: pace a file at its own rate (default: as fast as possible).
        device / rate / channels: microphone settings (rate: also stdin's rate).
        block_frames: frames per block from the source (``None``: 1024 for files and
            stdin, the driver's choice for mics).
        hop_s: seconds between windows; ``None``: the model's own hop.
        smooth / threshold / top_k / silence_db: see :class:`runtime.engine.EngineConfig`.
        threads: backend threads (``None``: its default).
        duration_s: stop after this many seconds of audio (``None``: until the end / Ctrl-C).
        json: one JSON object per window and a final ``{"summary": ...}``.
        budget: name of the mobile budget in ``runtime/budgets.json``.
    """

    model: Path = DEFAULT_MODEL
    file: Path | None = None
    stdin: bool = False
    realtime: bool = False
    device: str | None = None
    rate: int | None = None
    channels: int | None = None
    sample_format: str | None = None  # None: s16le (stdin only)
    block_frames: int | None = None
    hop_s: float | None = None
    smooth: int = 3
    threshold: float = 0.5
    top_k: int = 3
    silence_db: float | None = DEFAULT_SILENCE_DB
    threads: int | None = None
    duration_s: float | None = None
    json: bool = False
    budget: str = DEFAULT_BUDGET

    def __post_init__(self) -> None:
        if self.file is not None and self.stdin:
            raise ConfigError("choose one input: --file or --stdin (or neither for the microphone)")
        # An option the chosen input would ignore is a misunderstanding worth one line, not silence.
        file, mic = self.file is not None, self.file is None and not self.stdin
        for flag, given, applies, where in (
            ("--rate", self.rate is not None, not file, "the microphone and --stdin (a file's header gives its rate)"),
            ("--channels", self.channels is not None, not file, "the microphone and --stdin (a file's header gives its channels)"),
            ("--device", self.device is not None, mic, "the microphone"),
            ("--format", self.sample_format is not None, self.stdin, "--stdin"),
            ("--realtime", self.realtime, file, "--file (stdin and microphones deliver at their own pace)"),
        ):
            if given and not applies:
                raise ConfigError(f"{flag} applies only to {where}")
        # Seconds become sample counts with round(): NaN and infinity have none (and
        # NaN slips through a plain "<= 0" test), a huge finite value overflows there.
        for flag, value in (("--hop", self.hop_s), ("--duration", self.duration_s)):
            if value is not None and not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
                raise ConfigError(f"{flag} must be a finite number of seconds above 0 and up to {MAX_SECONDS} (a year), got {value}")
        if self.stdin and self.rate is None:
            raise ConfigError("--stdin needs --rate (raw PCM has no header)")
        if self.rate is not None and not MIN_RATE <= self.rate <= MAX_RATE:
            raise ConfigError(f"--rate must be {MIN_RATE} to {MAX_RATE} Hz, got {self.rate}")
        # None means "the source's default"; 0 or less is a mistake, never a default.
        if self.channels is not None and not 1 <= self.channels <= MAX_CHANNELS:
            raise ConfigError(f"--channels must be between 1 and {MAX_CHANNELS}, got {self.channels}")
        if self.block_frames is not None and not 1 <= self.block_frames <= MAX_BLOCK_FRAMES:
            raise ConfigError(f"--block must be between 1 and {MAX_BLOCK_FRAMES} frames, got {self.block_frames}")


def open_source(config: LiveConfig) -> Source:
    # LiveConfig has refused 0 and negatives, so None is the only "not given" here.
    block = 1024 if config.block_frames is None else config.block_frames
    if config.file is not None:
        return FileSource(config.file, block_frames=block, realtime=config.realtime)
    if config.stdin:
        channels = 1 if config.channels is None else config.channels
        return RawSource(config.rate, channels, config.sample_format or "s16le", block)
    mic_block = 0 if config.block_frames is None else config.block_frames  # 0: PortAudio chooses
    return MicSource(MicConfig(device=config.device, sample_rate=config.rate, channels=config.channels, block_frames=mic_block))


def run(config: LiveConfig, on_window: Callable[[WindowResult], None] = lambda r: None,
        warn: Callable[[str], None] = lambda message: None) -> dict:
    """Classify the configured input until it ends, ``duration_s`` passes or Ctrl-C.

    Calls ``on_window`` for every window and ``warn`` with a one-line warning about input
    that is used but suspect (a truncated file, in the summary's ``source``; NaN/inf samples,
    replaced, counted in ``nonfinite_samples``); returns the run summary (see
    :meth:`runtime.budgets.RunStats.summary`; ``interrupted``: Ctrl-C ended it). If the input
    stops mid-run (device gone, unreadable further on), or ends without a single window to
    classify (less than one sample at the model's rate), raises :class:`InputLostError`, which
    carries the summary so far (with an ``error`` key).
    """
    budget = get_budget(config.budget)  # fail on a bad name before opening devices
    if not config.model.is_file() and config.model == DEFAULT_MODEL:
        raise ModelLoadError(
            f"the bundled spoken-digit model is missing ({DEFAULT_MODEL.relative_to(ROOT)}); "
            "export one there or pass --model PATH"
        )
    model = load_model(config.model, threads=config.threads)
    hop = None if config.hop_s is None else round(config.hop_s * model.sample_rate)
    if hop is not None and hop < 1:  # rounding it up to one sample would run a window per sample
        raise ConfigError(f"--hop {config.hop_s} s is under one sample at the model's {model.sample_rate} Hz")
    engine_config = EngineConfig(hop_samples=hop, smooth=config.smooth, threshold=config.threshold, top_k=config.top_k,
                                 silence_db=config.silence_db)
    stats = RunStats()
    with open_source(config) as source:
        if source.warning:
            warn(source.warning)
        engine = StreamingEngine(model, engine_config, input_rate=source.sample_rate)
        limit = None if config.duration_s is None else round(config.duration_s * source.sample_rate)
        frames = blocks = 0
        lost: AudioSourceError | None = None
        interrupted = False
        try:
            for block in source:
                if limit is not None and frames + block.shape[0] > limit:
                    block = block[: limit - frames]
                frames += block.shape[0]
                blocks += 1
                replaced, clipped = engine.nonfinite_samples, engine.clipped_samples
                _process(engine, stats, on_window, block)
                if engine.nonfinite_samples and not replaced:  # said once, when first seen; the total is in the summary
                    warn(f"{source.name} holds NaN/inf samples ({_first_in(block.shape[0], frames, source)}); "
                         "they are replaced by silence (NaN) or full scale (inf) and counted in the summary")
                if engine.clipped_samples and not clipped:
                    warn(f"{source.name} holds samples beyond ±{MAX_SAMPLE_ABS:g} full scale "
                         f"({_first_in(block.shape[0], frames, source)}), which audio never reaches (a corrupt float "
                         "file?); they are clipped and counted in the summary")
                if limit is not None and frames >= limit:
                    break
            _process(engine, stats, on_window, None)  # end of input: drain the resampler's delay
            if source.late_warning:
                warn(source.late_warning)
        except KeyboardInterrupt:
            interrupted = True  # Ctrl-C ends the run normally, with its summary
        except AudioSourceError as e:  # the input died mid-run (device gone, file corrupt further on)
            lost = e
        # Read once: the audio thread goes on dropping until the stream closes, and the warning and the
        # summary must give the same count.
        dropped = source.dropped
        if dropped:  # counted as they happen; said once, at the end, with their share
            share = dropped / (dropped + blocks)
            warn(f"{source.name}: {dropped} block(s) dropped ({share:.0%} of those delivered): the classifier "
                 "did not keep up with the device, so windows span gaps in the audio (a larger --block or "
                 "--hop helps)")
        if lost is None and not interrupted and not stats.latencies_s:
            lost = AudioSourceError(
                f"{source.name} gave no window to classify: {frames} frame(s) at {source.sample_rate} Hz "
                f"is less than one sample at the model's {model.sample_rate} Hz")
        stats.audio_s = frames / source.sample_rate
        summary = stats.summary(budget, dropped=dropped, overflows=source.overflows)
        summary["nonfinite_samples"] = engine.nonfinite_samples
        summary["clipped_samples"] = engine.clipped_samples
        summary["interrupted"] = interrupted
        summary["source"] = {"name": source.name, "sample_rate": source.sample_rate, "channels": source.channels, "warning": source.warning or source.late_warning}
        summary["model"] = {"path": str(config.model), "backend": model.backend, "sample_rate": model.sample_rate, "window_samples": model.window_samples, "hop_samples": engine.hop, "threads": model.threads}
        if lost is not None:
            summary["error"] = one_line(lost, 500)
            raise InputLostError(str(lost), summary) from None
        return summary


class InputLostError(AudioSourceError):
    """The input stopped mid-run; ``summary`` is the run summary up to that point
    (the CLI prints it, then the error)."""

    def __init__(self, message: str, summary: dict) -> None:
        super().__init__(message)
        self.summary = summary


def _first_in(block_frames: int, frames: int, source: Source) -> str:
    """Where the block just read starts ("the first in the block at 1.25 s"), for a warning."""
    return f"the first in the block at {(frames - block_frames) / source.sample_rate:.2f} s"


def _process(engine: StreamingEngine, stats: RunStats, on_window, block) -> None:
    t0 = time.perf_counter()
    results = engine.push(block) if block is not None else engine.flush()
    stats.processing_s += time.perf_counter() - t0
    for r in results:
        stats.add_window(r.latency_s, r.invoke_s, r.silent)
        on_window(r)


# ---------------------------------------------------------------- presentation


class ConsoleView:
    """Human view: one self-overwriting status line on a terminal, a line per
    window otherwise; events always get their own line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()

    def __call__(self, r: WindowResult) -> None:
        tops = "(silence)" if r.silent else "  ".join(f"{label} {score:.2f}" for label, score in r.top)
        line = f"[{r.time_s:8.2f}s] {tops}   {r.latency_s * 1e3:6.2f} ms"
        if self.tty:
            self.out.write("\r\033[K" + line)
            if r.event:
                self.out.write(f"\n>>> {r.event}\n")
        else:
            self.out.write(line + (f"   >>> {r.event}" if r.event else "") + "\n")
        self.out.flush()

    def summary(self, s: dict) -> None:
        lat, b = s["latency_ms"], s["budget"]
        fmt = lambda x, spec: "n/a" if x is None else format(x, spec)  # noqa: E731
        verdict = {True: "inside", False: "OUTSIDE", None: "not judged"}[b["within"]]
        src = s["source"]
        mix = f", {src['channels']} channels averaged to mono" if src["channels"] > 1 else ", mono"
        self.out.write(
            ("\n" if self.tty else "")
            + f"source {src['name']} ({src['sample_rate']} Hz{mix})\n"
            + f"windows {s['windows']} ({s['silent_windows']} silent)  audio {s['audio_s']:.2f} s\n"
            + f"latency per window: p50 {fmt(lat['p50'], '.2f')} ms  p95 {fmt(lat['p95'], '.2f')} ms  max {fmt(lat['max'], '.2f')} ms\n"
            + f"real-time factor {fmt(s['real_time_factor'], '.4f')}  runtime overhead {fmt(s['overhead_fraction'], '.1%')} of invoke time\n"
            + f"peak RSS {s['peak_rss_mib']:.1f} MiB  dropped blocks {s['dropped_blocks']}  overflows {s['overflows']}"
            + (f"  non-finite samples {s['nonfinite_samples']} (replaced)" if s.get("nonfinite_samples") else "")
            + (f"  samples beyond ±{MAX_SAMPLE_ABS:g} {s['clipped_samples']} (clipped)" if s.get("clipped_samples") else "")
            + "\n"
            + f"budget {b['name']}: {verdict} ({'; '.join(b['reasons'])})\n"
            + ("interrupted (Ctrl-C) before the end of the input\n" if s.get("interrupted") else "")
        )


def _json_line(out: TextIO, obj: dict) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.list_devices:  # it lists and exits: anything else given with it would be silently ignored
        flags = {a.dest: a.option_strings[0] for a in p._actions if a.option_strings}
        ignored = [flags[k] for k, v in vars(args).items() if k != "list_devices" and v != p.get_default(k)]
        if ignored:
            p.error(f"--list-devices lists the input devices and exits; it takes no other option (got {', '.join(ignored)})")
    return args


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m runtime.live", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"model file (default: {DEFAULT_MODEL.relative_to(ROOT)})")
    src = p.add_argument_group("input (default: the microphone)")
    src.add_argument("--file", type=Path, help="classify this audio file")
    src.add_argument("--realtime", action="store_true", help="with --file: pace it at its own rate")
    src.add_argument("--stdin", action="store_true", help="raw interleaved PCM on stdin (needs --rate)")
    src.add_argument("--format", dest="sample_format", metavar="FMT", help="--stdin sample format: s16le (default), s32le, f32le")
    src.add_argument("--device", help="microphone: index or name (see --list-devices)")
    src.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    src.add_argument("--rate", type=int, help="microphone rate (default: the device's own) or --stdin rate; not with --file")
    src.add_argument("--channels", type=int, help="microphone / --stdin channels (averaged to mono); not with --file")
    src.add_argument("--block", dest="block_frames", type=int, help="frames per block from the source")
    eng = p.add_argument_group("engine")
    eng.add_argument("--hop", dest="hop_s", type=float, metavar="SECONDS", help="seconds between windows (default: the model's)")
    eng.add_argument("--smooth", type=int, default=3, metavar="K", help="average the last K windows (default 3; 1 = off)")
    eng.add_argument("--threshold", type=float, default=0.5, help="smoothed score that raises an event (default 0.5; an int8 model's scores stop at "
                     "255/256, so at most 0.996 there)")
    eng.add_argument("--top-k", type=int, default=3, metavar="K", help="labels shown per window (default 3)")
    eng.add_argument("--silence-db", type=_db_or_off, default=DEFAULT_SILENCE_DB, metavar="DB",
                     help=f"windows quieter than DB dBFS RMS are shown as silence: no event, smoothing restarts "
                          f"(default {DEFAULT_SILENCE_DB:g}; 'off' classifies every window)")
    eng.add_argument("--threads", type=int, help="model threads (default: the backend's)")
    out = p.add_argument_group("output")
    out.add_argument("--duration", dest="duration_s", type=float, metavar="SECONDS", help="stop after this many seconds of audio")
    out.add_argument("--json", action="store_true", help="one JSON object per window, then {\"summary\": ...}")
    out.add_argument("--budget", default=DEFAULT_BUDGET, help=f"mobile budget to check: {', '.join(load_budgets())}")
    return p


def _db_or_off(text: str) -> float | None:
    if text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a dBFS level such as -60, or 'off', got {text!r}") from None


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    if sys.stderr is None:  # started with stderr closed (`2>&-`): errors go nowhere, but the run and exit status stand
        sys.stderr = open(os.devnull, "w")
    args = parse_args(argv)
    out = out or sys.stdout
    if out is None:  # started with stdout closed (`>&-`): Python sets sys.stdout to None
        sys.stderr.write("error: stdout is closed; nothing to write the results to\n")
        return 2
    with native_stderr_silenced():
        return _main(args, out)


def _main(args: argparse.Namespace, out: TextIO) -> int:
    try:
        if args.list_devices:
            devices = list_input_devices()
            if not devices:
                out.write("no input devices found\n")
            for d in devices:
                mark = "*" if d["default"] else " "
                out.write(f"{mark}{d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_samplerate']:.0f} Hz)\n")
            return 0
        fields = {k: v for k, v in vars(args).items() if k != "list_devices"}
        config = LiveConfig(**fields)
        view = ConsoleView(out)
        show = (lambda s: _json_line(out, {"summary": s})) if config.json else view.summary
        try:
            summary = run(config, on_window=(lambda r: _json_line(out, r.to_dict())) if config.json else view,
                          warn=lambda message: sys.stderr.write(f"warning: {message}\n"))
        except InputLostError as e:
            show(e.summary)  # what was classified before the input died, then the error line
            raise
        show(summary)
        # Ctrl-C is how a microphone run ends; a file or stdin cut short did not finish, and says so.
        return 130 if summary["interrupted"] and (config.file is not None or config.stdin) else 0
    except KeyboardInterrupt:  # before the first block: loading the model, waiting for stdin's first frame
        sys.stderr.write("interrupted: nothing was classified\n")
        return 130
    except USER_ERRORS as e:
        sys.stderr.write(f"error: {one_line(e, 500)}\n")
        return 2
    except BrokenPipeError:  # the reader went away (`... --json | head -1`): stop quietly, as command-line tools do
        try:  # and keep Python's flush at exit from reporting the same pipe again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the closed pipe
    except OSError as e:  # e.g. a device gone at the OS level
        sys.stderr.write(f"error: {one_line(e, 500)}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
