"""Train an Echo model on the synthetic digit corpus, on the CPU, reproducibly and resumably.

    python -m echo_core.train --data data/digits --config mean_f0_theta --out runs/mean_f0_theta

Why these choices: the three shipped checkpoints must differ *only* in their vRoPE settings, so
data order, SpecAugment masks and initial weights are all drawn from the seed (model init from
``torch.manual_seed(seed)``; batch order from ``(seed, epoch)``; masks from ``(seed, step)``),
which also makes a resumed run continue exactly where it stopped. Batches group clips of similar
length: padding would otherwise dilute the utterance-mean F0 that ``mean_f0`` theta uses.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from echo_core.checkpoint import load_checkpoint, save_checkpoint
from echo_core.corpus import load_features
from echo_core.clip_run import evaluate
from echo_core.decode import batch_greedy, model_uses_f0, wer_cer
from echo_core.errors import ConfigError, EchoError
from echo_core.model import Echo
from echo_core.mel_augment import (NOISE_FLOOR_DB, band_gain, band_limit_mel, noise_floor_mel,
                                   onset_crop_start, spec_augment, stretch_time, warp_time,
                                   white_noise_power)
from echo_core.model_dims import TRAINING_ONLY_FIELDS, EchoDims
from echo_core.pitch import f0_for_model
from echo_core.tokenizer import EOS, PAD, TOKENIZER_FILE, CharTokenizer
from echo_core.train_card import write_model_card
from echo_core.train_config import FEATURES, TrainConfig, check_range

# Shared by every preset: the shipped models differ only in the vRoPE switches below.
# f0_mean "voiced": theta from each utterance's own voiced-frame mean F0 (rotary.theta_from_f0,
# what the workbench draws) rather than the reference's whole-batch mean with zeros, so an
# utterance's theta does not depend on what it was batched or padded with.
# spec_stride 2: the encoder runs at 16 ms per position, which made training ~2x faster per
# step and the attention maps 4x smaller than at the mel hop's 8 ms, for the same parameters.
BASE_DIMS = dict(text_ctx=64, text_dims=128, text_head=4, text_idx=2, mels=80, aud_ctx=640,
                 aud_dims=128, aud_head=4, aud_idx=3, act="gelu", features=["spectrogram"],
                 cross_attn=True, decoder_mask="causal", f0_mean="voiced", spec_stride=2)
PRESETS = {
    "static_theta": dict(f0_rotary=False),
    "mean_f0_theta": dict(f0_rotary=True, theta_mode="mean_f0"),
    "f0_theta_bias": dict(f0_rotary=True, theta_mode="mean_f0", pitch_bias=True),
    "per_frame_theta": dict(f0_rotary=True, theta_mode="per_frame"),
    # The model zoo's controls (issue #17): frequencies frozen at theta_eff of the training
    # corpus's mean voiced F0 (freeze_theta is filled in from the data at the start of
    # training), and mean-F0 theta fed another utterance's contour (NULL_F0_PRESETS).
    "frozen_theta": dict(f0_rotary=False),
    "null_f0_theta": dict(f0_rotary=True, theta_mode="mean_f0"),
    # A few-second model for tests and smoke runs.
    "tiny": dict(text_dims=32, text_head=2, text_idx=1, aud_dims=32, aud_head=2, aud_idx=1,
                 f0_rotary=True),
}
# Presets trained and evaluated with each utterance's F0 swapped for a random other
# utterance's contour, stretched in time (pitch_conditions.borrowed): same theta distribution,
# no link to the voice. The checkpoint meta records it ("f0_input": "borrowed").
NULL_F0_PRESETS = ("null_f0_theta",)
FROZEN_THETA_PRESETS = ("frozen_theta",)
LAST = "last"  # sub-folder with the resumable state
STATE_FILE = "train_state.pt"


def make_dims(config: str, vocab: int, n_mels: int, overrides: dict | None = None) -> EchoDims:
    """EchoDims for a preset name (mels = n_mels of the features); ConfigError lists presets."""
    if config not in PRESETS:
        raise ConfigError(f"unknown training preset {config!r}; choose one of {sorted(PRESETS)}")
    fields = {**BASE_DIMS, **PRESETS[config], "mels": n_mels, **(overrides or {}), "vocab": vocab}
    return EchoDims.from_dict(fields)


# ---------------------------------------------------------------------------------------------
# Data

def length_batches(lengths: np.ndarray, batch_frames: int, max_batch: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches of similar length (sorted with a random tie-break), in random order."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches, start = [], 0
    while start < len(order):
        size = max(1, min(max_batch, batch_frames // max(1, int(lengths[order[start]]))))
        # the longest clip of the batch sets its padded size
        while size > 1 and int(lengths[order[min(start + size, len(order)) - 1]]) * size > batch_frames:
            size -= 1
        batches.append(order[start:start + size])
        start += size
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(indices, mels, f0s, token_ids, augment=None):
    """Pad one batch: mel with each clip's floor (silence), F0 with 0 (unvoiced), text with pad.

    Returns (spectrogram (B, n_mels, T), f0 (B, T) Hz 0=unvoiced, decoder input (B, L), labels
    (B, L)); decoder input is bos + text, labels are text + eos (pad 0 is ignored by the loss).
    """
    T = max(mels[i].shape[1] for i in indices)
    L = max(len(token_ids[i]) for i in indices) - 1
    spec = np.zeros((len(indices), mels[indices[0]].shape[0], T), np.float32)
    f0 = np.zeros((len(indices), T), np.float32)
    inp = np.full((len(indices), L), PAD, np.int64)
    lab = np.full((len(indices), L), PAD, np.int64)
    for b, i in enumerate(indices):
        mel = augment(mels[i]) if augment else mels[i]
        spec[b] = mel.min()
        spec[b, :, :mel.shape[1]] = mel
        f0[b, :len(f0s[i])] = f0_for_model(f0s[i])
        ids = token_ids[i]
        inp[b, :len(ids) - 1] = ids[:-1]
        lab[b, :len(ids) - 1] = ids[1:]
    return (torch.from_numpy(spec), torch.from_numpy(f0), torch.from_numpy(inp),
            torch.from_numpy(lab))


def clip_views(indices, mels, f0s, view):
    """The batch's mel and F0 views, ``view(mel, f0) -> (mel, f0)`` applied to each clip in
    order (so a view's random draws follow the batch): dicts by clip index."""
    views, contours = {}, {}
    for i in indices:
        i = int(i)
        views[i], contours[i] = view(mels[i], f0s[i])
    return views, contours


def band_limited(indices, mels, f0s, prob: float, gain: np.ndarray,
                 rng: np.random.Generator):
    """Each clip, with probability ``prob``, as if recorded in the telephone band
    (``band_limit_mel`` with ``gain``); one draw per clip, so the stream does not depend on
    the clips."""
    return clip_views(indices, mels, f0s, lambda mel, f0: (
        (band_limit_mel(mel, gain), f0) if rng.random() < prob else (mel, f0)))


def noise_floored(indices, mels, f0s, prob: float, noise: tuple[np.ndarray, float],
                  rng: np.random.Generator):
    """Each clip, with probability ``prob``, over a white-noise floor (``noise_floor_mel``)
    ``NOISE_FLOOR_DB`` below its power, level and noise frames drawn per chosen clip."""
    def view(mel, f0):
        if rng.random() >= prob:
            return mel, f0
        level = rng.uniform(*NOISE_FLOOR_DB)
        start = int(rng.integers(noise[0].shape[1]))
        return noise_floor_mel(mel, level, noise, start), f0

    return clip_views(indices, mels, f0s, view)


def cropped_onsets(indices, mels, f0s, prob: float, rng: np.random.Generator):
    """Each clip's leading frames dropped as ``onset_crop_start`` draws them (mel and contour by
    the same count)."""
    def crop(mel, f0):
        start = onset_crop_start(mel, rng, prob)
        return mel[:, start:], f0[start:]
    return clip_views(indices, mels, f0s, crop)


def stretched(indices, mels, f0s, width: float, rng: np.random.Generator):
    """Each clip stretched in time (``stretch_time``) by a rate uniform in 1 +- ``width``."""
    return clip_views(indices, mels, f0s, lambda mel, f0: stretch_time(
        mel, f0, float(rng.uniform(1 - width, 1 + width))))


def time_warped(indices, mels, f0s, width: float, rng: np.random.Generator):
    """Each clip time-warped (``warp_time``): a frame uniform in the middle 60% of the clip
    moved by a share of the clip uniform in +- ``width`` (below 0.2, so it stays inside)."""
    check_range("time_warp", width, 0.0, 0.2, (False, False))  # on, and inside the clip

    def warp(mel, f0):
        anchor = float(rng.uniform(0.2, 0.8))
        return warp_time(mel, f0, anchor, anchor + float(rng.uniform(-width, width)))
    return clip_views(indices, mels, f0s, warp)


def augmented_views(batch, mels, contours, cfg: TrainConfig, step: int,
                    band: np.ndarray | None, noise: tuple[np.ndarray, float] | None = None):
    """The batch's mel and F0 views after the switched-on view augmentations, in their order
    (telephone band, noise floor, clipped onset, time stretch, time warp), each reading the one
    before and drawing from its own stream keyed by (seed, step), so a switch left off leaves
    the others' draws as they were. ``band``: ``band_gain`` of the run's features when
    --band-limit is on; ``noise``: ``white_noise_power`` of them when --noise-floor is on."""
    views = mels
    if cfg.band_limit > 0:
        views, contours = band_limited(batch, views, contours, cfg.band_limit, band,
                                       np.random.default_rng([cfg.seed, 29, step]))
    if cfg.noise_floor > 0:
        views, contours = noise_floored(batch, views, contours, cfg.noise_floor, noise,
                                        np.random.default_rng([cfg.seed, 31, step]))
    if cfg.onset_crop > 0:
        views, contours = cropped_onsets(batch, views, contours, cfg.onset_crop,
                                         np.random.default_rng([cfg.seed, 17, step]))
    if cfg.time_stretch > 0:
        views, contours = stretched(batch, views, contours, cfg.time_stretch,
                                    np.random.default_rng([cfg.seed, 19, step]))
    if cfg.time_warp > 0:
        views, contours = time_warped(batch, views, contours, cfg.time_warp,
                                      np.random.default_rng([cfg.seed, 23, step]))
    return views, contours


def borrowed_contours(indices, f0s, pool, rng: np.random.Generator) -> list[np.ndarray]:
    """For the null-F0 control: each clip's contour replaced by that of a random other clip of
    ``pool`` (never itself when the pool has another), stretched onto the clip's frames."""
    from echo_core.pitch_conditions import borrowed

    out = []
    for i in indices:
        j = int(pool[int(rng.integers(len(pool)))])
        if j == i and len(pool) > 1:
            j = int(pool[(int(np.flatnonzero(pool == i)[0]) + 1) % len(pool)])
        out.append(borrowed(f0s[i], f0s[j]).astype(np.float32))
    return out


def corpus_theta(f0s, indices) -> float:
    """theta_eff (base THETA_INIT) of the mean voiced F0 over every frame of ``indices``: the
    frozen-theta control's fixed theta."""
    from echo_core.model_layers import THETA_INIT
    from echo_core.rotary import theta_eff

    voiced = np.concatenate([f[np.isfinite(f) & (f > 0)] for f in (f0s[i] for i in indices)])
    return float(theta_eff(THETA_INIT, float(voiced.mean())))


# EchoDims switches a fine-tuning stage may turn on or off (``--init``): the CTC head (the
# checkpoint's own trains beside the model, see _init_from), the input's mean normalisation (no
# weight: the stage learns the centred input) and the training-only fields (dropout). The values
# only blank the field on both sides of the comparison.
FINE_TUNE_SWITCHES = {"ctc_head": False, "mel_mean_norm": 0} | dict.fromkeys(TRAINING_ONLY_FIELDS)


def _init_from(model: Echo, checkpoint: str, ctc_head: torch.nn.Linear | None = None,
               copy_ctc: bool = True) -> dict:
    """Copy a checkpoint's weights into ``model`` (same dims required); what the meta records.
    ``FINE_TUNE_SWITCHES`` may differ: they add no weight the source must have.

    The checkpoint's CTC head (when it carries one) goes into ``ctc_head``, the training-only
    head, when one is given and ``copy_ctc``; the meta says which ("copied" or "fresh"). Why:
    a fresh random head meets a trained encoder with a CTC loss near 18 where the trained head
    gives about 0.1, and its first gradients shake the encoder (a stage with a fresh head
    started at a training loss of 9-11 against 0.05, and scored the held-out real speaker ~2.5
    points worse). Stages trained before this (each with a fresh head, all seed 0, so every
    stage drew the same fresh head) reproduce with --no-init-ctc."""
    source = load_checkpoint(checkpoint)
    theirs, ours = (d.to_dict() | FINE_TUNE_SWITCHES for d in (source.dims, model.dims))
    if theirs != ours:
        differ = sorted(k for k, v in ours.items() if theirs.get(k) != v)
        raise ConfigError(f"--init {Path(checkpoint).name}: its model differs from this preset "
                          f"in {', '.join(differ)}; fine-tuning needs the same dims")
    model.load_state_dict({k: v for k, v in source.state_dict().items()
                           if not k.startswith("ctc.")})
    meta = getattr(source, "meta", None) or {}
    steps = meta.get("train", {}).get("steps")
    earlier = (meta.get("init_from") or {}).get("its_steps") or 0
    # every step behind those weights: the source's own and, when it was itself fine-tuned,
    # its source's (recorded the same way)
    head = {k[len("ctc."):]: v for k, v in source.state_dict().items() if k.startswith("ctc.")}
    copied = ctc_head is not None and copy_ctc and bool(head)
    if copied:
        ctc_head.load_state_dict(head)
    return {"checkpoint": Path(checkpoint).name,
            "its_steps": None if steps is None else steps + earlier,
            **({"ctc_head": "copied" if copied else "fresh"} if ctc_head is not None else {})}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def batch_loss(model: Echo, spec, f0, inp, lab, lengths=None, ctc_head=None,
               ctc_weight: float = 0.0) -> torch.Tensor:
    """Token cross-entropy (pad ignored), computed here so label shifting is explicit.
    ``lengths``: each clip's mel frames (models with a key padding mask ignore the padding).
    ``ctc_head`` (training only): adds ctc_weight x CTC of the text (labels without eos,
    blank = pad) on ctc_head(encoder output) over each clip's real positions."""
    f0 = f0 if model_uses_f0(model) else None
    padding = model.padding(spec, f0, lengths) if model.dims.key_padding_mask else None
    f0 = f0 if padding is None else padding.mask_f0(f0)
    enc = model.encode(spectrogram=spec, f0=f0, padding=padding)
    logits = model.decoder(inp, enc, f0, padding=padding)  # as Echo.forward
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1),
                           ignore_index=PAD)
    if ctc_head is None or ctc_weight <= 0:
        return loss
    if padding is None:
        raise ConfigError("ctc_weight needs key_padding_mask (the CTC needs each clip's length)")
    log_probs = ctc_head(enc["spectrogram"]).float().log_softmax(-1)  # (B, n, vocab)
    targets = lab.masked_fill(lab == EOS, PAD)  # text ids, pad after
    target_lengths = (targets != PAD).sum(1)
    ctc = F.ctc_loss(log_probs.transpose(0, 1), targets, padding.positions.sum(1),
                     target_lengths, blank=PAD, reduction="mean", zero_infinity=True)
    return loss + ctc_weight * ctc


