"""The model-zoo corpus: split by speaker, FSDD splicing, flite and festival synthesis.

A fake FSDD folder of tiny generated wav files (tmp_path) stands in for the real one: each
take is a tone whose frequency encodes its digit, so the spliced audio can be read back.
"""

import shutil

import numpy as np
import pytest
import soundfile as sf

from echo_core import corpus_confirm as C
from echo_core import corpus_zoo as Z
from echo_core.corpus import DIGIT_WORDS, CorpusError, read_manifest

VARIANTS = [f"v{i}" for i in range(30)]
FSDD_SR = 8000
TAKE_SECONDS = 0.2


def _digit_tone(digit: int) -> np.ndarray:
    t = np.arange(int(TAKE_SECONDS * FSDD_SR)) / FSDD_SR
    return (0.5 * np.sin(2 * np.pi * (300 + 100 * digit) * t)).astype(np.float32)


@pytest.fixture
def fake_fsdd(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    for speaker in ("anna", "bert", "carl"):
        for digit in range(10):
            for index in range(2):
                sf.write(folder / f"{digit}_{speaker}_{index}.wav", _digit_tone(digit), FSDD_SR)
    (folder / "README.txt").write_text("not a take")
    return folder


def _plan(fake_fsdd, **kw):
    sizes = dict(n_espeak=300, n_flite=100, n_festival=60, n_spliced_train=30,
                 n_spliced_test=10, n_fsdd_copies=10, test_speakers={"fsdd": "bert"})
    return Z.plan_zoo(0, VARIANTS, Z.fsdd_files(fake_fsdd), **{**sizes, **kw})


def test_fsdd_files_parse_names(fake_fsdd):
    files = Z.fsdd_files(fake_fsdd)
    assert sorted(files) == ["anna", "bert", "carl"]
    assert len(files["anna"]) == 20 and (3, "3_anna_1.wav") in files["anna"]


def test_no_speaker_in_two_splits_and_every_test_set_present(fake_fsdd):
    specs = _plan(fake_fsdd)
    splits = {}
    for s in specs:
        splits.setdefault(s.speaker, set()).add(s.split)
    assert all(len(v) == 1 for v in splits.values()), splits
    held = {s.source: s.speaker for s in specs if s.split == "test" and s.source != "espeak"}
    assert held["flite"] == "rms" and held["festival"] == "ked"
    assert held["fsdd"] == held["fsdd_spliced"] == "bert"
    assert {s.source for s in specs if s.split == "test"} == set(Z.TEST_SETS)
    # voices of one person share a split: kal (flite kal, kal16; festival kal_diphone), slt
    for voice, speaker in {**Z.FLITE_VOICES, **Z.FESTIVAL_VOICES}.items():
        assert {s.speaker for s in specs if s.voice == voice} <= {speaker}
    # only training clips are augmented
    assert {s.split for s in specs if s.augment} == {"train"}


def test_plan_is_deterministic(fake_fsdd):
    assert _plan(fake_fsdd) == _plan(fake_fsdd)
    assert _plan(fake_fsdd) != Z.plan_zoo(1, VARIANTS, Z.fsdd_files(fake_fsdd), n_espeak=300,
                                          n_flite=100, n_festival=60, n_spliced_train=30,
                                          n_spliced_test=10, n_fsdd_copies=10,
                                          test_speakers={"fsdd": "bert"})


def test_splice_joins_takes_with_gaps():
    a, b = np.ones(100, np.float32), 2 * np.ones(50, np.float32)
    out = Z.splice([a, b], [0.01], sr=1000)
    assert np.array_equal(out, np.concatenate([a, np.zeros(10), b]))
    with pytest.raises(Z.CorpusError, match="gaps"):
        Z.splice([a, b], [])


def test_spliced_clip_has_its_text_and_one_speaker(fake_fsdd):
    specs = [s for s in _plan(fake_fsdd) if s.source == "fsdd_spliced"]
    assert specs
    checked = 0
    for k, spec in enumerate(specs[:8] + [s for s in specs if s.split == "test"][:4]):
        takes = spec.origin.split(";")
        assert {name.split("_")[1] for name in takes} == {spec.speaker}
        digits = [int(name.split("_")[0]) for name in takes]
        assert spec.text == " ".join(DIGIT_WORDS[d] for d in digits)
        x, description = Z.render(spec, k, 0, fake_fsdd)
        if description:  # augmented training clip: its length/frequencies may change
            continue
        # read the digits back from the audio: voiced stretches and their tone frequency
        envelope = np.convolve(np.abs(x), np.ones(64) / 64, mode="same")
        loud = envelope > 1e-2
        edges = np.flatnonzero(np.diff(np.r_[0, loud.astype(int), 0]))
        runs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a > 0.1 * 16000]
        heard = []
        for a, b in runs:
            seg = x[a:b]
            freq = np.fft.rfftfreq(seg.size, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(seg)))]
            heard.append(int(round((freq - 300) / 100)))
        assert heard == digits
        checked += 1
        gaps = len(x) / 16000 - TAKE_SECONDS * len(digits)
        assert (len(digits) - 1) * Z.GAP_RANGE_S[0] - 0.01 <= gaps <= \
            (len(digits) - 1) * Z.GAP_RANGE_S[1] + 0.01
    assert checked >= 4


