"""The clip views: Audio & Pitch, Rotary patterns and Pitch bias. Each has its view builder (plain
figures and tables, also used by the exports), its callbacks, and its tab; the clip header
(player, example clips, summary) loads the session's clip for all of them. Callbacks stay thin
(validate, analyse, draw) and sessions keep only small keys.
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pandas as pd

from echo_core.audio import FRAME_SECONDS
from workbench import analysis as A
from workbench import export as X
from workbench import figures as F
from workbench.cache import LRU
from workbench.ui.common import (AFTER_LIVE_PAINT, LIVE, PRIVATE, QUIET, _export_button, _plot,
                                 _settings, api_endpoint, guarded, message_box, on_page,
                                 say_clamped, session_clip, tab_selected)

HEAD_DIMS = [16, 32, 64, 128]
AXIS_UNITS = ["positions", "seconds"]
VARIANT_SIZE = 320  # the three variant maps are drawn smaller than the main pair
CURVE_MAX_LAG = 500  # 4 s of frames
SWEEP_THETAS = (1e2, 1e3, 1e4, 1e5, 1e6)
SWEEP_PITCHES = (None, 75.0, 150.0, 300.0, 600.0)
SWEEP_POSITIONS = 96
PRAAT = A.pitch.PraatSettings()  # defaults of the settings panel
PRAAT_SLIDERS = (  # rows of the settings panel: (field, minimum, maximum, step, label)
    (("pitch_floor", 30, 300, 1, "Pitch floor (Hz)"),
     ("pitch_ceiling", 200, 1200, 10, "Pitch ceiling (Hz)"),
     ("max_candidates", 2, 30, 1, "Max candidates")),
    (("voicing_threshold", 0, 1, 0.01, "Voicing threshold"),
     ("silence_threshold", 0, 1, 0.01, "Silence threshold")),
    (("octave_cost", 0, 1, 0.01, "Octave cost"),
     ("octave_jump_cost", 0, 2, 0.01, "Octave-jump cost"),
     ("voiced_unvoiced_cost", 0, 2, 0.01, "Voiced/unvoiced cost")))
PRAAT_FIELDS = ("pitch_floor", "pitch_ceiling", "voicing_threshold", "silence_threshold",
                "octave_cost", "octave_jump_cost", "voiced_unvoiced_cost", "max_candidates")
LOG10_THETA, HEAD_DIM, BIAS_SCALE = 4, 64, 1.0  # the sliders' opening values


# ============================================================================= view builders
# Plain functions (no events): the callbacks and the exports both use them.

def praat_dict(method, floor, ceiling, voicing, silence, octave, jump, vuv, candidates,
               accurate) -> dict:
    return dict(method=method, pitch_floor=float(floor), pitch_ceiling=float(ceiling),
                voicing_threshold=float(voicing), silence_threshold=float(silence),
                octave_cost=float(octave), octave_jump_cost=float(jump),
                voiced_unvoiced_cost=float(vuv), max_candidates=int(candidates),
                very_accurate=bool(accurate))


F0_AXIS_CHOICES = [("on the spectrogram (mel scale)", "mel"), ("own Hz axis (linear)", "hz")]
NAV_RANGE = "nav-range"  # hidden textbox: a drag-select on the spectrogram sends its range here
STATS_LABEL = ("F0 statistics of the Praat track, whole clip (its own 8 ms frames; voiced "
               "frames only)")


def stats_label(time_range: tuple[float, float] | None) -> str:
    """The statistics table's title: it says which stretch of the clip the numbers describe."""
    if time_range is None:
        return STATS_LABEL
    return (f"F0 statistics of the Praat track, {time_range[0]:.2f}–{time_range[1]:.2f} s only "
            "(frames centred in the range; voiced frames only)")


def pitch_view(clip: A.Clip, settings, f0_axis: str = "mel") -> tuple:
    """(figure, whole-clip statistics table, track) of the Audio & Pitch view."""
    track = A.f0_track(clip, settings)
    mel, times, band_hz = A.mel_display(clip)
    fig = F.pitch_figure(mel, times, band_hz, track.times, track.hz,
                         title=f"{clip.name}: log-mel spectrogram and Praat F0",
                         f0_axis=f0_axis or "mel", range_to=NAV_RANGE)
    return fig, A.f0_statistics_table(track), track


