"""Rotary (RoPE / vRoPE) math as pure functions.

The model's rotary module and the workbench's heatmaps call these same functions, so the pictures
cannot drift from the model. The scalar helpers accept numpy arrays, Python floats or torch
tensors (the model needs gradients through ``theta``) and return the same kind.

Reference formulas (docs/echo_model.md, section 3):
    frequencies_k = 1 / theta ** (2k / d),  k = 0 .. d/2 - 1
    pitch_factor(m) = ln(1 + m/700) / ln(1 + 300/700)
    theta_eff = theta + pitch_factor(mean F0) * (10000 - 800)
    similarity(i, j) = mean_k cos((i - j) * frequencies_k)      (a function of the lag: Toeplitz)
    pitch_bias(i, j) = exp(-|z_i - z_j| * scale),  z = (f0 - mean) / (std + 1e-8) over voiced

The similarity maps are float64 numpy (what figures draw); ``pitch_bias`` also runs on torch
tensors for the model. Per-frame theta and per-position radii go beyond the reference.
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


F0_MEAN_RULES = ("batch", "voiced")  # EchoDims.f0_mean: which mean F0 sets theta_eff


def mean_f0(f0, rule: str = "voiced"):
    """The mean F0 (Hz) that sets theta_eff, by the model's rule (EchoDims.f0_mean).

    "voiced": the mean of the voiced frames, 0 when none is voiced (so theta stays static).
    "batch" (the reference): the mean of the whole contour with unvoiced frames counted as 0.
    A numpy contour (NaN or <= 0 unvoiced) gives a float; the model's torch F0 (B, T) (0
    unvoiced) gives one value per row for "voiced" and one for the whole tensor for "batch",
    as the reference averages over the batch.
    """
    if rule not in F0_MEAN_RULES:
        raise RotaryError(f"f0 mean rule must be one of {F0_MEAN_RULES}, got {rule!r}")
    if _is_torch(f0):
        f0 = f0.float()
        if rule == "batch":
            return f0.mean()  # whole tensor, zeros included
        rows = f0.reshape(-1, f0.shape[-1])  # (rows, T)
        voiced = rows > 0
        return (rows * voiced).sum(-1) / voiced.sum(-1).clamp(min=1)  # (rows,)
    f0 = np.atleast_1d(np.asarray(f0, dtype=np.float64))
    voiced = voiced_mask(f0)
    if rule == "batch":
        return float(np.mean(np.where(voiced, f0, 0.0)))
    return float(f0[voiced].mean()) if voiced.any() else 0.0


def theta_from_f0(f0, theta=10000.0, rule: str = "voiced") -> float:
    """Theta modulated by the mean F0 of a contour (or one Hz value) under ``rule``
    (:func:`mean_f0`): by default the *voiced* frames' mean, so with no voiced frame at all the
    static theta comes back unchanged (pitch_factor(0) = 0)."""
    theta = check_theta(theta)
    return float(theta_eff(theta, mean_f0(f0, rule)))


def frame_index(n_frames: int, n_positions: int) -> np.ndarray:
    """Which of ``n_frames`` F0 frames each of ``n_positions`` positions reads, by time: position
    i covers the fraction (i + 0.5) / n_positions of the utterance (the nearest frame in time).
    The model, the maps and the head scores all map F0 onto positions with this index."""
    index = ((np.arange(n_positions) + 0.5) * n_frames / n_positions).astype(np.int64)
    return np.minimum(index, max(n_frames - 1, 0))


def f0_at_positions(f0, n_positions: int):
    """The F0 contour mapped onto ``n_positions`` positions by time (:func:`frame_index`) along
    its last axis; numpy (T,) -> (n,) float64, or the model's torch (rows, T) -> (rows, n).
    Identity when the lengths agree."""
    if _is_torch(f0):
        import torch

        rows = f0.reshape(-1, f0.shape[-1]) if f0.ndim > 1 else f0.reshape(1, -1)  # (rows, T)
        if rows.shape[-1] == n_positions:
            return rows
        index = torch.from_numpy(frame_index(rows.shape[-1], n_positions)).to(rows.device)
        return rows[:, index]  # (rows, n)
    f0 = np.asarray(f0, dtype=np.float64)
    return f0 if f0.size == n_positions else f0[frame_index(f0.size, n_positions)]


# ---------------------------------------------------------------------------------------------
# Pitch bias and position similarity (what the workbench draws; the model calls pitch_bias).

MAX_FULL_POSITIONS = 4096  # a full n x n float64 map above this is > 128 MB: use display_similarity
MAX_POSITIONS = 1_000_000  # display_similarity: ~2.2 h of 8 ms frames
_LAG_TABLE_LIMIT = 65536  # up to this n the whole lag table is cheaper than unique sampled lags
PITCH_BIAS_EPS = 1e-8  # added to the std, as in the reference


def check_positions(n_positions, limit=MAX_POSITIONS) -> int:
    """A count of positions: a positive integer, at most ``limit``."""
    if (
        isinstance(n_positions, bool)
        or not np.isscalar(n_positions)
        or int(n_positions) != n_positions
        or not 1 <= n_positions <= limit
    ):
        raise RotaryError(f"n_positions must be an integer from 1 to {limit}, got {n_positions!r}")
    return int(n_positions)


def pair_weights(head_dim: int, radius=None) -> np.ndarray:
    """Weights w_k = r_k^2 / sum r^2 of the d/2 channel pairs in the rotary similarity
    (uniform 1/(d/2) without a radius). A learned radius may be any finite values, negative
    ones included (only r^2 matters), as long as not all are zero."""
    pairs = check_head_dim(head_dim) // 2
    if radius is None:
        return np.full(pairs, 1.0 / pairs)
    r = np.asarray(radius, dtype=np.float64)
    if r.shape != (pairs,) or not np.isfinite(r).all() or not (r != 0).any():
        raise RotaryError(
            f"radius must be {pairs} finite values (one per channel pair of head_dim "
            f"{head_dim}), not all zero; got shape {r.shape}"
        )
    return r**2 / np.sum(r**2)


def _theta_used(theta, f0) -> float:
    return check_theta(theta) if f0 is None else theta_from_f0(f0, theta)


def similarity_at_lags(lags, head_dim: int, theta=10000.0, f0=None, radius=None) -> np.ndarray:
    """s(l) = sum_k w_k cos(l * freq_k): the rotary cosine similarity of two positions l apart.

    Computed in float64 for any array of lags (w_k = 1/(d/2), or r_k^2 / sum r^2 with a radius).
    """
    head_dim = check_head_dim(head_dim)
    freqs = inv_freq(head_dim, _theta_used(theta, f0))
    weights = pair_weights(head_dim, radius)
    lags = np.asarray(lags, dtype=np.float64)
    return np.cos(lags[..., None] * freqs) @ weights


def position_similarity(n_positions, head_dim, theta=10000.0, f0=None, radius=None) -> np.ndarray:
    """(n, n) float64 cosine similarity of the rotary vectors of positions i and j.

    It equals mean_k cos((i - j) freq_k), a function of the lag alone, so it is computed for the
    n lags once and laid out as a symmetric Toeplitz matrix (cost n*d/2 + n^2, never n^2*d).
    ``f0`` (a contour or one Hz value) modulates theta by its voiced mean (``theta_from_f0``);
    ``radius`` (d/2,) weights the pairs.
    """
    from scipy.linalg import toeplitz

    n = check_positions(n_positions, MAX_FULL_POSITIONS)
    sim = similarity_at_lags(np.arange(n), head_dim, theta, f0, radius)
    return toeplitz(sim)


def similarity_vs_distance(max_lag, head_dim, theta=10000.0, f0=None, radius=None):
    """(lags 0..max_lag, similarity): one row of the Toeplitz map, for a line plot."""
    if isinstance(max_lag, bool) or not np.isscalar(max_lag) or int(max_lag) != max_lag \
            or max_lag < 0:
        raise RotaryError(f"max_lag must be a non-negative integer, got {max_lag!r}")
    lags = np.arange(check_positions(int(max_lag) + 1))
    return lags, similarity_at_lags(lags, head_dim, theta, f0, radius)


def _f0_contour(f0, n_positions=None) -> np.ndarray:
    f0 = np.asarray(f0, dtype=np.float64)
    if n_positions is not None and f0.ndim == 0:
        f0 = np.full(n_positions, float(f0))
    if f0.ndim != 1 or f0.size == 0:
        raise RotaryError(f"f0 must be a non-empty 1-D contour in Hz, got shape {f0.shape}")
    if n_positions is not None and f0.size != n_positions:
        raise RotaryError(
            f"f0 has {f0.size} frames but n_positions is {n_positions}; accepted: one F0 value "
            "per position (align the track with pitch.align_to_frames)"
        )
    return f0


def rotation_angles_per_frame(f0, head_dim, theta=10000.0):
    """Angles (n, d/2) when theta follows the pitch frame by frame (beyond the reference).

    Frame t rotates at freq_k(theta_t) with theta_t = theta_eff(theta, f0_t) when voiced and
    the static ``theta`` when unvoiced (NaN or <= 0; pitch_factor(0) = 0). Angles accumulate
    step by step, the step from t to t+1 taken at frame t's rate: angle_0 = 0, angle_i =
    sum_{t<i} freq_k(theta_t). A constant F0 gives exactly i * freq_k(theta_eff), the mean-F0
    rotary. numpy: f0 (n,) Hz -> float64 (n, d/2). torch (the model, gradient through a tensor
    ``theta``): f0 (rows, n) with 0 unvoiced -> (rows, n, d/2) in theta's dtype.
    """
    head_dim = check_head_dim(head_dim)
    if _is_torch(f0):
        import torch

        thetas = theta_eff(theta, f0.to(theta.dtype))  # (rows, n)
        rates = inv_freq(head_dim, thetas.unsqueeze(-1))  # (rows, n, d/2) radians per frame
        steps = torch.cumsum(rates, dim=-2)
        return torch.cat([torch.zeros_like(steps[..., :1, :]), steps[..., :-1, :]], dim=-2)
    theta = check_theta(theta)
    f0 = _f0_contour(f0)
    thetas = theta_eff(theta, np.where(voiced_mask(f0), f0, 0.0))  # (n,)
    exponent = np.arange(0, head_dim, 2, dtype=np.float64) / head_dim
    rates = 1.0 / thetas[:, None] ** exponent  # (n, d/2) radians per frame
    angles = np.zeros_like(rates)
    np.cumsum(rates[:-1], axis=0, out=angles[1:])
    return angles


def _rotary_vectors(angles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[sqrt(w) cos | sqrt(w) sin]: their dot products are sum_k w_k cos(a_ik - a_jk)."""
    root = np.sqrt(weights)
    return np.concatenate([np.cos(angles) * root, np.sin(angles) * root], axis=-1)


