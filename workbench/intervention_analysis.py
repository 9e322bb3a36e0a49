"""A pitch intervention on a clip, without UI: a checkpoint run on the true F0 and on one
pitch condition, beside each other, and what the Interventions view shows.

Both runs go through ``echo_core.interventions`` (the one pipeline), with the session's Praat
settings for the true contour, and score the same reference text (the true-F0
transcript unless the user types one). The head scores of the true run come with their null
(``echo_core.head_score_null``), so a head "follows pitch" only when it beats it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from echo_core import pitch
from echo_core.attention_kinds import ENCODER_SELF
from echo_core.errors import VoicingError
from echo_core.pitch_conditions import ConditionError, parse_condition
from workbench.analysis import Clip, f0_track, frame_f0, settings_key
from workbench.cache import LRU, content_key
from workbench.checkpoints import check_overrides, load_model, model_key, resolve
from workbench.model_analysis import (attention_by_kind, check_model_length, model_session,
                                      position_seconds)

RESULTS = LRU(8, 200 * 2**20)  # intervention key -> InterventionResult
NULL_CONTOURS = 10  # k of the head-score null


@dataclass
class InterventionResult:
    """Everything the Interventions view shows for one (clip, checkpoint, condition)."""

    key: str
    label: str
    clip_name: str
    condition: str
    route: str  # where F0 goes in this model, in words
    uses_f0: bool
    reference: str  # the text both runs are scored on
    summary: pd.DataFrame  # true and condition rows (interventions.compare_conditions columns)
    tokens: list  # reference tokens and <eos>
    logprob_true: np.ndarray
    logprob_condition: np.ndarray
    theta: pd.DataFrame  # module, kind, source, theta, true / condition theta in force
    f0_true: np.ndarray  # (T,) Hz, NaN unvoiced
    f0_condition: np.ndarray
    attention: dict  # {"true": [layer maps], "condition": [...]}, encoder self-attention
    position_seconds: float
    head_scores: pd.DataFrame | None  # true run's scores with the null columns
    head_scores_error: str = ""

    def attention_difference(self, layer: int, head: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
        """(condition, true, condition - true) softmax weights of one encoder layer and head
        (pooled to display size). ConditionError when the layer or head does not exist."""
        layers = self.attention["true"]
        if not layers:
            raise ConditionError("this model kept no encoder self-attention map for the clip")
        if not 0 <= layer < len(layers) or layers[layer] is None:
            raise ConditionError(f"encoder layer must be 0..{len(layers) - 1}, got {layer}")
        true = layers[layer]["weights"]
        if not 0 <= head < true.shape[0]:
            raise ConditionError(f"head must be 0..{true.shape[0] - 1}, got {head}")
        cond = self.attention["condition"][layer]["weights"][head]
        return cond, true[head], cond - true[head]


def get_result(key: str | None) -> InterventionResult:
    result = RESULTS.get(key) if key else None
    if result is None:
        raise ConditionError("no intervention in memory (none was run, or it was evicted)")
    return result


def run_intervention(clip: Clip, settings: pitch.PraatSettings | None, checkpoint_id: str,
                     condition: str, other: Clip | None = None, reference_text: str = "",
                     overrides: dict | None = None) -> InterventionResult:
    """The checkpoint on ``clip`` under the true F0 and under ``condition`` (see
    ``echo_core.pitch_conditions``; ``other`` is the clip whose contour ``other:`` borrows)."""
    from echo_core import head_score_null, interventions

    parsed = parse_condition(condition)
    if parsed.kind == "true":
        raise ConditionError("pick a condition other than the true F0: the true-F0 run is what "
                             "every condition is compared with, and it always runs")
    if parsed.kind == "other" and other is None:
        raise ConditionError("'other' borrows another clip's contour: pick that clip")
    overrides = check_overrides(overrides or {})
    check_model_length(clip)
    key = content_key(clip.content, settings_key(settings), model_key(checkpoint_id, overrides),
                      parsed.name, other.content if other is not None else "",
                      reference_text.strip())
    cached = RESULTS.get(key)
    if cached is not None:
        return cached
    model = load_model(checkpoint_id, overrides)
    track = f0_track(clip, settings)
    other_f0 = frame_f0(other, settings) if parsed.kind == "other" else None
    with model_session():
        true = interventions.run_condition(model, clip.samples, clip.sr, "true", track=track,
                                           reference_text=reference_text.strip() or None,
                                           capture=True)
        cond = interventions.run_condition(model, clip.samples, clip.sr, parsed, track=track,
                                           reference_text=true.reference, other_f0=other_f0,
                                           capture=True, tokenizer=true.run.tokenizer)
    feature = model.dims.features[0]
    scores, error = None, ""
    try:
        scores = head_score_null.head_scores_with_null(true.run.cache, model, true.f0_frames,
                                                       true.run.uses_f0, k=NULL_CONTOURS)
    except VoicingError as e:
        error = str(e)
    result = InterventionResult(
        key=key, label=resolve(checkpoint_id)[2], clip_name=clip.name, condition=parsed.name,
        route=interventions.f0_route(model), uses_f0=true.run.uses_f0, reference=true.reference,
        summary=_summary(true, cond), tokens=_tokens(true),
        logprob_true=true.token_logprobs, logprob_condition=cond.token_logprobs,
        theta=_theta(true.theta, cond.theta), f0_true=true.f0_frames,
        f0_condition=cond.f0_frames,
        attention={"true": attention_by_kind(true.run.cache, feature)[ENCODER_SELF],
                   "condition": attention_by_kind(cond.run.cache, feature)[ENCODER_SELF]},
        position_seconds=position_seconds(model.dims.spec_stride), head_scores=scores,
        head_scores_error=error)
    return RESULTS.put(key, result)


SUMMARY_COLUMNS = {"transcript": "transcript", "changed": "changed",
                   "cer_vs_true": "CER vs true", "nll": "NLL / token", "delta_nll": "Δ NLL",
                   "voiced_frames": "voiced frames"}  # interventions.against_true -> display


def _summary(true, cond) -> pd.DataFrame:
    from echo_core.interventions import against_true

    rows = [{"condition": name, **{label: against_true(r, true)[key]
                                   for key, label in SUMMARY_COLUMNS.items()}}
            for name, r in (("true F0", true), (cond.condition, cond))]
    return pd.DataFrame(rows)


def _tokens(true) -> list[str]:
    tokenizer = true.run.tokenizer
    ids = true.run.teacher_ids
    shown = [tokenizer.decode([i]) if tokenizer else str(i) for i in ids]
    return [f"{k}:{t if t.strip() else '␣'}" for k, t in enumerate(shown)] + [
        f"{len(ids)}:<eos>"]


def _theta(true: pd.DataFrame, cond: pd.DataFrame) -> pd.DataFrame:
    out = true.rename(columns={"theta_in_force": "θ in force (true F0)"})
    out["θ in force (condition)"] = cond["theta_in_force"].to_numpy()
    return out.rename(columns={"theta": "θ (learned base)"})