def range_stats(clip: A.Clip, settings, start, end) -> tuple:
    """(statistics table update with its title, the checked range or None): the whole clip when
    both ends are empty, else the range (A.TimeRangeError if it is not one)."""
    track = A.f0_track(clip, settings)
    if start is None and end is None:
        return gr.update(value=A.f0_statistics_table(track), label=stats_label(None)), None
    time_range = A.check_time_range(0.0 if start is None else start,
                                    clip.duration if end is None else end, clip.duration)
    return (gr.update(value=A.f0_statistics_table(track, time_range),
                      label=stats_label(time_range)), time_range)


def clip_markdown(clip: A.Clip, track, f0_frames: np.ndarray) -> str:
    """The clip summary. Its F0 numbers are on the mel-frame grid (``f0_frames``), the grid θ
    and the model use, so the summary and the Rotary view quote the same mean and voicing;
    the Praat track's own frame count is named beside it."""
    stats = A.pitch.f0_statistics(f0_frames)
    pitch_text = (f"mean F0 **{stats['mean']:.1f} Hz**, {stats['voiced_fraction']:.0%} of the "
                  "mel frames voiced" if np.isfinite(stats["mean"]) else "no voiced frame found")
    return (f"**{clip.name}**: {clip.duration:.2f} s, {clip.n_frames} frames of 8 ms (mel "
            f"frames; the Praat track has {len(track.hz)}); {pitch_text}.")


GRIDS = [("mel frames (8 ms)", "frames"), ("model positions (16 ms, spec_stride 2)", "model")]
BAND_THETAS = np.logspace(2, 6, 41)  # the band-width figure's θ axis (the slider's range)


def rotary_grid(clip, settings, grid: str = "frames"):
    """(F0 on the grid's positions (Hz, NaN unvoiced), seconds per position, grid label): the
    mel frames, or the positions the shipped models' encoder sees (spec_stride 2: every other
    frame, F0 mapped by time as the model maps it)."""
    f0 = A.frame_f0(clip, settings)
    if grid == "frames":
        return f0, FRAME_SECONDS, "8 ms frames"
    if grid != "model":
        raise A.RotaryError(f"unknown position grid {grid!r}; accepted: frames, model")
    n = (len(f0) + 1) // 2  # a stride-2 convolution over T frames gives ceil(T / 2) positions
    return A.rotary.f0_at_positions(f0, n), 2 * FRAME_SECONDS, "16 ms model positions"


def _theta_text(theta, log10_theta, head_dim, f0, n_shown, grid_label) -> str:
    voiced = A.rotary.voiced_mask(f0)
    mean_f0 = float(f0[voiced].mean()) if voiced.any() else float("nan")
    return (f"**θ = {theta:,.0f}** (log₁₀ θ = {float(log10_theta):.2f}) · head dim {head_dim} · "
            + (f"clip mean F0 **{mean_f0:.1f} Hz** → θ_eff = **{A.clip_theta(f0, theta):,.0f}**"
               if np.isfinite(mean_f0) else "no voiced frame: θ_eff = θ")
            + f" · {len(f0)} {grid_label} shown at {n_shown}×{n_shown}")


def similarity_figure(f0, hop, theta, head_dim, unit):
    """Static and clip-θ_eff maps on a fitted scale (0 stays white) and their difference."""
    n = len(f0)
    pos, static = A.similarity_display(n, head_dim, theta, None, "static")
    _, modulated = A.similarity_display(n, head_dim, theta, f0, "mean_f0")
    theta_clip = A.clip_theta(f0, theta)
    fig = F.similarity_maps(
        [(f"static θ = {theta:,.0f}", static), (f"clip θ_eff = {theta_clip:,.0f}", modulated)],
        pos, unit, hop, title=f"Position similarity, head dim {head_dim}", fit=True,
        difference=("clip − static", modulated - static))
    return fig, len(pos)


def variants_figure(f0, hop, theta, head_dim, unit, tilt):
    n = len(f0)
    vpos, per_frame = A.similarity_display(n, head_dim, theta, f0, "per_frame", VARIANT_SIZE)
    _, radius = A.similarity_display(n, head_dim, theta, f0, "mean_f0", VARIANT_SIZE,
                                     radius=A.pair_radius(head_dim, tilt))
    _, dot = A.dot_product_display(n, head_dim, theta, f0, VARIANT_SIZE)
    return F.similarity_maps(
        [("per-frame θ (F0 each frame)", per_frame), (f"pair radius, tilt {tilt:+.1f}", radius),
         ("F0 radius: dot product ρᵢρⱼ·sim", dot)], vpos, unit, hop,
        title="Variants beyond the reference")


