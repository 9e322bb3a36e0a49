"""Load, save and compare Echo checkpoints without ever running pickled code.

Formats read by :func:`load_checkpoint`:
  * the project's folder: ``config.json`` ({"dims": ..., "meta": ...}) + ``model.safetensors``;
  * a reference (Hugging Face trainer) folder: ``model.safetensors`` or ``pytorch_model.bin``
    and no project config (a HF ``config.json`` is read only for EchoDims fields it names);
  * a single ``.safetensors`` / ``.bin`` / ``.pt`` file (sniffed by content, not by suffix).
Bare state dicts get their dimensions from :func:`infer_dims`; ``act``, ``f0_rotary``,
``aud_ctx`` and ``debug`` cannot be read from weights and come from overrides (reference defaults
otherwise). Pickle files go through ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch

from .errors import CheckpointError, ConfigError
from .model import Echo
from .model_dims import FEATURE_INPUTS, EchoDims

MAX_CHECKPOINT_BYTES = 500 * 2**20  # refuse larger files before reading a byte of them
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHT_FILES = (WEIGHTS_FILE, "pytorch_model.bin")  # looked for in this order in a folder
CONFIG_METADATA_KEY = "echo_config"  # safetensors metadata: the config travels with the file
LOAD_META_KEYS = ("source", "path", "weights")  # set at load time, never written back
NON_INFERABLE_DEFAULTS = dict(act="gelu", f0_rotary=False, aud_ctx=1500, debug=[])
DEFAULT_MELS = 128  # used only when there is no spectrogram front end to read it from
LIST_LIMIT = 10  # error messages list at most this many keys


class NotACheckpointError(CheckpointError):
    """The path is not an Echo checkpoint (missing, empty folder, text, random bytes, ...)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that would import or call code beyond plain tensors; refused, nothing run."""


class CheckpointTooLargeError(CheckpointError):
    """The weights file exceeds the size limit (checked before reading)."""


class KeyMismatchError(CheckpointError):
    """Weights missing for the model, or weights the model has no place for."""

    def __init__(self, message, missing=(), unexpected=()):
        super().__init__(message)
        self.missing, self.unexpected = list(missing), list(unexpected)


class ShapeMismatchError(CheckpointError):
    """Weights whose shape differs from the model's parameter of the same name."""


class CheckpointDtypeError(CheckpointError):
    """Weights that are not floating-point tensors."""


class OverrideConflictError(CheckpointError):
    """A given dimension (override or config.json) that the weights contradict."""


class CheckpointConfigError(CheckpointError, ConfigError):
    """Dimensions read from a checkpoint (weights or config) that EchoDims rejects. Both a
    CheckpointError (loading failed) and a ConfigError (which field was bad), so either catch
    works (issue #9: only CheckpointError escapes load_checkpoint)."""


def _listing(keys, limit=LIST_LIMIT) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... and {len(keys) - limit} more" if len(keys) > limit else "")


# ---------------------------------------------------------------------------------------------
# Reading files

