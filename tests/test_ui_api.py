"""The callbacks as plain functions, and the named API endpoints through gradio_client against
an app launched on a free port (in a thread of this process)."""

from __future__ import annotations

import os
import socket
import zipfile

import gradio as gr
import numpy as np
import pytest

from _maps import colour_bars, map_layers
from echo_core import head_scores as hs
from echo_core.errors import PitchSettingsError
from workbench import analysis as A
from workbench import checkpoints as C
from workbench import figures as F
from workbench import ui
from workbench.ui import batch_view, clip_views, common, report
from workbench.ui.report import ReportSettings

PRAAT = ["ac", 75.0, 600.0, 0.45, 0.03, 0.01, 0.35, 0.14, 15, False]


def path_of(value) -> str:
    """A file output as the client returns it: a path, or a dict / list holding one."""
    if isinstance(value, list):
        value = value[0]
    if isinstance(value, dict):
        value = value.get("value", value)
        return path_of(value) if not isinstance(value, str) else value
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """A 30 s synthetic glide (3751 frames), the size the slider budget is about."""
    import soundfile as sf

    samples, _ = A.synthetic_samples(30.0)
    path = tmp_path_factory.mktemp("clips") / "glide30.wav"
    sf.write(path, samples, 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two checkpoint ids: the shipped ones when present, else two tiny random ones."""
    shipped = [cid for _, cid in C.checkpoint_choices() if cid.startswith("shipped/")]
    if len(shipped) >= 2:
        return shipped[:2]
    import torch

    from echo_core.checkpoint import save_checkpoint
    from echo_core.model import Echo
    from echo_core.model_dims import EchoDims
    from echo_core.tokenizer import CharTokenizer

    tok, ids = CharTokenizer(), []
    for name, extra in [("api_causal", dict(decoder_mask="causal", f0_rotary=True)),
                        ("api_reference", dict())]:
        torch.manual_seed(1)
        folder = tmp_path_factory.mktemp(name)
        dims = EchoDims(vocab=tok.vocab_size, text_ctx=24, text_dims=32, text_head=2, text_idx=1,
                        mels=32, aud_ctx=640, aud_dims=32, aud_head=2, aud_idx=1, **extra)
        save_checkpoint(Echo(dims), folder, meta={"features": {"n_mels": 32, "fmax": 8000.0}})
        tok.save(folder)
        ids.append(C.register_checkpoint(folder, name))
    return ids


# ----------------------------------------------------------------------------- callbacks as functions

def test_library_errors_become_page_messages():
    @common.guarded
    def bad():
        raise PitchSettingsError("pitch_floor=-1 is not valid; accepted: a positive frequency")

    with pytest.raises(gr.Error, match="pitch_floor=-1 is not valid"):
        bad()


def test_extract_then_rotary_callbacks(long_clip):
    key, praat, info, fig, stats, csv = clip_views.cb_extract_f0(str(long_clip), *PRAAT)
    assert "30.00 s" in info and praat["pitch_floor"] == 75.0
    trace = fig.data[1]
    assert trace.connectgaps is False and np.isnan(np.asarray(trace.y, dtype=float)).any()
    assert stats.shape[0] == 8 and csv.endswith("_f0.csv")
    text, sim, variants, curves, band = clip_views.cb_rotary(key, praat, 4.0, 64, "seconds", 0.0)
    assert "θ = 10,000" in text
    maps = map_layers(sim)
    assert len(maps) == 3 and not [h for h in sim.data if h.type == "heatmap"]  # no hover trace
    static, clip_map, diff = maps  # two maps on one fitted scale, the difference on its own
    assert (static["zmin"], static["zmax"]) == (clip_map["zmin"], clip_map["zmax"])
    assert -1.0 <= static["zmin"] <= 0.0 and static["zmax"] == 1.0
    assert diff["zmin"] == -diff["zmax"]
    assert [b["title"] for b in colour_bars(sim)] == ["cos sim", "Δ sim"]
    assert static["labels"]["lag"] and static["z"].shape == (F.OVERLAY_CELLS,) * 2
    assert len(map_layers(variants)) == 3
    for h in map_layers(variants):
        assert (h["zmin"], h["zmax"]) == (-1.0, 1.0)
    assert sim.layout.xaxis.title.text == "time (s)"
    assert band.layout.xaxis.type == "log" and len(band.data) == 4  # static, clip, 100, 300 Hz
    with pytest.raises(gr.Error, match="theta must be between"):
        clip_views.cb_rotary(key, praat, 7.5, 64, "positions", 0.0)
    assert all(out == gr.skip() for out in clip_views.cb_extract_f0(None, *PRAAT))  # player cleared
    with pytest.raises(gr.Error, match="pitch_ceiling"):
        clip_views.cb_extract_f0(str(long_clip), "ac", 300.0, 200.0, *PRAAT[3:])


def test_theta_slider_on_a_30_second_clip_draws_at_display_resolution(long_clip):
    """What keeps the slider live (timed in benchmarks/, not here): a 3751-frame clip is drawn
    from at most 512 x 512 sampled positions, and every figure serialises."""
    key, praat, *_ = clip_views.cb_extract_f0(str(long_clip), *PRAAT)
    plot = gr.Plot()
    for log_theta in (2.2, 4.0, 5.8):
        out = clip_views.cb_rotary(key, praat, log_theta, 64, "positions", 0.0)
        for fig in out[1:]:
            plot.postprocess(fig)
        heat = map_layers(out[2])
        assert len(heat) == 3 and all(max(np.shape(t["z"])) <= 512 for t in heat)
        assert all((t["zmin"], t["zmax"]) == (-1.0, 1.0) for t in heat)
        images = [t for t in out[1].data if t.type == "image"]  # 3751 frames: drawn as images
        assert len(images) == 3 and all(t.source.startswith("data:image/png") for t in images)


def test_bias_and_sweep_callbacks(long_clip):
    key, praat, *_ = clip_views.cb_extract_f0(str(long_clip), *PRAAT)
    bias, prior = clip_views.cb_bias(key, praat, 2.0, 4.0, 64, "positions")
    heat = map_layers(bias)[0]
    assert (heat["zmin"], heat["zmax"]) == (0.0, 1.0) and float(np.nanmax(heat["z"])) <= 1.0
    sweep = clip_views.cb_sweep(32)
    assert sum(t.type == "image" for t in sweep.data) == 1  # one mosaic
    assert len(sweep.layout.annotations) == (len(clip_views.SWEEP_THETAS)
                                             + len(clip_views.SWEEP_PITCHES))


def test_export_view_writes_png_html_and_csv(long_clip):
    key, praat, *_ = clip_views.cb_extract_f0(str(long_clip), *PRAAT)
    settings = ReportSettings(clip_key=key, praat=praat)  # the other controls as they open
    files = report.export_view("pitch", settings)
    by_suffix = {os.path.splitext(f)[1]: f for f in files}
    assert set(by_suffix) == {".png", ".html", ".csv"}
    with open(by_suffix[".png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "plotly" in open(by_suffix[".html"], encoding="utf-8").read(200000).lower()
    with pytest.raises(gr.Error, match="Nothing to export"):
        report.export_view("model", settings)


def test_page_run_sends_the_thumbnail_grid_in_the_same_answer():
    """The page's Model run answers with the thumbnail grid too (no second event after it),
    the grid of the run it answers with."""
    from workbench.ui import model_views as V

    clip = next(p for p in A.example_clips().values() if p)
    key, praat, *_ = clip_views.cb_extract_f0(clip, *PRAAT)
    checkpoint = C.default_checkpoint()
    args = [key, praat, checkpoint, "from config", "from config", "from config", "",
            V.ENCODER, "scores", V.HEAD_SCORES_SHOWN[0]]
    out = V.cb_analyze_page(*args, None)
    assert len(out) == len(V.PAGE_RUN_OUTPUT_NAMES)
    named = dict(zip(V.PAGE_RUN_OUTPUT_NAMES, out))
    expected = V.grid_figure(V.session_result(named["model_key"]), V.ENCODER, "scores",
                             V.FIRST_LAYER[V.ENCODER], 0)
    assert named["grid_plot"].to_json() == expected.to_json()
    assert named["att_plot"] != gr.skip()


# ----------------------------------------------------------------------------- the launched app

@pytest.fixture(scope="module")
def results_root(tmp_path_factory):
    """A results root with one real batch folder: one bundled clip x one shipped checkpoint."""
    import shutil
    from pathlib import Path

    from workbench import batch

    repo = Path(__file__).resolve().parents[1]
    tmp = tmp_path_factory.mktemp("batch")
    (tmp / "clips").mkdir()
    shutil.copy(repo / "assets" / "clips" / "digits_en_caleb_three-eight.wav", tmp / "clips")
    (tmp / "clips" / "broken.wav").write_bytes(b"RIFF not audio")
    batch.run(tmp / "clips", [repo / "assets" / "checkpoints" / "static_theta"],
              tmp / "results" / "digits", workers=1, progress=False, report=False)
    return tmp / "results"


def test_batch_results_tab_shows_tables_and_figures(results_root, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("ECHO_RESULTS_DIR", str(results_root))
    choice, note = batch_view.cb_batch_list(None)
    assert choice["choices"] == ["digits"] and choice["value"] == "digits"
    assert note["visible"] is False
    info, summary, heads, errors, *plots = batch_view.cb_batch_results("digits")
    assert "1 clip(s) × 1 checkpoint(s), 1 failed" in info
    on_disk = pd.read_parquet(results_root / "digits" / "summary.parquet")
    assert list(summary["block"]) == list(on_disk["block"]) and len(summary) > 0
    assert list(errors["clip"]) == ["broken.wav"]
    assert set(heads["checkpoint"]) == {"static_theta"} and "pitch_spearman_mean" in heads
    assert len(plots) == batch_view.BATCH_PLOTS
    # one checkpoint: ratio distributions, head scores over clips, ratio vs F0 (no A-against-B)
    shown = [p["value"] for p in plots if p["visible"]]
    assert len(shown) == 3
    assert {t.name for t in shown[0].data} == {"static_theta"}
    assert all(not p["visible"] for p in plots[3:])


@pytest.mark.parametrize("path", ["../../etc", "/etc", "../clips", "digits/../../clips",
                                  "digits/parts"])
def test_batch_results_refuses_paths_outside_the_list(results_root, monkeypatch, path):
    monkeypatch.setenv("ECHO_RESULTS_DIR", str(results_root))
    with pytest.raises(gr.Error, match="not a results folder"):
        batch_view.cb_batch_results(path)


def test_batch_results_empty_state_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ECHO_RESULTS_DIR", str(tmp_path / "none_yet"))
    choice, note = batch_view.cb_batch_list("digits")
    assert choice["choices"] == [] and choice["value"] is None
    assert note["visible"] and batch_view.BATCH_COMMAND in note["value"]
    assert "python -m workbench.batch CLIPS_DIR" in batch_view.BATCH_COMMAND


@pytest.fixture(scope="module")
def client(checkpoints):
    from gradio_client import Client

    demo = ui.build_demo()
    port = free_port()
    demo.launch(**ui.launch_kwargs(server_port=port, prevent_thread_lock=True, quiet=True))
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def test_named_endpoints_exist(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/extract_f0", "/similarity_map", "/analyze_model", "/compare_models",
            "/batch_results"} <= names


def test_api_extract_and_similarity(client, long_clip):
    from gradio_client import handle_file

    info, fig, stats, csv = client.predict(handle_file(str(long_clip)), *PRAAT, api_name="/extract_f0")
    assert "glide30.wav" in info and fig["type"] == "plotly"
    assert open(path_of(csv)).readline().strip() == "time_s,f0_hz"
    track = A.f0_track(A.clip_from_path(long_clip))
    rows = dict((r[0], r[1]) for r in stats["data"])
    assert float(rows["median"]) == pytest.approx(np.nanmedian(track.hz), abs=0.05)
    for log_theta in (3.0, 3.5, 4.5, 5.0):
        text, sim, variants, curves, band = client.predict(log_theta, 64, "positions", 0.0,
                                                           api_name="/similarity_map")
        assert f"{10 ** log_theta:,.0f}" in text and '"zmin":-1' in variants["plot"].replace(" ", "")
        assert '"type":"image"' in sim["plot"].replace(" ", "") and band["type"] == "plotly"


def test_api_errors_are_messages(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    with pytest.raises(AppError, match="could not be decoded as audio"):
        client.predict(handle_file(str(not_audio)), *PRAAT, api_name="/extract_f0")


def test_api_model_and_compare(client, checkpoints):
    from gradio_client import handle_file

    clip = next(p for p in A.example_clips().values() if p)
    client.predict(handle_file(clip), *PRAAT, api_name="/extract_f0")
    out = client.predict(checkpoints[0], "from config", "from config", "from config", "",
                         "encoder self-attention", "scores", "pitch_spearman",
                         api_name="/analyze_model")
    warning, transcript, info, acts, grads, gates, gate_plot, report = out[:8]
    assert "GATE vs MLP" in report and "COMPONENT STATISTICS" in report
    assert [r[0] for r in grads["data"]][:2] == ["GATE", "MLP"]
    assert gate_plot["type"] == "plotly" and "teacher-forced" in info
    score_plot, scores = out[-2:]
    assert score_plot["type"] == "plotly" and '"zmin":-1' in score_plot["plot"].replace(" ", "")
    rows = [dict(zip(scores["headers"], r)) for r in scores["data"]]
    model = C.load_model(checkpoints[0])
    d = model.dims
    expected = {hs.ENCODER_SELF: d.aud_idx * d.aud_head, hs.DECODER_SELF: d.text_idx * d.text_head,
                hs.DECODER_CROSS: d.text_idx * d.text_head}
    assert {k: sum(r["kind"] == k for r in rows) for k in expected} == expected
    encoder = [float(r["pitch_spearman"]) for r in rows if r["kind"] == hs.ENCODER_SELF]
    assert all(-1.0 <= v <= 1.0 for v in encoder)  # "—" (NaN) would not parse
    assert all(r["pitch_spearman"] == "—" for r in rows if r["kind"] == hs.DECODER_SELF)
    out = client.predict(checkpoints[0], checkpoints[1], "decoder cross-attention", "weights",
                         "pitch_partial_spearman", api_name="/compare_models")
    trans_a, trans_b, bars, layer, head, attention, diff, scalars, hs_a, hs_b, hs_diff = out
    assert trans_a.startswith("**A") and trans_b.startswith("**B")
    assert '"barmode":"group"' in bars["plot"].replace(" ", "")
    assert diff["headers"][:2] == ["kind", "name"] and len(scalars["data"]) > 0
    assert hs_a["type"] == hs_b["type"] == "plotly"
    assert hs_diff["headers"] == ["kind", "layer", "head", "A", "B", "B − A"]
    for kind, layer_, head_, a, b, delta in hs_diff["data"]:  # B − A recomputed from the cells
        if kind == hs.ENCODER_SELF:
            assert float(delta) == pytest.approx(float(b) - float(a), abs=2e-4)


def test_api_report_bundle(client):
    settings = ReportSettings(score="pitch_spearman", cmp_score="pitch_partial_spearman")
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert len(endpoint["/report"]["parameters"]) == len(settings.api_args())
    files = client.predict(*settings.api_args(), api_name="/report")
    with zipfile.ZipFile(path_of(files)) as zf:
        names = zf.namelist()
        scores = next(n for n in names if n.endswith("tables/head_scores.csv"))
        header = zf.read(scores).decode().splitlines()[0].split(",")
        rotary = zf.read(next(n for n in names if n.endswith("rotary_settings.txt"))).decode()
    assert {"kind", "layer", "head", "pitch_spearman", "note"} <= set(header)
    assert any(n.endswith("head_scores_difference.csv") for n in names)
    assert any(n.endswith("figures/head_scores.png") for n in names)
    assert any(n.endswith("settings.json") for n in names)
    assert any(n.endswith("figures/pitch.png") for n in names)
    assert any(n.endswith("figures/similarity.html") for n in names)
    assert any(n.endswith("tables/f0_track.csv") for n in names)
    assert any(n.endswith("model_report.txt") for n in names)
    assert "θ" in rotary and "**" not in rotary and "`" not in rotary  # plain text, not markdown


def test_api_batch_results_refuses_server_paths(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not a results folder|not in the list of choices"):
        client.predict("/etc", api_name="/batch_results")


def test_api_intervene_beside_the_true_f0(client):
    """/intervene: a static model says plainly that F0 does not reach it and nothing moves; an
    F0 model's theta follows a constant contour; the head table carries its null."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    clip = next(p for p in A.example_clips().values() if p)
    client.predict(handle_file(clip), *PRAAT, api_name="/extract_f0")
    out = client.predict("shipped/static_theta", "constant", 100, None, "",
                         api_name="/intervene")
    route, summary, tokens, theta, layer, head, attention, heads, note = out
    assert "does not reach" in route
    rows = [dict(zip(summary["headers"], r)) for r in summary["data"]]
    assert [r["condition"] for r in rows] == ["true F0", "constant:100"]
    assert float(rows[1]["Δ NLL"]) == 0.0 and rows[0]["transcript"] == rows[1]["transcript"]
    assert tokens["type"] == "plotly" and attention["type"] == "plotly"
    assert "follows_pitch" in heads["headers"]
    out = client.predict("shipped/mean_f0_theta", "constant", 300, None, "",
                         api_name="/intervene")
    theta = out[3]
    rows = [dict(zip(theta["headers"], r)) for r in theta["data"]]
    enc = [r for r in rows if r["kind"] == "encoder self-attention"]
    assert all(float(r["θ in force (condition)"]) > float(r["θ in force (true F0)"]) for r in enc)
    with pytest.raises(AppError, match="Pick the clip whose F0 to borrow"):
        client.predict("shipped/mean_f0_theta", "other", None, None, "", api_name="/intervene")
    with pytest.raises(AppError, match="20-2000 Hz"):
        client.predict("shipped/mean_f0_theta", "constant", 5, None, "", api_name="/intervene")


def test_clip_summary_and_rotary_view_quote_one_mean_f0():
    """One definition shown everywhere: the summary's mean F0 and voicing are on the mel-frame
    grid, the grid theta uses, so the Rotary view quotes the same number; the Praat track's
    own frame count is named beside the mel frames'."""
    import re

    clip_path = A.example_clips()["digits_en-us_m5_four-two-seven"]
    key, praat, info, *_ = clip_views.cb_extract_f0(clip_path, *PRAAT)
    text = clip_views.cb_rotary(key, praat, 4.0, 64, "positions", 0.0)[0]
    summary_mean = re.search(r"mean F0 \*\*([\d.]+) Hz", info).group(1)
    rotary_mean = re.search(r"clip mean F0 \*\*([\d.]+) Hz", text).group(1)
    assert summary_mean == rotary_mean
    clip = A.get_clip(key)
    assert f"{clip.n_frames} frames of 8 ms (mel frames; the Praat track has " \
           f"{len(A.f0_track(clip).hz)})" in info


def test_ablation_settings_apply_in_model_and_compare_and_drop_the_test_wer(client):
    """The run settings are visible controls, not upload options: an ablated shipped model says
    it is ablated and does not quote the trained model's test WER; Compare applies them too."""
    from gradio_client import handle_file

    clip = next(p for p in A.example_clips().values() if p)
    client.predict(handle_file(clip), *PRAAT, api_name="/extract_f0")
    args = ("", "encoder self-attention", "scores", "pitch_spearman")
    plain = client.predict("shipped/mean_f0_theta", "from config", "from config", "from config",
                           *args, api_name="/analyze_model")
    ablated = client.predict("shipped/mean_f0_theta", "from config", "off", "from config",
                             *args, api_name="/analyze_model")
    assert "test WER" in plain[2] and "ablated" not in plain[2]
    assert "**ablated run** (f0_rotary=False)" in ablated[2] and "does not apply" in ablated[2]
    out = client.predict("shipped/mean_f0_theta", "shipped/f0_theta_bias",
                         "encoder self-attention", "scores", "pitch_partial_spearman",
                         "from config", "off", "from config", api_name="/compare_models")
    assert "ablated: f0_rotary=False" in out[0] and "ablated: f0_rotary=False" in out[1]


def test_page_preloads_gradios_plotly_chunk(client):
    """The head's modulepreload names plotly's chunk of the installed Gradio, and the app
    serves it (a stale name would preload nothing and cost a 404)."""
    import re
    import urllib.request

    head = ui.launch_kwargs()["head"]
    href = re.search(r'<link rel="modulepreload" href="(assets/PlotlyPlot-[^"]+\.js)">', head)
    assert href, head[:200]
    with urllib.request.urlopen(client.src.rstrip("/") + "/" + href.group(1)) as answer:
        assert answer.status == 200 and b"plotly" in answer.read().lower()