def curve_settings(f0, theta) -> list:
    voiced = A.rotary.voiced_mask(f0)
    mean_f0 = float(f0[voiced].mean()) if voiced.any() else float("nan")
    return [(f"static θ={theta:,.0f}", theta, None),
            (f"clip mean F0 {mean_f0:.0f} Hz → θ_eff={A.clip_theta(f0, theta):,.0f}", theta, f0),
            ("F0 100 Hz", theta, 100.0), ("F0 300 Hz", theta, 300.0),
            ("reference inv_freq (base 19000, no F0)", 19000.0, None)]


def band_figure(f0, hop, theta, head_dim, unit):
    voiced = A.rotary.voiced_mask(f0)
    pitches = [("static (no F0)", None)]
    if voiced.any():
        pitches.append((f"clip mean F0 {float(f0[voiced].mean()):.0f} Hz", f0))
    pitches += [("F0 100 Hz", 100.0), ("F0 300 Hz", 300.0)]
    widths = A.band_widths(BAND_THETAS, pitches, head_dim)
    return F.band_width_figure(BAND_THETAS, widths, theta, unit, hop, A.BAND_LEVEL)


def rotary_view(clip, settings, log10_theta, head_dim, unit, tilt, grid="frames"
                ) -> tuple[str, dict, dict]:
    """(summary markdown, figures, tables) of the Rotary patterns view."""
    theta, head_dim = A.theta_from_slider(log10_theta), int(head_dim)
    f0, hop, grid_label = rotary_grid(clip, settings, grid)
    figs = {}
    figs["similarity"], shown = similarity_figure(f0, hop, theta, head_dim, unit)
    figs["variants"] = variants_figure(f0, hop, theta, head_dim, unit, tilt)
    n = len(f0)
    curves = A.distance_curves(curve_settings(f0, theta), max(min(n - 1, CURVE_MAX_LAG), 1),
                               head_dim)
    figs["distance"] = F.similarity_curves(curves, unit, hop,
                                           title="Similarity vs distance (one row of each map)")
    figs["band_width"] = band_figure(f0, hop, theta, head_dim, unit)
    tables = {"similarity_vs_distance": pd.DataFrame(
        {"lag_positions": curves[0][1], "lag_s": curves[0][1] * hop,
         **{label: sim for label, _, sim in curves}})}
    return _theta_text(theta, log10_theta, head_dim, f0, shown, grid_label), figs, tables


def sweep_view(head_dim) -> dict:
    maps = A.sweep_maps(SWEEP_THETAS, SWEEP_PITCHES, SWEEP_POSITIONS, int(head_dim))
    cols = ["no F0 (static)"] + [f"mean F0 {p:g} Hz" for p in SWEEP_PITCHES[1:]]
    rows = [f"θ = {t:,.0f}" for t in SWEEP_THETAS]
    title = (f"Theta × pitch sweep ({SWEEP_POSITIONS} positions, head dim {int(head_dim)}): "
             "narrow bands = fast rotation")
    return {"sweep": F.sweep_grid(maps, rows, cols, title=title)}


def bias_view(clip, settings, scale, log10_theta, head_dim, unit) -> dict:
    theta = A.theta_from_slider(log10_theta)
    f0, n = A.frame_f0(clip, settings), clip.n_frames
    pos, sim = A.similarity_display(n, int(head_dim), theta, f0, "mean_f0")
    bias = A.bias_display(f0, float(scale), pos)
    return {
        "pitch_bias": F.bias_figure(
            bias, pos, f0[pos], unit, FRAME_SECONDS,
            title=f"Pitch bias exp(−|zᵢ−zⱼ|·{float(scale):g}): unvoiced rows and columns get 0 "
                  "(no boost)"),
        "combined_prior": F.bias_figure(
            A.combined_prior(sim, bias), pos, f0[pos], unit, FRAME_SECONDS,
            title=f"Combined prior: rotary similarity (θ_eff = {A.clip_theta(f0, theta):,.0f}) "
                  "+ pitch bias", colorbar_title="sim + bias", zrange=(-2.0, 2.0),
            colorscale=F.SIMILARITY_COLORSCALE),
    }


# ============================================================================= callbacks

