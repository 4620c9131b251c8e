"""Dataset loaders: each dataset in its original layout -> a list of :class:`Clip` records.

Loaders only read names and metadata (fast, no audio decoding) and check that every
listed file exists; :func:`decode` reads the audio (any format soundfile reads: WAV,
FLAC, OGG, ...), downmixes to mono and resamples with soxr, through an
:class:`AudioCache` so an epoch never re-reads files.

Layouts (the folder the user gives is ``root``):

==============  =====================================================================
``fsdd``        ``root/recordings/{digit}_{speaker}_{index}.wav`` (or ``root/*.wav``)
``urbansound8k`` ``root/audio/foldN/*`` + ``root/metadata/UrbanSound8K.csv``
``emodb``       ``root/wav/SSTTTEV.*``; 5 classes anger/disgust/fear/happiness/sadness
``emodb7``      the same, all 7 emotions
``esc50``       ``root/audio/*`` + ``root/meta/esc50.csv``
``esc10``       the ESC-10 subset of ESC-50 (``esc10`` column)
``folders``     ``root/<class name>/*`` (one folder per class)
==============  =====================================================================

No TensorFlow here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import soundfile as sf
import soxr

from runtime.dsp import bad_samples
from runtime.files import atomic_path, unwritable  # noqa: F401  (unwritable: re-exported for train.*)
from runtime.limits import MAX_RATE, MAX_SAMPLE_ABS, MIN_RATE
from runtime.metadata import label_problem
from runtime.sources import short_decode, truncated_sizes


class DataError(ValueError):
    """A dataset is missing, malformed or unreadable; the message is one line and names the files."""


def read_json(path: Path, owner: str) -> dict:
    """A run folder's JSON file; :class:`DataError` (one line, naming ``owner`` and the file) if it
    cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{owner}: cannot read {Path(path).name} ({type(e).__name__})") from None


def check_out(out: Path, option: str = "--out", siblings: tuple[str, ...] = (".json", ".png")) -> Path:
    """``out`` as a Path once :func:`unwritable` finds nothing wrong; DataError (one line) otherwise."""
    why = unwritable(out, siblings)
    if why:
        raise DataError(f"{option} {out}: {why}")
    return Path(out)


@dataclass(frozen=True)
class Clip:
    """One audio file with the metadata the protocols need.

    Attributes:
        path: the audio file.
        label: class index into :attr:`Dataset.labels`.
        speaker: speaker id, or ``None`` when the dataset has none.
        source: id of the source recording; clips sharing it must never be split
            across train and test (UrbanSound8K fsID, ESC-50 src_file; otherwise
            the file itself).
        fold: the dataset's official fold, or ``None``.
    """

    path: Path
    label: int
    speaker: str | None
    source: str
    fold: int | None = None


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: its name, class names (in output order) and clips."""

    name: str
    labels: tuple[str, ...]
    clips: tuple[Clip, ...]

    @property
    def has_speakers(self) -> bool:
        return all(c.speaker is not None for c in self.clips)

    @property
    def has_folds(self) -> bool:
        return all(c.fold is not None for c in self.clips)

    def __post_init__(self) -> None:
        # Checked on loading, not at export hours later: every label ends up in labels.txt.
        for label in self.labels:
            why = label_problem(label)
            if why:
                raise DataError(f"{self.name}: class name {label!r} {why}; labels.txt holds one class per line, "
                                "so rename it (a folder, or the class column of the metadata)")

    def subset(self, indices: Iterable[int]) -> tuple[Clip, ...]:
        return tuple(self.clips[i] for i in indices)


# libsndfile recognises a file by its content, not its name, so these common spellings of formats
# it reads are read like the canonical ones (checked with soundfile 0.14 / libsndfile 1.2).
READABLE_ALIASES = frozenset({".aif", ".aifc", ".wave", ".opus", ".oga", ".snd"})
# Audio that libsndfile cannot decode (AAC/ALAC in MP4, WMA, WebM, AMR, ...). Such a file in a dataset
# folder is meant as data: skipping it would train on less than the user gave, so it is refused by name.
UNREADABLE_AUDIO = frozenset({".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".asf", ".webm", ".weba", ".mka",
                              ".amr", ".3gp", ".3ga", ".ape", ".wv", ".ac3", ".spx", ".ra"})


def _audio_extensions() -> frozenset[str]:
    return frozenset("." + ext.lower() for ext in sf.available_formats()) | READABLE_ALIASES


def _audio_files(paths: Iterable[Path], what: str) -> list[Path]:
    """The audio files among ``paths``, sorted; DataError naming any in a format soundfile cannot
    read. Other files (notes, CSVs, .DS_Store) are not audio and stay ignored."""
    exts = _audio_extensions()
    paths = sorted(p for p in paths if p.is_file())
    foreign = [p.name for p in paths if p.suffix.lower() in UNREADABLE_AUDIO]
    if foreign:
        raise DataError(f"{what}: {len(foreign)} audio file(s) in a format soundfile cannot read: {_names(foreign)}; "
                        "convert them to WAV or FLAC (e.g. ffmpeg -i NAME.m4a NAME.wav)")
    return [p for p in paths if p.suffix.lower() in exts]


def _names(paths: Iterable[Path], limit: int = 5) -> str:
    """'a.wav, b.wav, ... (+N more)': file names for one-line error messages."""
    paths = [str(p) for p in paths]
    shown = ", ".join(paths[:limit])
    return shown + (f", ... (+{len(paths) - limit} more)" if len(paths) > limit else "")


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what}: folder not found: {path}")
    return path


def _resolve(path: Path) -> Path | None:
    """``path`` if it exists, else the same stem with another audio extension (the
    UrbanSound8K copy lists ``.wav`` names for ``.flac`` files)."""
    if path.is_file():
        return path
    for ext in (".flac", ".wav", ".ogg", ".mp3", ".aiff"):
        alt = path.with_suffix(ext)
        if alt.is_file():
            return alt
    return None


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every row of a metadata CSV; DataError naming the file and line for a
    missing required column, a row with fewer fields than the header or a required value left empty."""
    if not path.is_file():
        raise DataError(f"metadata file not found: {path}")
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = []
            for row in reader:
                line = reader.line_num  # the file's line (header = 1): what an editor shows
                short = [c for c in reader.fieldnames if row.get(c) is None]  # DictReader's filler for absent fields
                if short:
                    raise DataError(f"{path}, line {line}: {len(reader.fieldnames) - len(short)} of "
                                    f"{len(reader.fieldnames)} fields (no {', '.join(short)})")
                empty = [c for c in required if not row[c].strip()]
                if empty:
                    raise DataError(f"{path}, line {line}: empty {', '.join(empty)}")
                rows.append((line, row))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read it as CSV ({getattr(e, 'strerror', None) or str(e).splitlines()[0]})") from None