def _sniff(path: Path) -> str:
    """'safetensors', 'torch' (zip or legacy pickle) or raise NotACheckpointError."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if 0 < header_len <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "torch"
    # Say what kind of bytes were found, never the bytes: the path may be any readable file
    # (/etc/passwd) and this message reaches the UI (issue #9).
    text = head and all(32 <= b < 127 or b in b"\t\r\n" for b in head)
    kind = "plain text" if text else "unrecognised binary data"
    raise NotACheckpointError(f"{path.name} is neither a safetensors file nor a PyTorch "
                              f"checkpoint (it starts with {kind}); accepted: .safetensors, "
                              "or a state dict saved with torch.save")


def _check_size(path: Path, max_bytes) -> None:
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise CheckpointTooLargeError(f"{path.name} is {size / 2**20:.1f} MB, above the "
                                      f"{max_bytes / 2**20:.1f} MB limit (pass max_bytes=...)")
    if size == 0:
        raise NotACheckpointError(f"{path.name} is empty")


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            return {key: f.get_tensor(key) for key in f.keys()}, metadata
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise NotACheckpointError(f"{path.name} is not a readable safetensors file: {e}") from e


def _read_torch(path: Path) -> dict:
    import pickle

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch words it "Unsupported global: GLOBAL x" or, for a blocked module such as posix
        # (os.system), "unsupported GLOBAL posix.system whose module posix is blocked" (#9)
        found = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", str(e), re.IGNORECASE)
        if found:
            raise UnsafeCheckpointError(
                f"{path.name} was refused: it would run or import {found.group(1)} when "
                "unpickled. Only plain state dicts (tensors in dicts) are loaded; nothing in the "
                "file was executed") from e
        raise NotACheckpointError(f"{path.name} is not a plain PyTorch state dict (the safe "
                                  "loader rejected its contents; nothing was executed)") from e
    except Exception as e:  # zip/EOF/runtime errors of a damaged file
        raise NotACheckpointError(f"{path.name} is not a readable PyTorch checkpoint: {e}") from e
    return obj


def _as_state_dict(obj, name: str) -> dict:
    """A {str: Tensor} dict (unwrapping {"state_dict": ...} / {"model": ...}), float32."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise NotACheckpointError(f"{name} holds no state dict (got {type(obj).__name__})")
    not_tensors = [str(k) for k, v in obj.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise NotACheckpointError(f"{name} is not a state dict: entries that are not tensors: "
                                  f"{_listing(not_tensors)}")
    wrong = [f"{k} ({v.dtype})" for k, v in obj.items() if not v.is_floating_point()]
    if wrong:
        raise CheckpointDtypeError(f"{name}: weights must be floating point; wrong dtype for "
                                   f"{_listing(wrong)}")
    return {str(k): v.detach().to(torch.float32) for k, v in obj.items()}


def _strip_prefix(state: dict) -> dict:
    """Drop a wrapper prefix ('model.', 'module.', 'param.', ...) in front of the Echo keys."""
    if "decoder.token.weight" in state:
        return state
    prefixes = [k[: -len("decoder.token.weight")] for k in state
                if k.endswith(".decoder.token.weight")]
    if len(prefixes) != 1:
        return state
    prefix = prefixes[0]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------------------------
# Dimensions from weights

def _indices(state: Mapping, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})


def _shape(state: Mapping, key: str, ndim: int) -> tuple:
    """Shape of ``state[key]``, which must have ``ndim`` axes: a fuzzed 0-d or 3-d tensor must not
    reach tuple unpacking (ValueError/IndexError would escape; issue #9)."""
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise ShapeMismatchError(f"{key} must have {ndim} axes, got shape {shape}")
    return shape


def _head_count(state: Mapping, rope_key: str, dims: int, what: str) -> int:
    half = _shape(state, rope_key, 1)[0]  # head_dim / 2
    if half == 0 or dims % (2 * half):
        raise CheckpointError(f"{rope_key} has {half} entries, which does not divide {what} "
                              f"({dims}) into heads of {2 * half} channels")
    return dims // (2 * half)


