"""Loaders, decoding, cache and windowing: real data via fixtures, ESC-50 and folder layouts generated."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train.data import AudioCache, DataError, decode, load_dataset, read_audio
from train.windows import clip_mean, clip_windows, cut, window_starts, window_table


def _tone(path: Path, sr: int = 16000, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> None:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr)


# --------------------------------------------------------------------- real data


def test_fsdd_real(fsdd_dir):
    ds = load_dataset("fsdd", fsdd_dir)
    assert len(ds.clips) == 2500 and ds.labels == tuple("0123456789")
    assert {c.speaker for c in ds.clips} == {"george", "jackson", "nicolas", "theo", "yweweler"}
    clip = next(c for c in ds.clips if c.path.name == "3_theo_7.wav")
    assert clip.label == 3 and clip.speaker == "theo"
    audio = read_audio(clip.path, 8000)
    assert audio.dtype == np.float32 and audio.ndim == 1 and 0.1 * 8000 < len(audio) < 2.5 * 8000


def test_urbansound_real_resolves_flac(urbansound_dir):
    ds = load_dataset("urbansound8k", urbansound_dir)
    assert len(ds.clips) == 1761 and len(ds.labels) == 10 and ds.labels[3] == "dog_bark"
    assert {c.fold for c in ds.clips} == {1, 2}
    assert all(c.path.suffix == ".flac" and c.path.is_file() for c in ds.clips)
    assert all(c.source.startswith("fs") for c in ds.clips)
    a = read_audio(ds.clips[0].path, 8000)
    assert len(a) <= 4 * 8000 + 1


def test_emodb_real_five_and_seven(emodb_dir):
    five = load_dataset("emodb", emodb_dir)
    seven = load_dataset("emodb7", emodb_dir)
    assert len(seven.clips) == 535 and len(seven.labels) == 7
    assert five.labels == ("anger", "disgust", "fear", "happiness", "sadness")
    assert 300 < len(five.clips) < 535 and len({c.speaker for c in five.clips}) == 10
    c = next(c for c in five.clips if c.path.stem == "03a01Wa")
    assert c.speaker == "03" and five.labels[c.label] == "anger"
    assert len(read_audio(c.path, 22050)) > 22050  # 16 kHz resampled up


# --------------------------------------------------------------------- generated layouts


def _esc50(root: Path) -> Path:
    rows = []
    for i, (target, cat, esc10) in enumerate([(0, "dog", True), (1, "rooster", True), (5, "cat", False)] * 4):
        name = f"{i % 5 + 1}-{1000 + i}-A-{target}.wav"
        _tone(root / "audio" / name, sr=44100, seconds=0.3, freq=200 + 100 * target)
        rows.append([name, i % 5 + 1, target, cat, str(esc10), 1000 + i, "A"])
    (root / "meta").mkdir(parents=True)
    with (root / "meta" / "esc50.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    return root


def test_esc50_and_esc10(tmp_path):
    root = _esc50(tmp_path / "ESC-50")
    full = load_dataset("esc50", root)
    assert full.labels == ("dog", "rooster", "cat") and len(full.clips) == 12
    assert {c.fold for c in full.clips} == {1, 2, 3, 4, 5}
    sub = load_dataset("esc10", root)
    assert sub.labels == ("dog", "rooster") and len(sub.clips) == 8
    assert sorted({c.label for c in sub.clips}) == [0, 1]
    audio = decode(sub.clips[:2], 22050)
    assert all(len(a) == int(0.3 * 22050) for a in audio)


def test_esc50_missing_file_named(tmp_path):
    root = _esc50(tmp_path / "ESC-50")
    victim = sorted((root / "audio").iterdir())[0]
    victim.unlink()
    with pytest.raises(DataError, match=victim.name):
        load_dataset("esc50", root)


def test_folders_layout_flac_stereo(tmp_path):
    for cls in ("birds", "cars"):
        for i in range(3):
            _tone(tmp_path / cls / f"{i}.flac", sr=48000, freq=300 if cls == "cars" else 3000, channels=2)
    ds = load_dataset("folders", tmp_path)
    assert ds.labels == ("birds", "cars") and len(ds.clips) == 6
    a = read_audio(ds.clips[0].path, 8000)
    assert a.ndim == 1 and len(a) == 4000  # stereo -> mono, 48 kHz -> 8 kHz


def test_unreadable_and_missing_reported_by_name(tmp_path):
    for cls in ("a", "b"):
        _tone(tmp_path / cls / "good.wav")
    (tmp_path / "a" / "broken.wav").write_bytes(b"RIFF not really audio")
    ds = load_dataset("folders", tmp_path)
    with pytest.raises(DataError, match="broken.wav"):
        decode(ds.clips, 8000)
    with pytest.raises(DataError, match="no_such_folder"):
        load_dataset("fsdd", tmp_path / "no_such_folder")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("nope", tmp_path)


def test_fsdd_bad_name_reported(tmp_path):
    _tone(tmp_path / "recordings" / "1_alice_0.wav")
    _tone(tmp_path / "recordings" / "hello.wav")
    with pytest.raises(DataError, match="hello.wav"):
        load_dataset("fsdd", tmp_path)


def test_cache_reads_each_file_once(tmp_path):
    for cls in ("a", "b"):
        _tone(tmp_path / "data" / cls / "x.wav")
    ds = load_dataset("folders", tmp_path / "data")
    cache = AudioCache(tmp_path / "cache")
    first = decode(ds.clips, 8000, cache)
    decode(ds.clips, 8000, cache)
    assert cache.reads == 2
    fresh = AudioCache(tmp_path / "cache")  # disk cache survives the process
    again = decode(ds.clips, 8000, fresh)
    assert fresh.reads == 0 and all(np.array_equal(a, b) for a, b in zip(first, again))


def test_cache_entries_from_older_decoding_rules_are_decoded_again(tmp_path, monkeypatch):
    """A file cached before read_audio refused truncated WAVs would otherwise pass from the cache
    for ever: the rules' version is part of the key."""
    import train.data

    _tone(tmp_path / "data" / "a" / "x.wav")
    _tone(tmp_path / "data" / "b" / "x.wav")
    cut = tmp_path / "data" / "a" / "x.wav"
    whole = cut.read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])
    ds = load_dataset("folders", tmp_path / "data")
    monkeypatch.setattr(train.data, "DECODE_RULES", train.data.DECODE_RULES - 1)
    old = AudioCache(tmp_path / "cache")
    entry = old._disk_path(cut, 8000)  # what the older rules decoded and cached for the cut file
    entry.parent.mkdir(parents=True)
    np.save(entry, sf.read(str(cut), dtype="float32")[0])
    assert len(decode(ds.clips, 8000, old)) == 2 and old.reads == 1  # under those rules: served from the cache
    monkeypatch.undo()
    with pytest.raises(DataError, match="truncated: its header declares"):
        decode(ds.clips, 8000, AudioCache(tmp_path / "cache"))