def _int_field(path: Path, line: int, row: dict[str, str], column: str, low: int = 0) -> int:
    """``row[column]`` as an int of at least ``low``, or DataError naming the file, line and value."""
    try:
        value = int(row[column])
    except ValueError:
        raise DataError(f"{path}, line {line}: {column} {row[column]!r} is not a whole number") from None
    if value < low:
        raise DataError(f"{path}, line {line}: {column} {value} is below {low}")
    return value


def _class_names(path: Path, rows: Iterable[tuple[int, int, str]]) -> dict[int, str]:
    """{class id: name} from (line, id, name) rows; DataError when one id has two names."""
    names: dict[int, tuple[int, str]] = {}
    for line, cid, name in rows:
        first = names.setdefault(cid, (line, name))
        if first[1] != name:
            raise DataError(f"{path}, line {line}: class {cid} is {name!r}, but {first[1]!r} on line {first[0]}")
    return {cid: name for cid, (_, name) in names.items()}


def _check_found(rows: list[tuple[Path, Path | None]], what: str) -> None:
    missing = [wanted for wanted, found in rows if found is None]
    if missing:
        raise DataError(f"{what}: {len(missing)} listed file(s) missing: {_names(missing)}")


# --------------------------------------------------------------------- loaders

FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def load_fsdd(root: Path) -> Dataset:
    """Free Spoken Digit Dataset: 10 digits, speaker from the file name."""
    root = _require_dir(Path(root), "FSDD")
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    files = _audio_files(folder.iterdir(), "FSDD")
    if not files:
        raise DataError(f"FSDD: no audio files in {folder}")
    bad = [p.name for p in files if not FSDD_NAME.match(p.stem)]
    if bad:
        raise DataError(f"FSDD: file name(s) not of the form digit_speaker_index: {_names(bad)}")
    clips = []
    for p in files:
        digit, speaker, _ = FSDD_NAME.match(p.stem).groups()
        clips.append(Clip(p, int(digit), speaker, source=p.stem))
    return Dataset("fsdd", tuple(str(d) for d in range(10)), tuple(clips))


