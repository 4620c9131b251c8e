"""Export every zoo architecture, untrained, in every format, for latency/size/memory benchmarks.

    python -m benchmarks.zoo --out exports/zoo            # all twelve at 22.05 kHz
    python -m benchmarks.zoo --out exports/zoo --rate 8000 --models lv18 lv24

Untrained weights do not change latency, size or memory; accuracy comes only
from exports of trained runs (their parity reports). Full-integer models are
calibrated on generated audio (``runtime.signals.calibration_windows``), so no
dataset is needed. Each model goes to ``OUT/NAME_RATE/`` in the layout of
``python -m export``; the parity check is skipped (there is no held-out audio
for an untrained model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.cli import ArgumentParser


def export_zoo(out: Path, names: list[str], sample_rate: int, calibration: int = 64, log=print) -> list[Path]:
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr

    from export.audio import WindowSet
    from export.config import ExportConfig
    from export.exporter import export_model
    from export.loading import Source
    from runtime.signals import calibration_windows
    from train.config import ModelConfig
    from train.models import REGISTRY, build

    written = []
    for name in names:
        if sample_rate not in REGISTRY[name].sample_rates:
            log(f"skip {name}: not defined at {sample_rate} Hz")
            continue
        config = ModelConfig(name=name, sample_rate=sample_rate)
        model = build(config)
        labels = tuple(f"class_{i}" for i in range(config.num_classes))
        folder = out / f"{name}_{sample_rate}"
        window = int(model.inputs[0].shape[1])
        rep = WindowSet.from_array(calibration_windows(calibration, window, sample_rate))
        source = Source(model, config, labels, folder / "untrained.keras",
                        summary={"note": "untrained: for latency, size and memory only"})
        export_model(source, rep, ExportConfig(out_dir=folder, check=False), log=log)
        written.append(folder)
        keras.backend.clear_session()
    return written


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("exports/zoo"), help="output root (default exports/zoo)")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="architectures (default: all twelve; python -m train.models lists them)")
    p.add_argument("--rate", type=int, default=22050, help="sample rate (default 22050)")
    args = p.parse_args(argv)
    # train.models imports Keras: only after parsing, so --help and usage errors work without TensorFlow.
    try:
        from export.config import ExportError
        from train.models import MODEL_NAMES, REGISTRY
    except ImportError as e:
        print(f"error: python -m benchmarks.zoo needs TensorFlow and the export tools "
              f"(pip install -e '.[export]'): {e}", file=sys.stderr)
        return 2
    args.models = args.models or list(MODEL_NAMES)
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown:
        print(f"error: unknown model(s) {' '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}", file=sys.stderr)
        return 2
    # Checked before TensorFlow starts: a rate no chosen model is defined at would export nothing and
    # "succeed" (each model skipped with a log line), leaving the benchmark with nothing to measure.
    if args.rate <= 0:
        print(f"error: --rate must be a positive sample rate in Hz, got {args.rate}", file=sys.stderr)
        return 2
    if not any(args.rate in REGISTRY[m].sample_rates for m in args.models):
        rates = sorted({r for m in args.models for r in REGISTRY[m].sample_rates})
        print(f"error: none of {' '.join(args.models)} is defined at {args.rate} Hz "
              f"(their rates: {', '.join(map(str, rates))})", file=sys.stderr)
        return 2
    try:
        export_zoo(args.out, args.models, args.rate)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