def test_isolated_fsdd_clip_is_the_take_at_16k(fake_fsdd):
    spec = next(s for s in _plan(fake_fsdd) if s.source == "fsdd" and s.split == "test")
    x, description = Z.render(spec, 0, 0, fake_fsdd)
    assert description == "" and len(x) == int(TAKE_SECONDS * 16000)
    assert spec.text == DIGIT_WORDS[int(spec.origin[0])]


def test_render_needs_the_fsdd_folder(fake_fsdd):
    spec = next(s for s in _plan(fake_fsdd) if s.source == "fsdd")
    with pytest.raises(Z.CorpusError, match="--fsdd"):
        Z.render(spec, 0, 0, None)


def test_manifest_round_trips_new_columns(tmp_path):
    import csv
    from dataclasses import asdict

    spec = Z.ClipSpec(path="wav/0.wav", text="one", voice="fsdd:anna", pitch=0, speed=0,
                      split="test", source="fsdd", speaker="anna", origin="1_anna_0.wav",
                      augment="")
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(spec)))
        w.writeheader()
        w.writerow(asdict(spec))
    assert read_manifest(tmp_path) == [spec]


needs_flite = pytest.mark.skipif(shutil.which("flite") is None,
                                 reason="flite is not installed (apt-get install flite)")
needs_festival = pytest.mark.skipif(
    shutil.which("text2wave") is None,
    reason=f"festival is not installed (apt-get install {Z.FESTIVAL_PACKAGES})")


def _is_speech(x, words):
    return x.dtype == np.float32 and 0.15 * words < len(x) / 16000 < 2.0 * words + 0.5 and \
        np.abs(x).max() > 0.05


@needs_flite
@pytest.mark.parametrize("voice", sorted(Z.FLITE_VOICES))
def test_flite_voices_speak(voice):
    assert _is_speech(Z.synthesize_flite("one two", voice, f0_mean=150, stretch=100), 2)


@needs_festival
@pytest.mark.parametrize("voice", sorted(Z.FESTIVAL_VOICES))
def test_festival_voices_speak(voice):
    assert _is_speech(Z.synthesize_festival("three four", voice, stretch=110), 2)


def test_extra_training_clips_leave_the_base_plan_and_test_sets_unchanged(fake_fsdd):
    base = _plan(fake_fsdd)
    extra = dict(n_extra_espeak=40, n_extra_synth=30, n_extra_fsdd_copies=20, n_extra_spliced=10)
    grown = _plan(fake_fsdd, **extra)
    assert grown[:len(base)] == base and len(grown) == len(base) + 100
    added = grown[len(base):]
    assert [s.path for s in added] == [f"wav/{i:05d}.wav" for i in range(len(base), len(grown))]
    assert {s.split for s in added} == {"train"} and {s.augment for s in added} == {"random"}
    # only speakers already in training: no test or validation voice gains clips
    train_speakers = {s.speaker for s in base if s.split == "train"}
    assert {s.speaker for s in added} <= train_speakers
    assert {s.source for s in added} == {"espeak", "flite", "festival", "fsdd", "fsdd_spliced"}