@guarded
def cb_extract_f0(audio_path, method, floor, ceiling, voicing, silence, octave, jump, vuv,
                  candidates, accurate, progress=gr.Progress()):
    """Load the clip, track F0 with Praat, draw the pitch view (api: extract_f0).

    No audio (the player was cleared) changes nothing: the last clip stays analysed.
    """
    if not audio_path:
        return [gr.skip()] * 6
    fields = praat_dict(method, floor, ceiling, voicing, silence, octave, jump, vuv, candidates,
                        accurate)
    settings = A.praat_settings(**fields)
    progress(0.1, desc="decoding audio")
    clip = A.clip_from_path(audio_path, name=os.path.basename(str(audio_path)))
    progress(0.4, desc="tracking F0 (Praat)")
    fig, stats, track = pitch_view(clip, settings)
    csv = X.write_text(A.f0_csv(track), f"{os.path.splitext(clip.name)[0]}_f0.csv", "f0")
    return clip.key, fields, clip_markdown(clip, track, A.frame_f0(clip, settings)), fig, stats, csv


@guarded
def cb_load_example(name):
    """Put an example clip into the audio player (its change event runs the analysis)."""
    if not name:
        return gr.skip()
    if name == A.SYNTHETIC_NAME:
        clip = A.synthetic_clip()
        return clip.sr, clip.samples
    return A.example_clips()[name]


@guarded
def cb_pitch(key, praat, f0_axis="mel", time_range=None):
    """Redraw the pitch view (tab shown), keeping the statistics' time range."""
    if not key:
        return gr.skip(), gr.skip()
    clip, settings = session_clip(key), _settings(praat)
    fig, _, _ = pitch_view(clip, settings, f0_axis)
    return fig, range_stats(clip, settings, *(time_range or (None, None)))[0]


@guarded
def cb_pitch_figure(key, praat, f0_axis):
    """The F0 axis changed: only the figure is redrawn."""
    if not key:
        return gr.skip()
    return pitch_view(session_clip(key), _settings(praat), f0_axis)[0]


@guarded
def cb_after_clip(key, praat, f0_axis):
    """A new clip or F0 track: the statistics cover the whole clip again (the range inputs are
    cleared), and the figure is redrawn if F0 is on its own axis (cb_extract_f0 draws the
    default)."""
    if not key:
        return [gr.skip()] * 5
    fig = (pitch_view(session_clip(key), _settings(praat), f0_axis)[0] if f0_axis != "mel"
           else gr.skip())
    # cb_extract_f0 has just sent the whole clip's statistics: only the title goes back
    return fig, None, None, gr.update(label=stats_label(None)), None


@guarded
def cb_range_stats(key, praat, start, end):
    """F0 statistics of the typed range and the range (api: f0_range_statistics); both ends
    empty: the whole clip."""
    if not key:
        return gr.skip(), gr.skip()
    return range_stats(session_clip(key), _settings(praat), start, end)


@guarded
def cb_whole_clip(key, praat):
    if not key:
        return [gr.skip()] * 4
    return None, None, *range_stats(session_clip(key), _settings(praat), None, None)


@guarded
def cb_nav_range(key, praat, payload):
    """A drag-select on the spectrogram (JSON {"range": [t0, t1]} from playhead.js): fill the
    range inputs with it and show its statistics."""
    if not key or not payload:
        return [gr.skip()] * 4
    try:
        start, end = json.loads(payload)["range"]
    except (ValueError, KeyError, TypeError) as e:
        raise A.TimeRangeError(f"not a time range from the page: {payload!r}") from e
    stats, (start, end) = range_stats(session_clip(key), _settings(praat), start, end)
    return round(start, 3), round(end, 3), stats, (start, end)


# One slider step's figures, shared by the page's live route (live_route.py) and Gradio's own
# event for the same values (they often arrive together: computed once). Bounded by bytes.
STEP_FIGURES = LRU(maxsize=12, max_bytes=48 * 2**20)
# Steps the live route served, with the time they were asked for: the page painted them itself.
PAGE_PAINTED = LRU(maxsize=256)
PAINTED_FRESH_S = 30.0  # how long a served step counts as painted


def _live(figs, key, praat, **controls):
    """Stamp each figure with what the page's live_views.js needs to ask for the next slider
    step itself: the session's clip key, Praat settings and the controls not on a live slider
    (a content key and numbers; never a server path)."""
    for fig in figs:
        meta = dict(fig.layout.meta or {})
        meta["echo_live"] = {"key": key, "praat": praat or {}, **controls}
        fig.layout.meta = meta
    return figs


def _step_key(view: str, key, praat, *args) -> tuple:
    return (view, key, json.dumps(praat or {}, sort_keys=True), *args)


