"""Calibration and parity audio for a training run, taken from the run's own dataset and fold.

``python -m export --run runs/NAME --data DATASET_ROOT`` rebuilds the run's
protocol from its ``run.json`` (same dataset loader, same seed, same folds as
``python -m train``) and uses, for the exported checkpoint:

* a fold checkpoint: its training clips for int8 calibration and its **test
  clips** (never seen in training) for the parity check;
* the ``--final`` checkpoint (trained on all clips): all clips for calibration,
  and for parity the test clips of every fold — which the final model *has*
  seen in training. Agreement and the int8 accuracy drop still measure the
  conversion, but the absolute accuracy is optimistic; ``data.parity_audio``
  in metadata.json and parity.md say so.

Windows are cut as training cuts them (``train.windows``: centred zero
padding, half-window hop), at most ``max_windows_per_clip`` per clip.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from export.audio import WindowSet
from export.config import ExportError
from export.loading import read_json_object

FINAL_FOLD = "all data"


def _windows(audios, clips, labels, window: int, hop: int, max_per_clip: int) -> WindowSet:
    from train.windows import clip_windows

    xs, ys, srcs = [], [], []
    for audio, clip in zip(audios, clips):
        w = clip_windows(audio, window, hop)[:max_per_clip]
        xs.append(w)
        ys += [labels[clip.label]] * len(w)
        srcs += [f"{clip.path.parent.name}/{clip.path.name}"] * len(w)
    return WindowSet(np.concatenate(xs).astype(np.float32), tuple(ys), tuple(srcs))


def run_windows(run_dir: Path, checkpoint: Path, data_root: Path, max_per_clip: int,
                max_clips: int | None = None, seed: int = 0,
                representative: bool = True) -> tuple[WindowSet | None, WindowSet, dict]:
    """(representative, parity, info) for ``checkpoint`` of the run at ``run_dir``; representative is
    None, and its clips are not decoded, with ``representative=False`` (a parity check alone)."""
    from train.__main__ import LEGACY_SETTINGS, TrainConfig, plan
    from train.data import DataError, decode

    run_file, cfg_file = run_dir / "run.json", checkpoint.parent / "config.json"
    for f in (run_file, cfg_file):
        if not f.is_file():
            raise ExportError(f"{f} is missing: not a python -m train run")
    # a run killed mid-write or edited by hand: one line naming the file, not a JSONDecodeError traceback
    run, ckpt_info = read_json_object(run_file), read_json_object(cfg_file)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        cfg = TrainConfig(**{k: v for k, v in {**LEGACY_SETTINGS, **run}.items() if k in fields},
                          data=str(data_root), out=str(run_dir), progress=False)
        p = plan(cfg)
    except (DataError, ValueError, TypeError) as e:
        raise ExportError(f"cannot rebuild the run's data from {data_root}: {e}") from None
    fold_name = ckpt_info.get("fold")
    if fold_name == FINAL_FOLD:
        rep_idx = list(range(len(p.dataset.clips)))
        test_idx = sorted({i for f in p.folds for i in f.test})
        note = "test clips of every fold; the final model was trained on them (agreement is meaningful, accuracy optimistic)"
    else:
        fold = next((f for f in p.folds if f.name == fold_name), None)
        if fold is None:
            raise ExportError(f"fold {fold_name!r} of {checkpoint} is not among the run's folds")
        rep_idx, test_idx = list(fold.train), list(fold.test)
        note = f"held-out test clips of fold {fold_name!r} (never seen in training)"
    rng = np.random.default_rng(seed)
    if max_clips is not None:
        rep_idx = sorted(rng.choice(rep_idx, min(max_clips, len(rep_idx)), replace=False).tolist())
        test_idx = sorted(rng.choice(test_idx, min(max_clips, len(test_idx)), replace=False).tolist())
    try:
        window, hop = int(ckpt_info["window_samples"]), int(ckpt_info["hop_samples"])
    except (KeyError, TypeError, ValueError):
        raise ExportError(f"{cfg_file}: no usable window_samples/hop_samples (not written by python -m train?)") from None
    try:
        rep_audio = decode(p.dataset.subset(rep_idx), p.rate) if representative else None
        test_audio = decode(p.dataset.subset(test_idx), p.rate)
    except DataError as e:
        raise ExportError(str(e)) from None
    labels = p.dataset.labels
    rep = _windows(rep_audio, p.dataset.subset(rep_idx), labels, window, hop, max_per_clip) if representative else None
    test = _windows(test_audio, p.dataset.subset(test_idx), labels, window, hop, max_per_clip)
    info = {"dataset": p.dataset.name, "data_root": str(Path(data_root).resolve()), "protocol": cfg.protocol, "fold": fold_name,
            "representative_clips": len(rep_idx), "parity_clips": len(test_idx), "parity_audio": note,
            "max_windows_per_clip": max_per_clip,
            # what python -m export.check needs to rebuild the same parity clips later
            # absolute: export.check runs from any folder, and a relative path would be "gone" from another
            "run_dir": str(Path(run_dir).resolve()), "checkpoint": str(Path(checkpoint).resolve()),
            "max_clips": max_clips, "seed": seed}
    return rep, test, info


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.run_data is a library module, not a command (see python -m export --help)")
