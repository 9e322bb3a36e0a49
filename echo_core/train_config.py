"""The training settings (``TrainConfig``) and the one place that checks them.

Why a place of its own: every setting arrives from the command line, and a value out of range
used to be refused only where it was first used (a bad ``--time-warp`` after the features had
loaded and the first batch was drawn, about a minute in) or not at all (a negative
``--time-stretch`` silently switched the stretch off). ``TrainConfig`` now refuses such a
value when it is built, with a ``ConfigError`` naming the option, its value and what is
accepted; ``train.main`` shows that message as a usage error, without a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from echo_core.audio import SAMPLE_RATE
from echo_core.errors import ConfigError

FEATURES = dict(n_mels=80, fmin=0.0, fmax=8000.0)  # log-mel settings, stored in the model meta

# option -> (lowest, highest, whether each bound is included).
# The augmentation widths stop where the augmentation stops making sense: a stretch of 1 would
# shrink a clip to nothing, a warp of 0.2 could move the anchor out of the clip (warp_time), a
# tilt or frequency warp of 1 would zero a filter or fold the mel axis.
RANGES = {
    "steps": (1, math.inf, (True, False)),
    "batch_frames": (1, math.inf, (True, False)),
    "max_batch": (1, math.inf, (True, False)),
    "lr": (0.0, math.inf, (True, False)),  # 0 keeps the --init weights (a test uses it)
    "min_lr_ratio": (0.0, 1.0, (True, True)),
    "warmup": (0, math.inf, (True, False)),
    "weight_decay": (0.0, math.inf, (True, False)),
    "grad_clip": (0.0, math.inf, (False, False)),
    "eval_every": (1, math.inf, (True, False)),
    "eval_clips": (0, math.inf, (True, False)),
    "save_every": (1, math.inf, (True, False)),
    "log_every": (1, math.inf, (True, False)),
    "threads": (1, math.inf, (True, False)),
    "freq_masks": (0, math.inf, (True, False)),
    "freq_width": (0, math.inf, (True, False)),
    "time_masks": (0, math.inf, (True, False)),
    "time_ratio": (0.0, 1.0, (True, False)),
    "freq_warp": (0.0, 1.0, (True, False)),
    "spectral_tilt": (0.0, 1.0, (True, False)),
    "onset_crop": (0.0, 1.0, (True, True)),
    "band_limit": (0.0, 1.0, (True, True)),
    "noise_floor": (0.0, 1.0, (True, True)),
    "time_stretch": (0.0, 1.0, (True, False)),
    "time_warp": (0.0, 0.2, (True, False)),
    "n_mels": (1, math.inf, (True, False)),
    "fmin": (0.0, SAMPLE_RATE / 2, (True, False)),
    "stop_at": (0, math.inf, (True, False)),
    "ctc_weight": (0.0, math.inf, (True, False)),
}


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings (all on the command line), checked when built."""

    data: str
    out: str
    config: str = "mean_f0_theta"
    steps: int = 6000
    batch_frames: int = 5000  # mel frames per batch (batch size adapts to clip length)
    max_batch: int = 48
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.02  # cosine decays to lr * this: the end of training is stable
    warmup: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 500
    eval_clips: int = 96  # validation clips decoded greedily at each evaluation
    save_every: int = 500
    log_every: int = 25
    threads: int = 1
    freq_masks: int = 2
    freq_width: int = 10
    time_masks: int = 2
    time_ratio: float = 0.08  # max time-mask width as a fraction of the clip
    freq_warp: float = 0.0  # > 0: each clip's mel axis stretched by 1 +- this (see warp_mel)
    spectral_tilt: float = 0.0  # > 0: a first-order filter, coefficient in +- this (tilt_mel)
    onset_crop: float = 0.0  # > 0: this share of clips lose their first frames (onset_crop_start)
    band_limit: float = 0.0  # > 0: this share of clips in the telephone band (band_limit_mel)
    noise_floor: float = 0.0  # > 0: this share of clips over a white-noise floor (noise_floor_mel)
    time_stretch: float = 0.0  # > 0: each clip stretched in time by 1 +- this (stretch_time)
    time_warp: float = 0.0  # > 0: each clip's inner frame moved by up to this share (warp_time)
    n_mels: int = FEATURES["n_mels"]
    fmin: float = FEATURES["fmin"]
    fmax: float | None = FEATURES["fmax"]
    test_eval: bool = True  # decode the whole test split from raw audio at the end
    curriculum: bool = True  # first epoch from short to long clips (helps attention lock in)
    stop_at: int = 0  # if > 0, save and stop at this step (as if interrupted; resume later)
    # > 0: add this times a CTC loss of a training-only linear head on the encoder output (not
    # saved with the model): it teaches the encoder the monotonic alignment early, which the
    # attention decoder alone found only after thousands of steps. Needs key_padding_mask.
    ctc_weight: float = 0.0
    progress: bool = True
    # A checkpoint folder whose weights start the model (fine-tuning a shipped model further,
    # e.g. after its training state is gone). Its dims must equal this preset's; ignored when
    # the run resumes from its own state. The checkpoint meta records it ("init_from").
    init: str = ""
    # With --init: the training CTC head starts from the checkpoint's head (when it has one)
    # rather than a fresh random one, whose first gradients shake the trained encoder
    # (train._init_from says what that cost). --no-init-ctc reproduces the stages before.
    init_ctc: bool = True
    overrides: dict = field(default_factory=dict)  # extra EchoDims fields

    def __post_init__(self):
        for name, bounds in RANGES.items():
            check_range(name, getattr(self, name), *bounds)
        if self.fmax is not None and not self.fmin < self.fmax <= SAMPLE_RATE / 2:
            raise ConfigError(f"--fmax must lie in ({self.fmin:g}, {SAMPLE_RATE // 2}] Hz "
                              f"(above --fmin, at most the Nyquist frequency), got {self.fmax:g}")
        if not isinstance(self.overrides, dict):
            raise ConfigError(f"--dims must be a JSON object of EchoDims fields, got "
                              f"{type(self.overrides).__name__}")


def check_range(name: str, value, low, high, closed: tuple[bool, bool]) -> None:
    """ConfigError unless ``low <= value <= high`` (each bound strict where ``closed`` says
    False) and the value is a finite number; the message names the command-line option."""
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value!r}")
    above = value >= low if closed[0] else value > low
    below = value <= high if closed[1] else value < high
    if not (above and below):
        left = "[" if closed[0] else "("
        right = "]" if closed[1] and math.isfinite(high) else ")"
        upper = "inf" if math.isinf(high) else f"{high:g}"
        raise ConfigError(f"{option} must lie in {left}{low:g}, {upper}{right}, got {value:g}")