def _step(view: str, key, praat, *args, build, live: bool = False):
    """``build()`` once per (view, clip, Praat settings, controls); ``live``: asked by the
    page's live route, which paints the answer itself."""
    if view != "sweep":
        session_clip(key)  # the clip must be loaded (its own clear message otherwise)
    step = _step_key(view, key, praat, *args)
    if not live:
        return STEP_FIGURES.get_or_compute(step, build)
    PAGE_PAINTED.put(step, time.monotonic())
    try:
        return STEP_FIGURES.get_or_compute(step, build)
    except Exception:
        PAGE_PAINTED.put(step, float("-inf"))  # not painted after all
        raise


def _unless_painted(view: str, key, praat, args: tuple, out):
    """Gradio's slider-release event: when the live route already served these values, the page
    shows them; sending the same figures again costs the page ~0.5 s of main thread (Gradio's
    event and Plot re-layouts) for no change, so nothing is sent."""
    served = PAGE_PAINTED.get(_step_key(view, key, praat, *args))
    if served is not None and time.monotonic() - served < PAINTED_FRESH_S:
        return tuple(gr.skip() for _ in out) if isinstance(out, tuple) else gr.skip()
    return out


def _rotary_args(log10_theta, head_dim, unit, tilt, grid) -> tuple:
    return float(log10_theta), int(head_dim), str(unit), float(tilt), str(grid)


def _bias_args(scale, log10_theta, head_dim, unit) -> tuple:
    return float(scale), float(log10_theta), int(head_dim), str(unit)


@guarded
def cb_rotary(key, praat, log10_theta, head_dim, unit, tilt, grid="frames", live=False):
    """Similarity maps, variants, curves and band widths for one theta and head dim (api:
    similarity_map)."""
    args = _rotary_args(log10_theta, head_dim, unit, tilt, grid)

    def build():
        text, figs, _ = rotary_view(session_clip(key), _settings(praat), *args)
        out = [figs["similarity"], figs["variants"], figs["distance"], figs["band_width"]]
        return (text, *_live(out, key, praat, unit=args[2], grid=args[4]))

    return _step("rotary", key, praat, *args, build=build, live=live)


@guarded
def cb_variants(key, praat, log10_theta, head_dim, unit, tilt, grid="frames", live=False):
    """The radius tilt changes only the variant maps: redraw (and send) just those."""
    args = _rotary_args(log10_theta, head_dim, unit, tilt, grid)

    def build():
        f0, hop, _ = rotary_grid(session_clip(key), _settings(praat), args[4])
        fig = variants_figure(f0, hop, A.theta_from_slider(args[0]), *args[1:4])
        return _live([fig], key, praat, unit=args[2], grid=args[4])[0]

    return _step("variants", key, praat, *args, build=build, live=live)


@guarded
def cb_sweep(head_dim, live=False):
    return _step("sweep", None, None, int(head_dim), live=live,
                 build=lambda: sweep_view(head_dim)["sweep"])


@guarded
def cb_bias(key, praat, scale, log10_theta, head_dim, unit, live=False):
    args = _bias_args(scale, log10_theta, head_dim, unit)

    def build():
        figs = bias_view(session_clip(key), _settings(praat), *args)
        return tuple(_live([figs["pitch_bias"], figs["combined_prior"]], key, praat,
                           unit=args[3]))

    return _step("bias", key, praat, *args, build=build, live=live)


# The page's own slider events: as above, minus what the live route already painted.

@guarded
def cb_rotary_released(key, praat, log10_theta, head_dim, unit, tilt, grid="frames"):
    out = cb_rotary(key, praat, log10_theta, head_dim, unit, tilt, grid)
    return _unless_painted("rotary", key, praat,
                           _rotary_args(log10_theta, head_dim, unit, tilt, grid), out)


@guarded
def cb_variants_released(key, praat, log10_theta, head_dim, unit, tilt, grid="frames"):
    out = cb_variants(key, praat, log10_theta, head_dim, unit, tilt, grid)
    return _unless_painted("variants", key, praat,
                           _rotary_args(log10_theta, head_dim, unit, tilt, grid), out)


@guarded
def cb_sweep_released(head_dim):
    return _unless_painted("sweep", None, None, (int(head_dim),), cb_sweep(head_dim))


@guarded
def cb_bias_released(key, praat, scale, log10_theta, head_dim, unit):
    out = cb_bias(key, praat, scale, log10_theta, head_dim, unit)
    return _unless_painted("bias", key, praat, _bias_args(scale, log10_theta, head_dim, unit),
                           out)