def position_similarity_per_frame(f0, head_dim, theta=10000.0, radius=None) -> np.ndarray:
    """(n, n) cosine similarity of per-frame-modulated rotary vectors, by one matmul.

    cos(a_i - a_j) = cos a_i cos a_j + sin a_i sin a_j, so [cos|sin] V V^T / (d/2) is the map;
    it is no longer Toeplitz because the angle no longer grows linearly with position.
    """
    head_dim = check_head_dim(head_dim)
    f0 = _f0_contour(f0)
    check_positions(f0.size, MAX_FULL_POSITIONS)
    angles = rotation_angles_per_frame(f0, head_dim, theta)  # (n, d/2)
    v = _rotary_vectors(angles, pair_weights(head_dim, radius))  # (n, d)
    return v @ v.T


def display_positions(n_positions, max_size=512) -> np.ndarray:
    """At most ``max_size`` evenly spread position indices, always including 0 and n - 1."""
    n = check_positions(n_positions)
    if isinstance(max_size, bool) or int(max_size) != max_size or max_size < 1:
        raise RotaryError(f"max_size must be a positive integer, got {max_size!r}")
    if n <= max_size:
        return np.arange(n)
    if max_size == 1:
        return np.zeros(1, dtype=np.int64)
    return np.unique(np.floor(np.linspace(0, n - 1, int(max_size)) + 0.5).astype(np.int64))


