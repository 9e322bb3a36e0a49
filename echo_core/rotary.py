"""Rotary (RoPE / vRoPE) math as pure functions.

The model's rotary module and the workbench's heatmaps call these same functions, so the pictures
cannot drift from the model. The scalar helpers accept numpy arrays, Python floats or torch
tensors (the model needs gradients through ``theta``) and return the same kind.

Reference formulas (see ../shared/echo_reference.md, "rotary"):
    frequencies_k = 1 / theta ** (2k / d),  k = 0 .. d/2 - 1
    pitch_factor(m) = ln(1 + m/700) / ln(1 + 300/700)
    theta_eff = theta + pitch_factor(mean F0) * (10000 - 800)
"""

from __future__ import annotations

import math

import numpy as np

from .errors import RotaryError

PITCH_REFERENCE_HZ = 300.0  # F0 at which the pitch factor is exactly 1
MEL_BREAK_HZ = 700.0  # the mel-scale constant used by the reference's log mapping
THETA_SPAN = 10000.0 - 800.0  # how far one unit of pitch factor moves theta


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _log1p(x):
    if _is_torch(x):
        return x.log1p()
    return np.log1p(x)


def check_head_dim(head_dim: int) -> int:
    """Rotary pairs channels, so the head dimension must be a positive even integer."""
    if isinstance(head_dim, bool) or int(head_dim) != head_dim or head_dim < 2 or head_dim % 2:
        raise RotaryError(f"head_dim must be a positive even integer, got {head_dim!r}")
    return int(head_dim)


def check_theta(theta) -> float:
    """Theta is the base of a power: it must be a finite number above 1."""
    value = float(theta)
    if not math.isfinite(value) or value <= 1.0:
        raise RotaryError(f"theta must be a finite number greater than 1, got {theta!r}")
    return value


def inv_freq(head_dim: int, theta=10000.0):
    """Rotation frequency (radians per position) of each of the head_dim/2 channel pairs.

    ``theta`` may be a float (returns float64 numpy) or a torch tensor (returns a tensor with
    gradient through theta, computed in theta's dtype).
    """
    head_dim = check_head_dim(head_dim)
    if _is_torch(theta):
        import torch

        exponent = torch.arange(0, head_dim, 2, dtype=theta.dtype, device=theta.device) / head_dim
        return 1.0 / theta**exponent
    theta = check_theta(theta)
    exponent = np.arange(0, head_dim, 2, dtype=np.float64) / head_dim
    return 1.0 / theta**exponent


def pitch_factor(mean_f0):
    """The reference's log mapping of a mean F0 (Hz) to a pitch factor (1.0 at 300 Hz)."""
    return _log1p(mean_f0 / MEL_BREAK_HZ) / math.log1p(PITCH_REFERENCE_HZ / MEL_BREAK_HZ)


def theta_eff(theta, mean_f0):
    """Effective theta for an utterance of the given mean F0: theta + pitch_factor * 9200."""
    return theta + pitch_factor(mean_f0) * THETA_SPAN


def voiced_mask(f0) -> np.ndarray:
    """Frames with a usable pitch: finite and positive (NaN and 0 both mean unvoiced)."""
    f0 = np.atleast_1d(np.asarray(f0, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.isfinite(f0) & (f0 > 0)


def theta_from_f0(f0, theta=10000.0) -> float:
    """Theta modulated by the mean F0 of the *voiced* frames of a contour (or one Hz value).

    Unlike the reference model (which averages zeros in), unvoiced frames are left out; with no
    voiced frame at all the static theta is returned unchanged.
    """
    theta = check_theta(theta)
    f0 = np.atleast_1d(np.asarray(f0, dtype=np.float64))
    voiced = voiced_mask(f0)
    if not voiced.any():
        return theta
    return float(theta_eff(theta, float(f0[voiced].mean())))