@guarded
def cb_refresh_active(tab, key, praat, log10_theta, head_dim, unit, tilt, grid, scale):
    """After a new clip redraw the visible tab only (hidden plots are drawn on Tab.select)."""
    rotary, bias = [gr.skip()] * 5, [gr.skip()] * 2
    if key and tab == "rotary":
        rotary = list(cb_rotary(key, praat, log10_theta, head_dim, unit, tilt, grid))
    if key and tab == "bias":
        bias = list(cb_bias(key, praat, scale, log10_theta, head_dim, unit))
    return rotary + bias


# ============================================================================= layout + wiring

def build_clip_header() -> SimpleNamespace:
    """The player, the example clips and the clip summary above the tabs. No audio work here:
    the opening clip is analysed on page load."""
    examples = A.example_clips()
    first = next(iter(examples))
    if examples[first]:
        first_value = examples[first]
    else:  # no bundled clip: open with the synthetic glide
        clip = A.synthetic_clip()
        first_value = (clip.sr, clip.samples)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            audio = gr.Audio(value=first_value, type="filepath",
                             label="Clip (upload or record; ≤ 10 min)",
                             sources=["upload", "microphone"], elem_id="audio")
        with gr.Column(scale=2):
            example = gr.Radio(list(examples), value=first, label="Example clips",
                               elem_id="examples")
            clip_info = gr.Markdown("Loading the example clip…", label="Clip summary",
                                    elem_id="clip-info")
            clip_note = message_box("clip-message")
    return SimpleNamespace(audio=audio, example=example, clip_info=clip_info, clip_note=clip_note)


def build_pitch_tab() -> SimpleNamespace:
    """The Audio & Pitch tab: spectrogram with F0, statistics, CSV and the Praat settings."""
    with gr.Tab("Audio & Pitch", id="pitch", elem_id="tab-pitch") as tab:
        with gr.Row(equal_height=True):
            f0_axis = gr.Radio(F0_AXIS_CHOICES, value="mel", label="F0 axis", scale=2,
                               elem_id="f0-axis")
            gr.Markdown("Click the spectrogram to move the player there; drag across it to "
                        "select a time range for the statistics (zoom: the mode bar). While "
                        "the clip plays, a green line follows it here and on the maps whose "
                        "axes are time or position.", elem_classes="note")
        pitch_plot = _plot("Spectrogram and F0", "pitch-plot")
        nav_range = gr.Textbox(visible="hidden", elem_id=NAV_RANGE, label="selected range")
        time_range = gr.State(None)  # (start, end) s of the statistics, None: the whole clip
        with gr.Row():
            stats = gr.Dataframe(label=STATS_LABEL, interactive=False, elem_id="f0-stats",
                                 scale=2)
            with gr.Column(scale=1):
                with gr.Row():
                    range_from = gr.Number(label="from (s)", elem_id="range-from", minimum=0)
                    range_to = gr.Number(label="to (s)", elem_id="range-to", minimum=0)
                with gr.Row():
                    range_apply = gr.Button("Statistics of this range", size="sm",
                                            elem_id="range-apply")
                    range_reset = gr.Button("Whole clip", size="sm", elem_id="range-reset")
                f0_csv = gr.DownloadButton("Download F0 (CSV)", elem_id="f0-csv")
                gr.Markdown("Unvoiced frames are empty fields in the CSV and gaps in the "
                            "plot. F0 is tracked every 8 ms, on the mel frames' grid.",
                            elem_classes="note")
        with gr.Accordion("Praat pitch settings", open=False, elem_id="praat"):
            with gr.Row():
                method = gr.Radio(["ac", "cc", "shs"], value=PRAAT.method, label="Method",
                                  info="autocorrelation, cross-correlation, subharmonic "
                                       "summation")
                accurate = gr.Checkbox(value=PRAAT.very_accurate, label="Very accurate")
            sliders = {}
            for row in PRAAT_SLIDERS:
                with gr.Row():
                    for field, low, high, step, label in row:
                        sliders[field] = gr.Slider(low, high, getattr(PRAAT, field), step=step,
                                                   label=label)
            praat_note = message_box("praat-message")
            retrack = gr.Button("Re-track F0 with these settings", variant="primary")
        export = _export_button()
    # in praat_dict's order: the inputs of cb_extract_f0 after the audio
    praat = [method] + [sliders[f] for f in PRAAT_FIELDS] + [accurate]
    return SimpleNamespace(tab=tab, plot=pitch_plot, stats=stats, f0_csv=f0_csv, praat=praat,
                           sliders=list(sliders.values()), praat_note=praat_note,
                           retrack=retrack, export=export, f0_axis=f0_axis, nav_range=nav_range,
                           range_from=range_from, range_to=range_to, range_apply=range_apply,
                           range_reset=range_reset, time_range=time_range)