def _inferred_fields(state: Mapping) -> dict:
    """Every EchoDims field that key names and shapes determine."""
    if "decoder.token.weight" not in state or "decoder.positional" not in state:
        raise NotACheckpointError("not an Echo state dict: decoder.token.weight and "
                                  "decoder.positional are missing")
    vocab, text_dims = _shape(state, "decoder.token.weight", 2)
    out = dict(vocab=vocab, text_dims=text_dims,
               text_ctx=_shape(state, "decoder.positional", 2)[0])
    out["text_idx"] = len(_indices(state, "decoder._blocks."))
    features = [f for f in FEATURE_INPUTS
                if any(k.startswith(f"encoder.blocks.{f}.") for k in state)]
    if not features:
        raise NotACheckpointError("not an Echo state dict: no encoder.blocks.<feature> weights "
                                  f"for any of {list(FEATURE_INPUTS)}")
    out["features"] = features  # canonical order: a state dict does not record the order
    first = features[0]
    out["aud_idx"] = max(_indices(state, f"encoder.blocks.{first}."), default=0)
    norm = "norm" if first == "waveform" else "_norm"
    norm_key = f"encoder.blocks.{first}.0.{norm}.weight"
    if norm_key not in state:
        raise NotACheckpointError(f"not an Echo state dict: {norm_key} is missing")
    out["aud_dims"] = _shape(state, norm_key, 1)[0]
    if "encoder.rope.inv_freq" in state:
        out["aud_head"] = _head_count(state, "encoder.rope.inv_freq", out["aud_dims"], "aud_dims")
    spec_key = "encoder.blocks.spectrogram.0.encoder.0.weight"
    if spec_key in state:
        out["mels"] = _shape(state, spec_key, 3)[1]  # conv1d weight (out, mels, kernel)
    rope = next((f"{p}0.attna.rope.inv_freq" for p in
                 ["decoder._blocks."] + [f"decoder.blocks.{f}." for f in features]
                 if f"{p}0.attna.rope.inv_freq" in state), None)
    if rope is not None:
        out["text_head"] = _head_count(state, rope, text_dims, "text_dims")
    if out["text_idx"]:
        out["cross_attn"] = any(k.startswith("decoder._blocks.0.attnb.") for k in state)
    out["variable_radius"] = any(k.endswith(".rope.radius") for k in state)
    out["ctc_head"] = "ctc.weight" in state
    return out


def _same(field: str, given, inferred) -> bool:
    if field == "features":  # the order is not in the weights: any order of the same set
        return isinstance(given, (list, tuple)) and sorted(given) == sorted(inferred)
    return given == inferred and type(given) is type(inferred)


def infer_dims(state_dict: Mapping, **overrides) -> EchoDims:
    """EchoDims of a bare state dict (pure). head count = dims / (2 * len(rope.inv_freq)).

    ``act``, ``f0_rotary``, ``aud_ctx`` and ``debug`` (and the project switches) come from
    ``overrides`` or the reference defaults; an override the weights contradict raises
    OverrideConflictError. ``features`` are inferred in the canonical order spectrogram,
    waveform, pitch: pass ``features=[...]`` (same set) to use another order.
    """
    state = _strip_prefix(dict(state_dict))
    inferred = _inferred_fields(state)
    conflicts = [f"{k}={v!r} (weights imply {inferred[k]!r})" for k, v in overrides.items()
                 if k in inferred and not _same(k, v, inferred[k])]
    if conflicts:
        raise OverrideConflictError("the weights contradict " + "; ".join(conflicts))
    fields = {**NON_INFERABLE_DEFAULTS, "mels": DEFAULT_MELS, **inferred, **overrides}
    fields.setdefault("text_head", fields.get("aud_head", 1))
    fields.setdefault("aud_head", fields["text_head"])
    try:
        return EchoDims.from_dict(fields)
    except ConfigError as e:  # e.g. a zero-length axis in the weights gives vocab=0
        raise CheckpointConfigError(str(e)) from e