# The confirmation set (echo_core.corpus_confirm)

MAIN_SIZES = dict(n_espeak=300, n_flite=100, n_festival=60, n_spliced_train=30, n_spliced_test=10,
                  n_fsdd_copies=10, test_speakers={"fsdd": "bert"})
SMALL = dict(n_espeak=40, n_flite=12, n_festival=10, n_spliced=8)


def _confirm(fake_fsdd, draw=1, sizes=SMALL):
    return C.plan_confirmation(0, VARIANTS, Z.fsdd_files(fake_fsdd), draw, sizes, MAIN_SIZES)


def test_confirmation_set_is_new_clips_of_the_held_out_voices_only(fake_fsdd):
    main = Z.plan_zoo(0, VARIANTS, Z.fsdd_files(fake_fsdd), **MAIN_SIZES)
    specs = _confirm(fake_fsdd)
    assert [s.path for s in specs] == [f"wav/{i:05d}.wav" for i in range(len(specs))]
    assert {s.split for s in specs} == {"test"} and {s.augment for s in specs} == {""}
    count = {source: sum(s.source == source for s in specs) for source in Z.TEST_SETS}
    assert count == dict(espeak=40, flite=12, festival=10, fsdd=0, fsdd_spliced=8)
    held_espeak = {s.speaker for s in main if s.source == "espeak" and s.split == "test"}
    train_voices = {(s.source, s.speaker) for s in main if s.split != "test"}
    assert {s.speaker for s in specs if s.source == "espeak"} <= held_espeak
    assert {s.voice for s in specs if s.source == "flite"} == {"rms"}
    assert {s.voice for s in specs if s.source == "festival"} == {"ked_diphone"}
    assert {s.speaker for s in specs if s.source == "fsdd_spliced"} == {"bert"}
    assert not {(s.source, s.speaker) for s in specs} & train_voices
    # no clip is one the main corpus (or the set itself) already holds
    keys = [C.clip_key(s) for s in specs]
    assert len(set(keys)) == len(keys) and not set(keys) & {C.clip_key(s) for s in main}


def test_confirmation_set_is_deterministic_per_draw(fake_fsdd):
    assert _confirm(fake_fsdd) == _confirm(fake_fsdd)
    other = _confirm(fake_fsdd, draw=2)
    assert [C.clip_key(s) for s in other] != [C.clip_key(s) for s in _confirm(fake_fsdd)]


@pytest.mark.parametrize("draw", [0, -1, True, 1.0])
def test_confirmation_draw_must_be_a_positive_integer(fake_fsdd, draw):
    with pytest.raises(CorpusError, match="draw must be an integer >= 1"):
        _confirm(fake_fsdd, draw=draw)


def test_confirmation_sizes_are_checked(fake_fsdd):
    with pytest.raises(CorpusError, match="confirmation sizes are"):
        _confirm(fake_fsdd, sizes={"n_espeek": 3})


def test_confirmation_set_renders_and_the_study_finds_its_test_sets(fake_fsdd, tmp_path):
    from echo_core.study_eval import test_indices

    out = tmp_path / "confirm"
    sizes = dict(n_espeak=2, n_flite=1, n_festival=1, n_spliced=2)
    C.write_confirmation(out, fake_fsdd, 0, 1, workers=1, progress=False, sizes=sizes,
                         main_sizes=MAIN_SIZES)
    specs = read_manifest(out)
    assert {k: len(v) for k, v in test_indices(specs).items()} == dict(
        espeak=2, flite=1, festival=1, fsdd_spliced=2)
    for spec in specs:
        samples, sr = sf.read(out / spec.path)
        assert sr == 16000 and samples.size > 0.1 * sr
    # a spliced string is its takes (each a tone of its digit) in order
    spliced = next(s for s in specs if s.source == "fsdd_spliced")
    assert len(spliced.text.split()) == len(spliced.origin.split(";"))


def test_corpus_cli_refuses_a_bad_confirmation_draw(fake_fsdd, tmp_path, capsys):
    from echo_core.corpus import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "c"), "--fsdd", str(fake_fsdd), "--confirm", "-2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "draw must be an integer >= 1" in err and "Traceback" not in err
