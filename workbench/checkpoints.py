"""The checkpoint registry: shipped, registered and uploaded checkpoints by a small id
(``shipped/<folder>``, ``upload/<hash>``), loaded on first use and cached per id, file version and
overrides. Uploads stay private to the session that sent them.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

from echo_core.errors import CheckpointError, ConfigError
from workbench.cache import LRU, content_key

CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"
ACTIVATION_NAMES = ["gelu", "relu", "sigmoid", "tanh", "swish", "tanhshrink", "softplus",
                    "softshrink", "leaky_relu", "elu"]
OVERRIDE_FIELDS = ("act", "f0_rotary", "decoder_mask")  # what a bare state dict cannot tell
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
UPLOAD_ROOT = Path(tempfile.gettempdir()) / "echo-workbench-uploads"
MAX_REGISTERED = 8
_REGISTERED: OrderedDict[str, dict] = OrderedDict()  # id -> {path, label, overrides, public}
_REGISTERED_LOCK = threading.Lock()
MODELS = LRU(4)  # (checkpoint id, fingerprint, overrides) -> Echo


INDEX_FILE = "index.json"  # in CHECKPOINTS_DIR: {"order": [...], "labels": {...}, "compare": [a, b]}


def shipped_index() -> dict:
    """The shipped checkpoints' presentation (order, labels, Compare's default pair) from
    ``assets/checkpoints/index.json``; the first in ``order`` is the app's default model. A
    missing or unreadable index only loses the presentation (folders sort by name)."""
    import json

    try:
        index = json.loads((CHECKPOINTS_DIR / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return {"order": [], "labels": {}, "compare": []}
    return {"order": list(index.get("order", [])), "labels": dict(index.get("labels", {})),
            "compare": list(index.get("compare", []))}


def shipped_checkpoints() -> dict[str, Path]:
    """Folders of assets/checkpoints that hold weights, by name: the index's order first (the
    default model leads), then the rest by name."""
    found = {}
    if CHECKPOINTS_DIR.is_dir():
        for p in sorted(CHECKPOINTS_DIR.iterdir()):
            if p.is_dir() and any((p / f).is_file() for f in ("model.safetensors",
                                                               "pytorch_model.bin")):
                found[p.name] = p
    order = [name for name in shipped_index()["order"] if name in found]
    return {name: found[name] for name in order + [n for n in found if n not in order]}


def default_checkpoint() -> str | None:
    """Id of the Model view's default checkpoint: the first shipped (the index's first)."""
    shipped = list(shipped_checkpoints())
    return f"shipped/{shipped[0]}" if shipped else None


def compare_pair() -> tuple[str | None, str | None]:
    """Ids of Compare's default A and B: the index's ``compare`` pair when both are shipped
    (a fair pair: same corpus, budget and seed), else the first two shipped."""
    shipped = list(shipped_checkpoints())
    pair = [n for n in shipped_index()["compare"] if n in shipped]
    ids = [f"shipped/{n}" for n in (pair if len(pair) == 2 else shipped[:2])]
    return (ids[0] if ids else None), (ids[1] if len(ids) > 1 else None)


def checkpoint_choices(session_uploads: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(label, id) pairs for the radios: shipped checkpoints (labelled by the index), public
    registrations (tests, an operator), then the uploads of *this* session (other users'
    uploads stay invisible)."""
    labels = shipped_index()["labels"]
    choices = [(labels.get(name, name), f"shipped/{name}") for name in shipped_checkpoints()]
    with _REGISTERED_LOCK:
        choices += [(info["label"], cid) for cid, info in _REGISTERED.items()
                    if info["public"] or cid in session_uploads]
    return choices


def resolve(checkpoint_id: str) -> tuple[Path, dict, str]:
    """(path, overrides fixed at registration, label) of a known id; nothing else is loaded."""
    if isinstance(checkpoint_id, str) and checkpoint_id.startswith("shipped/"):
        shipped = shipped_checkpoints()
        name = checkpoint_id.split("/", 1)[1]
        if name in shipped:
            return shipped[name], {}, name
    with _REGISTERED_LOCK:
        info = _REGISTERED.get(checkpoint_id)
    if info is not None:
        return Path(info["path"]), dict(info["overrides"]), info["label"]
    known = [cid for _, cid in checkpoint_choices()]
    raise CheckpointError(f"unknown checkpoint {checkpoint_id!r}; accepted: one of "
                          f"{known or 'none available'} or an upload of this session (uploads "
                          "are forgotten after a while: upload again)")