def display_similarity(n_positions, head_dim, theta=10000.0, f0=None, max_size=512,
                       per_frame=False, radius=None):
    """(positions (R,), sim (R, R)) with R <= max_size: the similarity map at display resolution.

    Computed only at the sampled positions, never as the full n x n matrix: with the mean-F0
    (Toeplitz) rotary from the lag table s(|p_i - p_j|); with ``per_frame`` (``f0`` a contour
    of n values, or one Hz value) from the accumulated angles of the sampled rows. A 30 s clip
    (3750 frames) costs milliseconds. ``per_frame`` without ``f0`` is the static rotary.
    """
    head_dim = check_head_dim(head_dim)
    n = check_positions(n_positions)
    positions = display_positions(n, max_size)
    if per_frame and f0 is not None:
        angles = rotation_angles_per_frame(_f0_contour(f0, n), head_dim, theta)[positions]
        v = _rotary_vectors(angles, pair_weights(head_dim, radius))
        return positions, v @ v.T
    lags = np.abs(positions[:, None] - positions[None, :])  # (R, R)
    if n <= _LAG_TABLE_LIMIT:
        return positions, similarity_at_lags(np.arange(n), head_dim, theta, f0, radius)[lags]
    unique, inverse = np.unique(lags, return_inverse=True)
    sim = similarity_at_lags(unique, head_dim, theta, f0, radius)[inverse]
    return positions, sim.reshape(lags.shape)