def load_urbansound8k(root: Path) -> Dataset:
    """UrbanSound8K: official folds from the CSV, source recording = fsID."""
    root = _require_dir(Path(root), "UrbanSound8K")
    meta = root / "metadata" / "UrbanSound8K.csv"
    rows = _read_csv(meta, ("slice_file_name", "fsID", "fold", "classID", "class"))
    if not rows:
        raise DataError(f"{meta}: no rows")
    parsed = [(line, r, _int_field(meta, line, r, "classID"), _int_field(meta, line, r, "fold", low=1))
              for line, r in rows]
    names = _class_names(meta, ((line, cid, r["class"]) for line, r, cid, _ in parsed))
    found = []
    for _, r, _, fold in parsed:
        wanted = root / "audio" / f"fold{fold}" / r["slice_file_name"]
        found.append((wanted, _resolve(wanted)))
    _check_found(found, "UrbanSound8K")
    ids = sorted(names)
    if ids != list(range(len(ids))):
        raise DataError(f"{meta}: classID values are not 0..N-1: {ids}")
    clips = tuple(
        Clip(path, cid, None, source=f"fs{r['fsID']}", fold=fold)
        for (_, r, cid, fold), (_, path) in zip(parsed, found)
    )
    return Dataset("urbansound8k", tuple(names[i] for i in ids), clips)


EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"}
# The five emotions shared with AESDD (the 1D paper's speech-emotion task).
EMODB_FIVE = ("anger", "disgust", "fear", "happiness", "sadness")
# 03a01Fa: speaker (2 digits), text (a letter and 2 digits), emotion letter, version letter.
EMODB_NAME = re.compile(rf"([0-9]{{2}})([a-z][0-9]{{2}})([{''.join(EMODB_EMOTIONS)}])([a-z])")  # fullmatch


def load_emodb(root: Path, five_class: bool = True) -> Dataset:
    """EMO-DB: speaker = name chars 1-2, emotion = char 6; ``five_class`` keeps AESDD's five."""
    root = _require_dir(Path(root), "EMO-DB")
    folder = root / "wav" if (root / "wav").is_dir() else root
    files = _audio_files(folder.iterdir(), "EMO-DB")
    if not files:
        raise DataError(f"EMO-DB: no audio files in {folder}")
    bad = [p.name for p in files if not EMODB_NAME.fullmatch(p.stem)]
    if bad:
        raise DataError(f"EMO-DB: file name(s) not of the form SSTTTEV (speaker 2 digits, text e.g. a01, emotion one "
                        f"of {''.join(EMODB_EMOTIONS)}, version letter; e.g. 03a01Fa.wav): {_names(bad)}")
    labels = EMODB_FIVE if five_class else tuple(sorted(EMODB_EMOTIONS.values()))
    clips = []
    for p in files:
        speaker, _, letter, _ = EMODB_NAME.fullmatch(p.stem).groups()
        emotion = EMODB_EMOTIONS[letter]
        if emotion in labels:
            clips.append(Clip(p, labels.index(emotion), speaker, source=p.stem))
    if not clips:  # else the protocol's "needs 3 speakers, has 0" would be the message
        wanted = ", ".join(f"{k} {v}" for k, v in EMODB_EMOTIONS.items() if v in labels)
        raise DataError(f"EMO-DB: no files of the {len(labels)} emotions ({wanted}) among the {len(files)} audio "
                        f"files in {folder}")
    return Dataset("emodb" if five_class else "emodb7", labels, tuple(clips))


def load_esc50(root: Path, esc10: bool = False) -> Dataset:
    """ESC-50 (or its ESC-10 subset): official 5 folds, source recording = src_file."""
    root = _require_dir(Path(root), "ESC-50")
    meta = root / "meta" / "esc50.csv"
    rows = _read_csv(meta, ("filename", "fold", "target", "category", "esc10", "src_file"))
    for line, r in rows:  # every row, not just ESC-10's: a broken file is broken for both
        if r["esc10"].strip().lower() not in ("true", "false"):
            raise DataError(f"{meta}, line {line}: esc10 {r['esc10']!r} is neither True nor False")
    if esc10:
        rows = [(line, r) for line, r in rows if r["esc10"].strip().lower() == "true"]
    if not rows:
        raise DataError(f"{meta}: no {'ESC-10 ' if esc10 else ''}rows")
    parsed = [(line, r, _int_field(meta, line, r, "target"), _int_field(meta, line, r, "fold", low=1))
              for line, r in rows]
    names = _class_names(meta, ((line, t, r["category"]) for line, r, t, _ in parsed))
    targets = sorted(names)
    index = {t: i for i, t in enumerate(targets)}  # ESC-10 targets are sparse: renumber
    found = [(root / "audio" / r["filename"], _resolve(root / "audio" / r["filename"])) for _, r, _, _ in parsed]
    _check_found(found, "ESC-50")
    clips = tuple(
        Clip(path, index[t], None, source=f"src{r['src_file']}", fold=fold)
        for (_, r, t, fold), (_, path) in zip(parsed, found)
    )
    return Dataset("esc10" if esc10 else "esc50", tuple(names[t] for t in targets), clips)