def _fingerprint(path: Path) -> tuple:
    """Changes when the weights on disk change (a re-trained shipped checkpoint)."""
    files = [path] if path.is_file() else [path / n for n in ("model.safetensors",
                                                              "pytorch_model.bin", "config.json")]
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())


def check_overrides(overrides: dict) -> dict:
    """The overrides sorted by field (a stable cache key), or ConfigError naming the fields a
    checkpoint may override."""
    unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
    if unknown:
        raise ConfigError(f"unknown override(s) {unknown}; accepted: "
                          f"{', '.join(OVERRIDE_FIELDS)}")
    return dict(sorted(overrides.items()))


def model_key(checkpoint_id: str, overrides: dict) -> tuple:
    """Cache key of a loaded model: id, file fingerprint (a re-saved file is a new model) and
    the merged overrides."""
    path, fixed, _ = resolve(checkpoint_id)
    merged = check_overrides({**fixed, **overrides})
    return checkpoint_id, _fingerprint(path), tuple(merged.items())


def load_model(checkpoint_id: str, overrides: dict | None = None):
    """The checkpoint as an Echo in eval mode (cached per id, file version and overrides)."""
    from echo_core.checkpoint import load_checkpoint

    key = model_key(checkpoint_id, overrides or {})
    path = resolve(checkpoint_id)[0]
    return MODELS.get_or_compute(key, lambda: load_checkpoint(path, **dict(key[2])))


def register_checkpoint(path: str | Path, label: str, overrides: dict | None = None,
                        public: bool = True) -> str:
    """Make a checkpoint folder or file selectable; loads it once to validate. ``public``: listed
    for every session (tests, an operator); uploads are private to the session that sent them."""
    overrides = check_overrides(overrides or {})
    cid = "upload/" + content_key(str(Path(path).resolve()), tuple(overrides.items()))
    with _REGISTERED_LOCK:
        _REGISTERED[cid] = dict(path=str(path), label=label, overrides=overrides, public=public)
        _REGISTERED.move_to_end(cid)
    try:
        load_model(cid)
    except Exception:
        with _REGISTERED_LOCK:
            _REGISTERED.pop(cid, None)
        raise
    with _REGISTERED_LOCK:
        while len(_REGISTERED) > MAX_REGISTERED:
            _REGISTERED.popitem(last=False)
    return cid


def register_upload(paths: Sequence[str], overrides: dict | None = None) -> str:
    """Copy uploaded files (weights, config.json, tokenizer.json) into a content-addressed folder
    and register it, private to the uploader. A project folder is recognised by config.json or a
    canonical weights name; otherwise the one weights file is read as a bare (reference) state
    dict, whose ``act`` / ``f0_rotary`` / ``decoder_mask`` come from ``overrides``."""
    import shutil

    from echo_core.checkpoint import WEIGHT_FILES

    files = [Path(p) for p in paths if p]
    weights = [p for p in files if p.suffix.lower() in WEIGHT_SUFFIXES]
    if len(weights) != 1:
        raise CheckpointError(f"upload exactly one weights file ({', '.join(WEIGHT_SUFFIXES)}), "
                              f"got {len(weights)}; config.json and tokenizer.json may go with it")
    h = hashlib.sha1()
    for p in sorted(files, key=lambda p: p.name):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    folder = UPLOAD_ROOT / h.hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    for p in files:
        if not (folder / p.name).exists():
            shutil.copyfile(p, folder / p.name)
    name = weights[0].name
    is_folder = (folder / "config.json").is_file() or name in WEIGHT_FILES
    return register_checkpoint(folder if is_folder else folder / name,
                               f"uploaded: {name} ({h.hexdigest()[:6]})", overrides, public=False)