# --------------------------------------------------------------------- windowing


def test_short_clip_is_centred_and_padded():
    x = np.ones(3, dtype=np.float32)
    w = clip_windows(x, 7, 3)
    assert w.shape == (1, 7) and w[0].tolist() == [0, 0, 1, 1, 1, 0, 0]


def test_long_clip_windows_cover_the_end():
    x = np.arange(10, dtype=np.float32)
    assert window_starts(10, 4, 4).tolist() == [0, 4, 6]
    w = clip_windows(x, 4, 4)
    assert w[-1].tolist() == [6, 7, 8, 9]
    assert cut(x, 8, 4).tolist() == [8, 9, 0, 0] and cut(x, -2, 4).tolist() == [0, 0, 0, 1]


def test_window_table_and_clip_mean():
    audios = [np.zeros(3, np.float32), np.zeros(10, np.float32)]
    idx, starts = window_table(audios, 4, 4)
    assert idx.tolist() == [0, 1, 1, 1] and len(starts) == 4
    probs = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    m = clip_mean(probs, idx, 2)
    assert m.shape == (2, 2) and np.allclose(m[0], [1, 0]) and np.allclose(m[1], [1 / 3, 2 / 3])


def test_augment_speed_and_noise():
    from train.augment import Augment

    x = np.sin(np.arange(200) / 5.0).astype(np.float32)[None].repeat(2, 0)
    same = Augment.change_speed(x, np.array([1.0, 1.0]))
    assert np.array_equal(same, x)
    mixed = Augment.change_speed(x, np.array([1.0, 1.25]))
    assert np.allclose(mixed[0], x[0], atol=1e-6) and mixed[1, 0] == 0.0  # sped up: edges run out of audio
    out = Augment()(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.float32 and not np.array_equal(out, x)


def test_speed_change_moves_pitch_and_keeps_the_spectrum_flat():
    """A 1 kHz tone played 1.1x as fast is an 1.1 kHz tone; and a speed change close to 1
    leaves white noise's spectrum flat up to near Nyquist. Linear interpolation, used before,
    took 2-5 dB off everything above 2 kHz at 8 kHz: a train/test mismatch on every window."""
    from train.augment import Augment

    rate = 8000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)[None]
    for f in (0.9, 1.1):
        y = Augment.change_speed(tone, np.array([f]))[0, 1000:7000]  # away from the zeroed edges
        assert np.argmax(np.abs(np.fft.rfft(y))) * rate / y.size == pytest.approx(1000 * f, abs=2)
    noise = np.random.default_rng(0).standard_normal((32, rate)).astype(np.float32)
    out = Augment.change_speed(noise, np.full(32, 1.001))
    before, after = (np.mean(np.abs(np.fft.rfft(a, axis=1)) ** 2, axis=0) for a in (noise, out))
    for lo, hi in ((100, 1000), (1000, 2000), (2000, 3000), (3000, 3500)):  # Hz = bins here (1 s at 8 kHz)
        assert 10 * np.log10(after[lo:hi].sum() / before[lo:hi].sum()) == pytest.approx(0.0, abs=0.3), (lo, hi)