def build_rotary_tab() -> SimpleNamespace:
    """The Rotary patterns tab: theta and head dim, similarity maps, variants, curves, sweep."""
    with gr.Tab("Rotary patterns", id="rotary", elem_id="tab-rotary") as tab:
        with gr.Row():
            log_theta = gr.Slider(2, 6, LOG10_THETA, step=0.01, elem_id="theta", scale=3,
                                  label="log₁₀ θ (static base, 10² … 10⁶)",
                                  info="the value of θ is shown below")
            head_dim = gr.Radio(HEAD_DIMS, value=HEAD_DIM, label="Head dim", scale=2,
                                elem_id="head-dim")
            unit = gr.Radio(AXIS_UNITS, value=AXIS_UNITS[0], label="Axes", scale=1,
                            elem_id="axes")
            grid = gr.Radio(GRIDS, value="frames", label="Position grid", scale=2,
                            elem_id="grid",
                            info="the shipped models' encoder sees every other frame")
        rotary_note = message_box("rotary-message")
        theta_md = gr.Markdown(label="Theta summary", elem_id="theta-md")
        sim_plot = _plot("Position similarity", "sim-plot")
        tilt = gr.Slider(-4, 4, 0, step=0.1, label="Pair-radius tilt (variant 2): > 0 "
                         "favours slow pairs, < 0 fast ones", elem_id="tilt")
        variants_plot = _plot("Similarity variants", "variants-plot")
        with gr.Row():
            curves_plot = _plot("Similarity vs distance", "curves-plot")
            band_plot = _plot("Band width per θ", "band-plot")
        sweep_plot = _plot("Theta x pitch sweep", "sweep-plot")
        export = _export_button()
    return SimpleNamespace(tab=tab, log_theta=log_theta, head_dim=head_dim, unit=unit,
                           grid=grid, tilt=tilt, theta_md=theta_md, note=rotary_note,
                           sim_plot=sim_plot,
                           variants_plot=variants_plot, curves_plot=curves_plot,
                           band_plot=band_plot, sweep_plot=sweep_plot, export=export)


def build_bias_tab() -> SimpleNamespace:
    """The Pitch bias tab: the bias and the combined prior (θ and head dim from Rotary)."""
    with gr.Tab("Pitch bias", id="bias", elem_id="tab-bias") as tab:
        with gr.Row():
            scale = gr.Slider(0, 5, BIAS_SCALE, step=0.05, label="Bias scale (pitch_scale)",
                              scale=2, elem_id="bias-scale")
            gr.Markdown("z-scores use the voiced frames' mean and (unbiased) std. The "
                        "combined prior uses θ and head dim from the Rotary tab.",
                        elem_classes="note")
        bias_note = message_box("bias-message")
        bias_plot = _plot("Pitch bias", "bias-plot")
        prior_plot = _plot("Combined prior", "prior-plot")
        export = _export_button()
    return SimpleNamespace(tab=tab, scale=scale, note=bias_note, bias_plot=bias_plot,
                           prior_plot=prior_plot, export=export)