# ---------------------------------------------------------------------------------------------
# Checkpoints

def model_meta(cfg: TrainConfig, extra: dict | None = None) -> dict:
    return {"features": {"n_mels": cfg.n_mels, "fmin": cfg.fmin, "fmax": cfg.fmax},
            "tokenizer": TOKENIZER_FILE, "preset": cfg.config, **(extra or {})}


def save_state(model, optimizer, step: int, elapsed: float, out: Path, meta: dict,
               tokenizer: CharTokenizer, ctc_head=None) -> None:
    """Resumable state in out/last: the model checkpoint plus optimizer state (tensors/plain)."""
    last = out / LAST
    tmp = out / (LAST + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(model, tmp, meta=meta)
    tokenizer.save(tmp / TOKENIZER_FILE)
    extra = {} if ctc_head is None else {"ctc_head": ctc_head.state_dict()}
    torch.save({"optimizer": optimizer.state_dict(), "step": torch.tensor(step),
                "elapsed": torch.tensor(elapsed, dtype=torch.float64), **extra},
               tmp / STATE_FILE)
    shutil.rmtree(last, ignore_errors=True)
    tmp.rename(last)


def with_ctc_head(model: Echo, ctc_head: torch.nn.Linear) -> Echo:
    """The same model with ``ctc_head`` as its own ``ctc`` (EchoDims.ctc_head): what the final
    checkpoint holds, so decoding can use the head. During training the head stays a separate
    module, created after the model, so the seeds draw as they always did."""
    dims = EchoDims.from_dict({**model.dims.to_dict(), "ctc_head": True})
    joined = Echo(dims)
    joined.load_state_dict({**model.state_dict(),
                            **{f"ctc.{k}": v for k, v in ctc_head.state_dict().items()}})
    joined.meta = model.meta
    return joined.eval()


def load_state(out: Path, model, optimizer, ctc_head=None) -> tuple[int, float]:
    """Restore model + optimizer (+ the CTC head) from out/last; returns (step, elapsed s)."""
    last = out / LAST
    saved = load_checkpoint(last)
    model.load_state_dict(saved.state_dict())
    state = torch.load(last / STATE_FILE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    if ctc_head is not None:
        ctc_head.load_state_dict(state["ctc_head"])
    return int(state["step"]), float(state["elapsed"])


# ---------------------------------------------------------------------------------------------
# Training

def train(cfg: TrainConfig) -> Echo:
    """Train (or resume) and write the final checkpoint + model card to cfg.out."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    tokenizer = CharTokenizer()
    specs, mels, f0s = load_features(cfg.data, cfg.n_mels, cfg.fmin, cfg.fmax)
    token_ids = [tokenizer.encode(s.text, bos=True, eos=True) for s in specs]
    split = np.array([s.split for s in specs])
    train_idx = np.flatnonzero(split == "train")
    val_idx = np.flatnonzero(split == "validation")
    if len(train_idx) == 0:
        raise ConfigError(f"{cfg.data} has no training clips")
    lengths = np.array([m.shape[1] for m in mels])

    overrides = dict(cfg.overrides)
    extra_meta = {}
    if cfg.config in FROZEN_THETA_PRESETS and not overrides.get("freeze_theta"):
        overrides["freeze_theta"] = round(corpus_theta(f0s, train_idx), 3)
        extra_meta["freeze_theta_from"] = "theta_eff of the training clips' mean voiced F0"
    null_f0 = cfg.config in NULL_F0_PRESETS
    if null_f0:
        extra_meta["f0_input"] = "borrowed"
    dims = make_dims(cfg.config, tokenizer.vocab_size, cfg.n_mels, overrides)
    if max(len(t) for t in token_ids) > dims.text_ctx:
        raise ConfigError(f"text_ctx {dims.text_ctx} is shorter than the longest transcript")
    torch.manual_seed(cfg.seed)
    model = Echo(dims)
    n_params = sum(p.numel() for p in model.parameters())
    ctc_head = None
    if cfg.ctc_weight > 0:  # training-only head, seeded after the model: not in checkpoints
        ctc_head = torch.nn.Linear(dims.aud_dims, dims.vocab)
    trained = list(model.named_parameters()) + (
        list(ctc_head.named_parameters()) if ctc_head is not None else [])
    decay = [p for n, p in trained if p.ndim >= 2]
    no_decay = [p for n, p in trained if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=cfg.lr, betas=(0.9, 0.98))
    if cfg.init:
        extra_meta["init_from"] = _init_from(model, cfg.init, ctc_head, cfg.init_ctc)
    meta = model_meta(cfg, {"data": str(cfg.data), "seed": cfg.seed, "params": n_params,
                            "train": _train_settings(cfg), **extra_meta})
    out.mkdir(parents=True, exist_ok=True)  # only now: a bad --data or --init leaves no folder
    step, elapsed = 0, 0.0
    log_path = out / "log.jsonl"
    if (out / LAST / STATE_FILE).is_file():
        step, elapsed = load_state(out, model, optimizer, ctc_head)
        _log(log_path, {"event": "resume", "step": step})
    else:
        log_path.write_text("")
        _log(log_path, {"event": "start", "config": cfg.config, "params": n_params,
                        "dims": dims.to_dict(), "train_clips": int(len(train_idx))})

    epoch_of = _epoch_iterator(lengths, train_idx, cfg)
    band = band_gain(cfg.n_mels, cfg.fmin, cfg.fmax) if cfg.band_limit > 0 else None
    noise = white_noise_power(cfg.n_mels, cfg.fmin, cfg.fmax) if cfg.noise_floor > 0 else None
    bar = _bar(cfg, step)
    t0 = time.time() - elapsed
    running = []
    model.train()
    end = min(cfg.steps, cfg.stop_at) if cfg.stop_at > 0 else cfg.steps
    while step < end:
        batch = epoch_of(step)
        aug_rng = np.random.default_rng([cfg.seed, 7, step])
        contours = f0s
        if null_f0:  # the null control: every clip gets a random other clip's contour
            swapped = borrowed_contours(batch, f0s, train_idx,
                                        np.random.default_rng([cfg.seed, 13, step]))
            contours = dict(zip(batch.tolist(), swapped))
        views, contours = augmented_views(batch, mels, contours, cfg, step, band, noise)
        spec, f0, inp, lab = collate(batch, views, contours, token_ids,
                                     augment=lambda m: spec_augment(m, aug_rng, cfg))
        for g in optimizer.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = batch_loss(model, spec, f0, inp, lab, lengths=[views[i].shape[1] for i in batch],
                          ctc_head=ctc_head, ctc_weight=cfg.ctc_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trained], cfg.grad_clip)
        optimizer.step()
        step += 1
        running.append(loss.item())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % cfg.log_every == 0:
            _log(log_path, {"step": step, "loss": float(np.mean(running)),
                            "lr": lr_at(step - 1, cfg), "seconds": time.time() - t0})
            running = []
        if step % cfg.eval_every == 0 or step == cfg.steps:
            _log(log_path, {"step": step, **validate(model, val_idx, mels, f0s, token_ids,
                                                        specs, cfg, tokenizer, null_f0),
                            "seconds": time.time() - t0})
            model.train()
        if step % cfg.save_every == 0 or step == end:
            save_state(model, optimizer, step, time.time() - t0, out, meta, tokenizer, ctc_head)
    if bar is not None:
        bar.close()
    if step < cfg.steps:
        return model
    wall = time.time() - t0
    model.eval()
    meta = {**meta, "steps": step, "wall_seconds": round(wall, 1)}
    model.meta = meta  # transcribe() reads the feature settings from it
    if cfg.test_eval and not null_f0:  # (the null control needs borrowed contours)
        test = [(Path(cfg.data) / s.path, s.text) for s in specs if s.split == "test"]
        wer, cer = evaluate(model, test, tokenizer=tokenizer)
        meta["test"] = {"wer": wer, "cer": cer, "clips": len(test)}
        _log(log_path, {"event": "test", "wer": wer, "cer": cer, "clips": len(test)})
    model.meta = meta
    if ctc_head is not None:  # the final checkpoint carries the CTC head (joint decoding)
        model = with_ctc_head(model, ctc_head)
    save_checkpoint(model, out, meta=meta)
    tokenizer.save(out / TOKENIZER_FILE)
    write_model_card(out, model, meta)
    return model


@torch.no_grad()
def validate(model, val_idx, mels, f0s, token_ids, specs, cfg, tokenizer,
             null_f0: bool = False) -> dict:
    """Validation loss on all validation clips; greedy WER/CER on the first cfg.eval_clips
    (decoded one by one from the cached features, i.e. as transcribe() would; in padded
    batches for a model with a key padding mask, which decodes them the same)."""
    model.eval()
    if len(val_idx) == 0:
        return {}
    if null_f0:
        f0s = dict(zip(val_idx.tolist(), borrowed_contours(
            val_idx, f0s, val_idx, np.random.default_rng([cfg.seed, 14]))))
    rng = np.random.default_rng([cfg.seed, 99])
    lengths = np.array([mels[i].shape[1] for i in val_idx])
    losses, counts = [], []
    for b in length_batches(lengths, cfg.batch_frames, cfg.max_batch, rng):
        spec, f0, inp, lab = collate(val_idx[b], mels, f0s, token_ids)
        losses.append(batch_loss(model, spec, f0, inp, lab,
                                 lengths=[mels[i].shape[1] for i in val_idx[b]]).item())
        counts.append(int((lab != PAD).sum()))
    # one clip at a time, as transcribe() runs: the models train on length-bucketed batches and
    # never learned to ignore long padding, so padded greedy batches understate their accuracy
    subset = val_idx[:cfg.eval_clips]
    if model.dims.key_padding_mask:
        hyps = []
        for start in range(0, len(subset), 32):
            part = subset[start:start + 32]
            hyps += batch_greedy(model, [mels[i] for i in part],
                                 [f0_for_model(f0s[i]) for i in part], tokenizer)
    else:
        hyps = [batch_greedy(model, [mels[i]], [f0_for_model(f0s[i])], tokenizer)[0]
                for i in subset]
    wer, cer = wer_cer([specs[i].text for i in subset], hyps)
    return {"val_loss": float(np.average(losses, weights=counts)), "val_wer": wer,
            "val_cer": cer}


def _epoch_iterator(lengths, train_idx, cfg):
    """step -> batch indices; epochs reshuffled from (seed, epoch) so resuming is exact.

    With cfg.curriculum the first epoch runs from the shortest batches to the longest.
    """
    cache = {}

    def batches(epoch):
        if epoch not in cache:
            cache.clear()
            rng = np.random.default_rng([cfg.seed, epoch])
            batches = [train_idx[b] for b in length_batches(
                lengths[train_idx], cfg.batch_frames, cfg.max_batch, rng)]
            if epoch == 0 and cfg.curriculum:  # SortaGrad: short clips first, for alignment
                batches.sort(key=lambda b: int(lengths[b].max()))
            cache[epoch] = batches
        return cache[epoch]

    per_epoch = len(batches(0))

    def at(step):
        return batches(step // per_epoch)[step % per_epoch]

    return at


def _train_settings(cfg: TrainConfig) -> dict:
    """The optimisation settings worth recording in the checkpoint meta."""
    keep = ("steps", "batch_frames", "max_batch", "lr", "min_lr_ratio", "warmup", "weight_decay",
            "grad_clip", "freq_masks", "freq_width", "time_masks", "time_ratio", "freq_warp",
            "spectral_tilt", "onset_crop", "band_limit", "noise_floor", "time_stretch",
            "time_warp", "curriculum", "ctc_weight", "init_ctc")
    return {k: getattr(cfg, k) for k in keep}


def _log(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _bar(cfg: TrainConfig, step: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.steps, initial=step, desc=cfg.config, mininterval=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="mean_f0_theta", choices=sorted(PRESETS))
    for name, f in TrainConfig.__dataclass_fields__.items():
        if name in ("data", "out", "config", "overrides"):
            continue
        kind = type(f.default)
        if kind is bool:
            parser.add_argument(f"--{name.replace('_', '-')}", action=argparse.BooleanOptionalAction,
                                default=f.default)
        elif f.default is None or name == "fmax":
            parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=f.default)
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=f.default)
    parser.add_argument("--dims", default="{}", help="JSON of extra EchoDims fields")
    args = vars(parser.parse_args(argv))
    try:
        overrides = json.loads(args.pop("dims"))
    except json.JSONDecodeError as e:
        parser.error(f"--dims must be a JSON object of EchoDims fields: {e}")
    try:
        cfg = TrainConfig(**args, overrides=overrides)
    except ConfigError as e:
        parser.error(str(e))
    try:
        train(cfg)
    except EchoError as e:  # data, preset or --init the run cannot use: the message says which
        parser.exit(2, f"{parser.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