def position_dot_product(n_positions, head_dim, theta=10000.0, f0=None, radius=None,
                         radius_per_position=None) -> np.ndarray:
    """(n, n) unnormalised similarity: rho_i rho_j * sum_k r_k^2 cos((i-j) freq_k) / (d/2).

    A radius per *position* (rho, e.g. derived from F0) cancels out of a cosine similarity, so
    this shows it: the raw dot product of the rotary vectors, divided by the number of pairs so
    that with unit radii it equals ``position_similarity`` (same colour scale).
    """
    head_dim = check_head_dim(head_dim)
    n = check_positions(n_positions, MAX_FULL_POSITIONS)
    pairs = head_dim // 2
    pair_weights(head_dim, radius)  # validates the radius
    r = np.ones(pairs) if radius is None else np.asarray(radius, dtype=np.float64)
    unnormalised = r**2 / pairs
    from scipy.linalg import toeplitz

    freqs = inv_freq(head_dim, _theta_used(theta, f0))
    sim = toeplitz(np.cos(np.arange(n, dtype=np.float64)[:, None] * freqs) @ unnormalised)
    if radius_per_position is None:
        return sim
    rho = np.asarray(radius_per_position, dtype=np.float64)
    if rho.shape != (n,) or not np.isfinite(rho).all() or (rho < 0).any():
        raise RotaryError(
            f"radius_per_position must be {n} finite non-negative values (one per position), "
            f"got shape {rho.shape}"
        )
    return sim * rho[:, None] * rho[None, :]


def _pitch_bias_torch(f0, scale):
    import torch

    f0 = f0 if f0.is_floating_point() else f0.float()
    voiced = torch.isfinite(f0) & (f0 > 0)
    weight = voiced.to(f0.dtype)
    count = weight.sum(-1, keepdim=True)
    clean = torch.where(voiced, f0, torch.zeros_like(f0))
    mean = clean.sum(-1, keepdim=True) / count.clamp(min=1)
    centred = torch.where(voiced, f0 - mean, torch.zeros_like(f0))
    var = (centred**2).sum(-1, keepdim=True) / (count - 1).clamp(min=1)
    z = centred / (var.sqrt() + PITCH_BIAS_EPS)  # (..., n), 0 on unvoiced frames
    bias = torch.exp(-(z[..., :, None] - z[..., None, :]).abs() * scale)  # (..., n, n)
    return bias * (weight[..., :, None] * weight[..., None, :])


def pitch_bias(f0, scale=1.0):
    """(..., n, n) pitch-similarity bias exp(-|z_i - z_j| * scale), as in the reference.

    z = (f0 - mean) / (std + 1e-8) over the *voiced* frames (unbiased std; with fewer than two
    voiced frames the std is taken as 0). Rows and columns of unvoiced frames (NaN or <= 0) are
    0.0, i.e. no boost. Works on numpy arrays (float64 out) and on torch tensors (f0's dtype and
    device; ``scale`` may be a torch Parameter and keeps its gradient). Leading batch axes ok.
    """
    if _is_torch(f0) or _is_torch(scale):
        import torch

        if not _is_torch(f0):
            f0 = torch.as_tensor(np.asarray(f0, dtype=np.float32))
        if f0.ndim < 1:
            raise RotaryError("f0 must be a contour (..., n), got a scalar tensor")
        if _is_torch(scale) and scale.numel() != 1:
            raise RotaryError(f"scale must be a scalar, got shape {tuple(scale.shape)}")
        return _pitch_bias_torch(f0, scale)
    f0 = np.asarray(f0, dtype=np.float64)
    if f0.ndim < 1 or f0.shape[-1] == 0:
        raise RotaryError(f"f0 must be a non-empty contour (..., n) in Hz, got shape {f0.shape}")
    scale = float(scale)
    if not math.isfinite(scale):
        raise RotaryError(f"scale must be a finite number, got {scale!r}")
    weight = voiced_mask(f0).reshape(f0.shape).astype(np.float64)
    z = pitch_z(f0)
    bias = np.exp(-np.abs(z[..., :, None] - z[..., None, :]) * scale)
    return bias * (weight[..., :, None] * weight[..., None, :])


def pitch_z(f0) -> np.ndarray:
    """(..., n) float64 z-score of F0 over the voiced frames, 0 on unvoiced ones: the z of
    :func:`pitch_bias` (unbiased std, + 1e-8), for code that needs it at a few pairs only."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = voiced_mask(f0).reshape(f0.shape)
    count = voiced.sum(-1, keepdims=True)
    mean = np.where(voiced, f0, 0.0).sum(-1, keepdims=True) / np.maximum(count, 1)
    centred = np.where(voiced, f0 - mean, 0.0)
    var = (centred**2).sum(-1, keepdims=True) / np.maximum(count - 1, 1)
    return centred / (np.sqrt(var) + PITCH_BIAS_EPS)