def wire_clip_views(demo: gr.Blocks, session: SimpleNamespace, header: SimpleNamespace,
                    p: SimpleNamespace, r: SimpleNamespace, b: SimpleNamespace) -> None:
    """Events of the header and of the Pitch (``p``), Rotary (``r``) and Bias (``b``) tabs; the
    page wires their exports. A new clip redraws the visible tab; Tab.select draws the others.
    Loading a clip forgives on the page (a bad file leaves the last clip shown, with a message
    beside it) and raises for API clients (the extract_f0 endpoint)."""
    pitch_inputs = [header.audio] + p.praat
    pitch_outputs = [session.clip_key, session.praat, header.clip_info, p.plot, p.stats,
                     p.f0_csv]
    rotary_inputs = [session.clip_key, session.praat, r.log_theta, r.head_dim, r.unit, r.tilt,
                     r.grid]
    rotary_outputs = [r.theta_md, r.sim_plot, r.variants_plot, r.curves_plot, r.band_plot]
    bias_inputs = [session.clip_key, session.praat, b.scale, r.log_theta, r.head_dim, r.unit]
    bias_outputs = [b.bias_plot, b.prior_plot]
    refresh = dict(fn=cb_refresh_active, inputs=[session.active_tab] + rotary_inputs + [b.scale],
                   outputs=rotary_outputs + bias_outputs, **QUIET)

    header.example.input(cb_load_example, header.example, header.audio, **PRIVATE)
    for own_audio in (header.audio.upload, header.audio.stop_recording):  # not an example now
        own_audio(lambda: gr.update(value=None), None, header.example, **QUIET)
    kept = "The clip analysed before stays loaded."
    after_clip = dict(fn=cb_after_clip, inputs=[session.clip_key, session.praat, p.f0_axis],
                      outputs=[p.plot, p.range_from, p.range_to, p.stats, p.time_range],
                      **QUIET)
    for new_track in (
            on_page(header.audio.change, cb_extract_f0, pitch_inputs, pitch_outputs,
                    header.clip_note, kept, trigger_mode="always_last"),
            on_page(p.retrack.click, cb_extract_f0, pitch_inputs, pitch_outputs, p.praat_note,
                    "The F0 shown is still the one tracked before."),
            on_page(demo.load, cb_extract_f0, pitch_inputs, pitch_outputs, header.clip_note)):
        new_track.success(**refresh)
        new_track.success(**after_clip)
    api_endpoint(cb_extract_f0, pitch_inputs, pitch_outputs, "extract_f0")
    say_clamped(p.sliders, p.praat_note)
    say_clamped([r.log_theta, r.tilt], r.note)
    say_clamped([b.scale], b.note)

    clip_pair = [session.clip_key, session.praat]
    range_pair = [p.range_from, p.range_to]
    tab_selected(p.tab, "pitch", session.active_tab).then(
        cb_pitch, clip_pair + [p.f0_axis, p.time_range], [p.plot, p.stats], **QUIET)
    p.f0_axis.input(cb_pitch_figure, clip_pair + [p.f0_axis], p.plot, **PRIVATE, **LIVE)
    p.range_apply.click(cb_range_stats, clip_pair + range_pair, [p.stats, p.time_range],
                        api_name="f0_range_statistics")
    for typed in (p.range_from.submit, p.range_to.submit):
        typed(cb_range_stats, clip_pair + range_pair, [p.stats, p.time_range], **PRIVATE)
    p.range_reset.click(cb_whole_clip, clip_pair, range_pair + [p.stats, p.time_range],
                        **PRIVATE)
    p.nav_range.change(cb_nav_range, clip_pair + [p.nav_range],
                      range_pair + [p.stats, p.time_range], **PRIVATE)
    tab_selected(r.tab, "rotary", session.active_tab).then(
        cb_rotary, rotary_inputs, rotary_outputs, **QUIET).then(
        cb_sweep, r.head_dim, r.sweep_plot, **QUIET)
    tab_selected(b.tab, "bias", session.active_tab).then(
        cb_bias, bias_inputs, bias_outputs, **QUIET)

    # While a slider is dragged the page paints each step itself (live_route, live_views.js);
    # Gradio's event runs once it is released (the same memoised figures: no flicker back to an
    # older step) and serves the API.
    r.log_theta.release(cb_rotary_released, rotary_inputs, rotary_outputs, **PRIVATE, **LIVE,
                        **AFTER_LIVE_PAINT)
    api_endpoint(cb_rotary, rotary_inputs, rotary_outputs, "similarity_map")
    r.tilt.release(cb_variants_released, rotary_inputs, r.variants_plot, **PRIVATE, **LIVE,
                   **AFTER_LIVE_PAINT)
    r.head_dim.input(cb_rotary_released, rotary_inputs, rotary_outputs, **PRIVATE, **LIVE,
                     **AFTER_LIVE_PAINT)
    r.head_dim.input(cb_sweep_released, r.head_dim, r.sweep_plot, **PRIVATE, **LIVE,
                     **AFTER_LIVE_PAINT)
    for control in (r.unit, r.grid):
        control.input(cb_rotary, rotary_inputs, rotary_outputs, **PRIVATE, **LIVE)
    b.scale.release(cb_bias_released, bias_inputs, bias_outputs, **PRIVATE, **LIVE,
                    **AFTER_LIVE_PAINT)
    api_endpoint(cb_bias, bias_inputs, bias_outputs, "pitch_bias")