def test_augment_equaliser_shapes_the_spectrum_by_the_drawn_gains():
    from train.augment import EQ_BANDS, Augment

    rate, n = 8000, 8000
    t = np.arange(n) / rate
    x = np.stack([np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 3000 * t)] * 2).astype(np.float32)
    flat = Augment.equalise(x, np.zeros((2, EQ_BANDS)))
    np.testing.assert_allclose(flat, x, atol=1e-5)  # 0 dB everywhere: unchanged
    tilt = np.stack([np.linspace(-12, 12, EQ_BANDS), np.linspace(12, -12, EQ_BANDS)])
    out = Augment.equalise(x, tilt)
    spec = np.abs(np.fft.rfft(out, axis=1))
    base = np.abs(np.fft.rfft(x, axis=1))
    logf = np.log(np.arange(n // 2 + 1) + 1.0)
    anchors = np.linspace(0.0, logf[-1], EQ_BANDS)
    for row in range(2):  # each tone comes out with the gain the drawn curve has at its frequency (1 Hz bins)
        for f in (100, 3000):
            want_db = np.interp(logf[f], anchors, tilt[row])
            got_db = 20 * np.log10(spec[row, f] / base[row, f])
            assert abs(got_db - want_db) < 0.1, (row, f, got_db, want_db)
    assert spec[0, 3000] > 2 * spec[0, 100] and spec[1, 100] > 2 * spec[1, 3000]  # treble / bass boosted
    assert out.dtype == np.float32 and out.shape == x.shape
    # off by default, and switching it on changes the windows but not their length
    rng = np.random.default_rng(0)
    assert Augment().eq_db == 0.0 and Augment(eq_db=6.0)(x, rng).shape == x.shape
    with pytest.raises(ValueError, match="eq"):
        Augment(eq_db=-1.0)


def test_augment_masks_zero_time_spans_and_remove_bands():
    from train.augment import MASK_FRACTION, Augment

    rate = 8000
    t = np.arange(rate) / rate
    tones = (100, 1000, 3000)
    x = np.stack([sum(np.sin(2 * np.pi * f * t) for f in tones)] * 2).astype(np.float32)
    # frequency masks: a band around 1 kHz goes in row 0 only; the other tones stay (1 Hz bins)
    centre = np.log(1001) / np.log(rate // 2 + 1)
    out = Augment.mask_bands(x, np.array([[centre - 0.01], [0.0]]), np.array([[0.02], [0.0]]))
    spec = np.abs(np.fft.rfft(out, axis=1)) / (rate / 2)
    assert spec[0, 1000] < 1e-4 and spec[1, 1000] > 0.99
    assert all(spec[r, f] > 0.99 for r in range(2) for f in (100, 3000))
    # time masks: exactly the given spans are zeroed
    spans = Augment.mask_spans(x, np.array([[10, 500], [0, 0]]), np.array([[5, 20], [0, 0]]))
    zeroed = spans == 0.0
    assert zeroed[0, 10:15].all() and zeroed[0, 500:520].all() and zeroed[0].sum() <= 25 + np.sum(x[0] == 0.0)
    assert np.array_equal(spans[1], x[1])
    # the random draw: at most `count` spans of <= 10 % each, shape and dtype kept
    noisy = (np.random.default_rng(1).standard_normal((16, 4000)) + 3.0).astype(np.float32)
    out = Augment.mask(noisy, np.random.default_rng(2), 2)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert all(0 < np.sum(row == 0.0) <= 2 * MASK_FRACTION * 4000 for row in out)
    assert Augment(masks=2)(noisy, np.random.default_rng(3)).shape == noisy.shape
    with pytest.raises(ValueError, match="masks"):
        Augment(masks=-1)


def test_folders_layout_skips_hidden_paths_and_names_audio_in_no_class(tmp_path):
    """dog/.trash/old.wav trained as a dog and macOS's ._NAME.wav as audio; a WAV at the top, in no class
    folder, was skipped without a word."""
    import soundfile as sf

    from train.data import DataError, load_folders

    x = np.zeros(800, np.float32)
    for rel in ("dog/a.wav", "cat/b.wav", "dog/.trash/old.wav", "dog/._a.wav", ".hidden/c.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, x, 8000)
    ds = load_folders(tmp_path)
    assert ds.labels == ("cat", "dog") and sorted(c.path.name for c in ds.clips) == ["a.wav", "b.wav"]
    sf.write(tmp_path / "stray.wav", x, 8000)
    with pytest.raises(DataError, match=r"^folders: 1 audio file\(s\) at the top of .*, in no class folder: "
                                        r"stray\.wav; move each into its class's folder$"):
        load_folders(tmp_path)