def load_folders(root: Path) -> Dataset:
    """Generic layout: one sub-folder per class (sorted names = labels), audio files inside (hidden
    files and folders, such as macOS's ``._NAME.wav`` or a ``.trash/``, are not part of it)."""
    root = _require_dir(Path(root), "folders")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"folders: need at least 2 class folders in {root}, found {len(classes)}")
    stray = _audio_files((p for p in root.iterdir() if not p.name.startswith(".")), "folders")
    if stray:  # in no class folder: skipped without a word, it would be data the user thinks was used
        raise DataError(f"folders: {len(stray)} audio file(s) at the top of {root}, in no class folder: "
                        f"{_names(p.name for p in stray)}; move each into its class's folder")
    clips = []
    empty = []
    for label, folder in enumerate(classes):
        visible = (p for p in folder.rglob("*") if not any(part.startswith(".") for part in p.relative_to(folder).parts))
        files = _audio_files(visible, "folders")
        if not files:
            empty.append(folder.name)
        clips.extend(Clip(p, label, None, source=str(p.relative_to(root))) for p in files)
    if empty:
        raise DataError(f"folders: class folder(s) without audio files: {_names(empty)}")
    return Dataset(root.name or "folders", tuple(c.name for c in classes), tuple(clips))


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "fsdd": load_fsdd,
    "urbansound8k": load_urbansound8k,
    "emodb": load_emodb,
    "emodb7": lambda root: load_emodb(root, five_class=False),
    "esc50": load_esc50,
    "esc10": lambda root: load_esc50(root, esc10=True),
    "folders": load_folders,
}


def data_pair(item: str) -> tuple[str, str]:
    """``NAME=PATH`` (a ``--data`` value of the grid and describe CLIs) -> (name, path); DataError if malformed."""
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise DataError(f"--data {item!r}: expected NAME=PATH, e.g. --data fsdd=../shared/data/fsdd")
    return name, path


def load_dataset(name: str, root: Path) -> Dataset:
    """Load dataset ``name`` (a key of :data:`LOADERS`) from ``root``."""
    try:
        loader = LOADERS[name.lower()]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(LOADERS)}") from None
    return loader(Path(root))


# --------------------------------------------------------------------- decoding


class AudioError(DataError):
    """One audio file that cannot be used: ``path`` and ``reason`` apart, so a list of failures
    can name each file once with its own reason."""

    def __init__(self, path: Path, reason: str, message: str) -> None:
        super().__init__(message)
        self.path, self.reason = Path(path), reason