def check_state_dict(model: torch.nn.Module, state: Mapping) -> None:
    """Raise KeyMismatchError / ShapeMismatchError unless ``state`` fits ``model`` exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
        raise KeyMismatchError("weights do not fit the model; " + "; ".join(parts),
                               missing, unexpected)
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if state[k].shape != v.shape]
    if shapes:
        raise ShapeMismatchError(f"{len(shapes)} shape mismatch(es): {_listing(shapes)}")


# ---------------------------------------------------------------------------------------------
# Public API

def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotACheckpointError(f"{path.name} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise NotACheckpointError(f"{path.name} must hold a JSON object, got "
                                  f"{type(config).__name__}")
    return config


def _locate(path: Path) -> tuple[Path, dict | None]:
    """(weights file, parsed config.json or None)."""
    if not path.exists():
        raise NotACheckpointError(f"{path} does not exist")
    if path.is_file():
        return path, None
    if not path.is_dir():  # /dev/zero, a FIFO, a socket: never open them (issue #9)
        raise NotACheckpointError(f"{path} is neither a regular file nor a folder; accepted: a "
                                  f"checkpoint folder or a single weights file")
    config = _read_config(path / CONFIG_FILE) if (path / CONFIG_FILE).is_file() else None
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name, config
    if list(path.glob("*.index.json")):
        raise NotACheckpointError(f"{path} holds a sharded checkpoint; merge the shards into "
                                  "one model.safetensors first")
    found = sorted(p.name for p in path.iterdir())[:LIST_LIMIT]
    raise NotACheckpointError(f"{path} holds no {' or '.join(WEIGHT_FILES)} (found: "
                              f"{found or 'nothing'}); accepted: a project folder "
                              f"(config.json + {WEIGHTS_FILE}), a reference trainer folder, or "
                              "a single weights file")


def load_checkpoint(path, *, max_bytes: int | None = MAX_CHECKPOINT_BYTES, **overrides) -> Echo:
    """Echo in eval mode from a folder or file (see module docstring); ``overrides`` are EchoDims
    fields. ``model.meta``: the config's "meta" plus "source" ("project" when the dims came
    with the weights, "reference" for a bare state dict: reference behaviour, non-causal
    decoder), "path" (the folder) and "weights" (the file)."""
    path = Path(path)
    try:
        weights, config = _locate(path)
        _check_size(weights, max_bytes)
        kind = _sniff(weights)
    except OSError as e:  # unreadable file, permission denied, broken symlink loop, ...
        raise NotACheckpointError(f"{path} cannot be read: {e.strerror or e}") from e
    if kind == "safetensors":
        raw, metadata = _read_safetensors(weights)
        if config is None and CONFIG_METADATA_KEY in metadata:
            try:
                config = json.loads(metadata[CONFIG_METADATA_KEY])
            except json.JSONDecodeError as e:
                raise NotACheckpointError(f"{weights.name}: broken {CONFIG_METADATA_KEY} "
                                          "metadata") from e
    else:
        raw = _read_torch(weights)
    state = _strip_prefix(_as_state_dict(raw, weights.name))

    project = isinstance(config, dict) and isinstance(config.get("dims"), dict)
    if project:
        given = {**config["dims"], **overrides}
        meta = dict(config.get("meta") or {})
    else:  # a HF config.json may name some fields (act, f0_rotary, ...); take only those
        known = {f for f in EchoDims.__dataclass_fields__}
        given = {**{k: v for k, v in (config or {}).items() if k in known}, **overrides}
        meta = {}
    dims = infer_dims(state, **given)
    # Check keys and shapes against a model on the meta device (no memory) before allocating the
    # real one: tiny or empty tensors can imply huge dims (a (1, 65536) token table gives
    # text_dims=65536 and GBs of d x d weights); once every shape matches, the real model is no
    # bigger than the file, which _check_size bounded (issue #9).
    try:
        with torch.device("meta"):
            skeleton = Echo(dims)
    except (RuntimeError, ValueError) as e:
        raise CheckpointConfigError(f"{weights.name}: cannot build a model with the dimensions "
                                    f"read from it ({e})") from e
    check_state_dict(skeleton, state)
    model = Echo(dims)
    model.load_state_dict(state, strict=True)
    model.eval()
    meta.update(source="project" if project else "reference",
                path=str(path if path.is_dir() else path.parent), weights=str(weights))
    model.meta = meta
    return model


def save_checkpoint(model: Echo, directory, meta: dict | None = None) -> Path:
    """Write ``config.json`` ({"dims", "meta"}) and ``model.safetensors`` (which also carries the
    config in its metadata) to ``directory``; returns the folder. ``meta`` defaults to
    ``model.meta`` (load-time keys such as "source" are not written)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    meta = dict(getattr(model, "meta", {}) if meta is None else meta)
    for key in LOAD_META_KEYS:
        meta.pop(key, None)
    config = {"dims": model.dims.to_dict(), "meta": meta}
    try:
        text = json.dumps(config, indent=1, sort_keys=False)
    except TypeError as e:
        raise CheckpointError(f"meta must be JSON-serialisable: {e}") from e
    directory.mkdir(parents=True, exist_ok=True)
    # clone: tied or shared tensors would make safetensors refuse the dict
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={CONFIG_METADATA_KEY: text})
    (directory / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
    return directory


# ---------------------------------------------------------------------------------------------
# Comparing checkpoints

def _state_of(x) -> dict:
    if isinstance(x, torch.nn.Module):
        return {k: v.detach().float() for k, v in x.state_dict().items()}
    if isinstance(x, Mapping):
        return {k: v.detach().float() for k, v in _strip_prefix(dict(x)).items()}
    return {k: v.detach().float() for k, v in load_checkpoint(x).state_dict().items()}


def _module_of(key: str) -> str:
    module = key.rsplit(".", 1)[0] if "." in key else key
    return module[: -len(".linear")] if module.endswith(".linear") else module


def implied_theta(inv_freq: torch.Tensor) -> float:
    """The base theta that best explains learned frequencies, inv_freq_k ~ theta^(-2k/d)
    (least squares on the log, through the origin): one number per rotary for a table."""
    freqs = inv_freq.double()
    d = 2 * freqs.numel()
    x = torch.arange(1, freqs.numel(), dtype=torch.float64) * 2 / d
    y = torch.log(freqs[1:].abs().clamp(min=1e-300))
    if x.numel() == 0:
        return float("nan")
    return float(torch.exp(-(x * y).sum() / (x * x).sum()))


def _relative(change: float, reference: float) -> float:
    return change / abs(reference) if reference != 0 else (0.0 if change == 0 else math.inf)


def diff_checkpoints(a, b) -> pd.DataFrame:
    """Per-module relative change ||a - b|| / ||a|| and learned scalars side by side.

    ``a``, ``b``: Echo models, state dicts or checkpoint paths. Rows: kind "module" (a, b =
    norms), "scalar" (0-d parameters: theta, blend, fzero, pitch_scale, ...: a, b = values) and
    "inv_freq" (a, b = implied_theta of each learned rotary). Different architectures: only
    keys present in both with equal shapes are compared; the others are listed in
    ``df.attrs`` ("only_in_a", "only_in_b", "shape_mismatch"); nothing in common raises.
    """
    sa, sb = _state_of(a), _state_of(b)
    common = [k for k in sa if k in sb and sa[k].shape == sb[k].shape]
    if not common:
        raise CheckpointError("the two checkpoints have no parameter of the same name and shape")
    rows, modules = [], {}
    for key in common:
        ta, tb = sa[key], sb[key]
        if ta.ndim == 0:
            va, vb = float(ta), float(tb)
            rows.append(dict(kind="scalar", name=key, n_params=1, a=va, b=vb, change=vb - va,
                             rel_change=_relative(abs(vb - va), va)))
        elif key.endswith("rope.inv_freq"):
            va, vb = implied_theta(ta), implied_theta(tb)
            rows.append(dict(kind="inv_freq", name=key, n_params=ta.numel(), a=va, b=vb,
                             change=vb - va, rel_change=_relative(abs(vb - va), va)))
        else:
            modules.setdefault(_module_of(key), []).append(key)
    for module, keys in modules.items():
        na = math.sqrt(sum(float((sa[k] ** 2).sum()) for k in keys))
        nb = math.sqrt(sum(float((sb[k] ** 2).sum()) for k in keys))
        nd = math.sqrt(sum(float(((sa[k] - sb[k]) ** 2).sum()) for k in keys))
        rows.append(dict(kind="module", name=module, n_params=sum(sa[k].numel() for k in keys),
                         a=na, b=nb, change=nd, rel_change=_relative(nd, na)))
    order = {"module": 0, "inv_freq": 1, "scalar": 2}
    df = pd.DataFrame(rows, columns=["kind", "name", "n_params", "a", "b", "change", "rel_change"])
    df = df.sort_values("kind", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    df.attrs["only_in_a"] = [k for k in sa if k not in sb]
    df.attrs["only_in_b"] = [k for k in sb if k not in sa]
    df.attrs["shape_mismatch"] = [k for k in sa if k in sb and sa[k].shape != sb[k].shape]
    return df