def _why_unreadable(path: Path, e: Exception) -> str:
    """libsndfile's reason, without the path it repeats ("Error opening 'x.wav': Format not recognised.")."""
    reason = getattr(e, "error_string", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
    if reason.startswith("System error"):  # libsndfile's word for any OS failure: ask the OS which one
        try:
            with open(path, "rb"):
                pass
        except OSError as os_error:
            reason = os_error.strerror or reason
    return reason.rstrip(".")


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Decode ``path``, downmix to mono, resample to ``sample_rate``.

    Returns float32, shape (samples,), values as decoded (PCM16 gives [-1, 1)).
    Raises :class:`AudioError` naming the file when it cannot be read, is empty, has a
    rate no recording has (``runtime.limits``) or holds NaN/inf samples or samples beyond
    ``runtime.limits.MAX_SAMPLE_ABS``.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            data, rate, header_log, declared = f.read(dtype="float32", always_2d=True), f.samplerate, f.extra_info, f.frames
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError ...
        reason = _why_unreadable(Path(path), e)
        raise AudioError(path, reason, f"cannot read audio file {path} ({reason})") from None
    cut = truncated_sizes(header_log)
    if cut:  # libsndfile reads what is there without a word: a clip cut short must not train as a whole one
        reason = f"truncated: its header declares {cut[0]} bytes of audio, the file holds {cut[1]}; restore or remove it"
        raise AudioError(path, reason, f"audio file {path} is {reason}")
    if data.shape[0] == 0:
        raise AudioError(path, "audio file is empty", f"audio file is empty: {path}")
    if data.shape[0] < declared:  # a cut Ogg or MP3 decodes what is there without an error
        reason = f"{short_decode(data.shape[0], declared)}; restore or remove it"
        raise AudioError(path, reason, f"audio file {path} {reason}")
    if not MIN_RATE <= rate <= MAX_RATE:  # the runtime's bounds: a "1 Hz" header is a broken file, not audio
        reason = f"its header gives {rate} Hz, outside the {MIN_RATE}-{MAX_RATE} Hz of recorded audio"
        raise AudioError(path, reason, f"{reason}: {path}")
    nonfinite, beyond = bad_samples(data)
    if nonfinite:  # float files can hold NaN/inf; one would poison every batch it is in
        reason = f"audio file has {nonfinite} NaN/inf sample(s)"
        raise AudioError(path, reason, f"{reason}: {path}")
    if beyond:  # garbage floats: the resampler turns them into inf and NaN
        reason = (f"audio file has {beyond} sample(s) beyond "
                  f"±{MAX_SAMPLE_ABS:g} full scale, which audio never reaches (a corrupt float file?)")
        raise AudioError(path, reason, f"{reason}: {path}")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


# Part of every disk cache key; raised whenever read_audio refuses or decodes differently, so an entry
# decoded under older rules is decoded again (and refused, if the new rules refuse its file).
# 1: the original rules; 2: truncated and zero-frame files refused; 3: samples beyond +-MAX_SAMPLE_ABS and
# files that decode short of their header refused.
DECODE_RULES = 3


class AudioCache:
    """Decoded, resampled audio by (path, rate): in memory, and on disk when ``folder`` is given.

    The disk key hashes the path, size, mtime, rate and :data:`DECODE_RULES`, so an edited file is
    re-read, and so is every file once the decoding rules change.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:  # made here, so a bad folder is named as such and not blamed on every audio file
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise DataError(f"cache folder {self.folder}: cannot create it ({e.strerror or type(e).__name__})") from None
        self._memory: dict[tuple[str, int], np.ndarray] = {}
        self.reads = 0  # files actually decoded (tests check the cache works)

    def _disk_path(self, path: Path, sample_rate: int) -> Path | None:
        if self.folder is None:
            return None
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{sample_rate}|{DECODE_RULES}".encode()).hexdigest()
        return self.folder / f"{key[:2]}/{key}.npy"

    def get(self, path: Path, sample_rate: int) -> np.ndarray:
        key = (str(path), sample_rate)
        if key in self._memory:
            return self._memory[key]
        disk = self._disk_path(Path(path), sample_rate) if Path(path).exists() else None
        audio = _load_cached(disk) if disk is not None and disk.is_file() else None
        if audio is None:  # not cached, or a corrupt entry: decoded again and the entry replaced
            audio = read_audio(Path(path), sample_rate)
            self.reads += 1
            if disk is not None:
                disk.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(disk, suffix=".npy") as tmp:  # unique name: runs may share a cache
                    np.save(tmp, audio)
        self._memory[key] = audio
        return audio


def _load_cached(disk: Path) -> np.ndarray | None:
    """The cache entry ``disk`` as read_audio returns it, or None when it is none: cut short, not an
    .npy file, pickled (never loaded: a shared cache folder must not run code), another dtype or
    shape, or holding NaN/inf, which read_audio refuses in a file but a cache entry would slip past."""
    try:
        audio = np.load(disk, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # EOFError: an empty file
        return None
    if not isinstance(audio, np.ndarray) or audio.dtype != np.float32 or audio.ndim != 1 or not audio.size:
        return None  # an .npz archive, or an array read_audio never returns
    return audio if np.isfinite(audio).all() else None


def decode(clips: Iterable[Clip], sample_rate: int, cache: AudioCache | None = None, progress: bool = False) -> list[np.ndarray]:
    """Decode every clip (float32 mono arrays at ``sample_rate``), through ``cache``.

    All unreadable files are collected and reported together in one :class:`DataError`.
    """
    cache = cache if cache is not None else AudioCache()
    clips = list(clips)
    it: Iterable[Clip] = clips
    if progress:
        from tqdm import tqdm

        it = tqdm(clips, desc=f"decoding audio @ {sample_rate} Hz", unit="file", leave=False)
    out: list[np.ndarray] = []
    failed: list[str] = []
    for clip in it:
        try:
            out.append(cache.get(clip.path, sample_rate))
        except AudioError as e:  # the path once, then the reason (libsndfile's, or empty, or NaN)
            failed.append(f"{clip.path} ({e.reason})")
        except OSError as e:  # the cache's stat, load or save of this file
            failed.append(f"{clip.path} ({e.strerror or type(e).__name__})")
        except DataError as e:
            failed.append(f"{clip.path} ({e})")
    if failed:
        raise DataError(f"{len(failed)} audio file(s) missing or unreadable: {_names(failed)}")
    return out
