"""Fuzzing load_checkpoint (issue #9): whatever file or path it is given, only a CheckpointError
(a ValueError subclass) may escape, no pickled code may run, and no case may hang or balloon.

Bounds enforced here (documented in the report of issue #9):
  * hangs: a hard watchdog (faulthandler) aborts the run with a traceback if one case hangs for
    WATCHDOG_SECONDS; speed itself is a benchmark's business, not a test's;
  * memory: each load may raise peak memory by at most CASE_MB over where it started
    (measured per case, see _fuzz_bounds), and "huge" cases run under an address-space limit
    (RLIMIT_AS) in a child process, so an allocation the size of the declared tensor fails.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from _fuzz_bounds import bounded_case
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_core.checkpoint import (
    CheckpointConfigError,
    CheckpointDtypeError,
    NotACheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
)
from echo_core.errors import CheckpointError, ConfigError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "assets" / "checkpoints" / "static_theta"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
WATCHDOG_SECONDS = 300.0  # a hang (not just slowness) kills the run with a traceback
CASE_MB = 300  # peak memory growth of one load (the shipped model is 8 MB)
CHILD_ADDRESS_SPACE = 3 * 2**30  # RLIMIT_AS for the "huge declared size" child processes

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def bounded():
    return bounded_case(CASE_MB, WATCHDOG_SECONDS)


def only_checkpoint_errors(path, **kw):
    """Load; return the model or the CheckpointError. Any other exception fails the test."""
    with bounded():
        try:
            return load_checkpoint(path, **kw)
        except CheckpointError as e:
            assert isinstance(e, ValueError)
            assert str(e), "error without a message"
            return e


@pytest.fixture(scope="module")
def shipped_state():
    from safetensors.torch import load_file

    if not (SHIPPED / "model.safetensors").exists():
        pytest.skip(f"{SHIPPED} missing")
    return load_file(str(SHIPPED / "model.safetensors"))


# ------------------------------------------------------------------------------ random bytes

MAGIC = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", struct.pack("<Q", 2) + b"{}",
         struct.pack("<Q", 40) + b"{"]


@FUZZ
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=2048),
       suffix=st.sampled_from([".safetensors", ".bin", ".pt"]))
def test_random_bytes(tmp_path, prefix, body, suffix):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(prefix + body)
    result = only_checkpoint_errors(path)
    assert isinstance(result, CheckpointError)  # random bytes never make a model


# ------------------------------------------------------------------------------ lying safetensors

DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "X99", "", "f32"]
SIZES = st.one_of(st.integers(0, 64), st.sampled_from([2**31, 2**32 + 1, 2**40, 2**62, -1]))


@st.composite
def safetensors_blobs(draw):
    """A safetensors file whose header may lie about everything it can lie about."""
    n = draw(st.integers(0, 3))
    header, data_len = {}, draw(st.integers(0, 256))
    names = ["decoder.token.weight", "decoder.positional", "x", "decoder.token.weight "]
    for i in range(n):
        shape = draw(st.lists(SIZES, max_size=3))
        start = draw(SIZES)
        end = draw(st.one_of(SIZES, st.just(start + 4)))
        header[names[i]] = {"dtype": draw(st.sampled_from(DTYPES)), "shape": shape,
                            "data_offsets": [start, end]}
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.sampled_from([
            {"echo_config": "{"}, {"echo_config": "[]"}, {"echo_config": '{"dims": 1}'},
            {"echo_config": '{"dims": {"vocab": -1}}'}, {"a": 1}, "nope"]))
    text = json.dumps(header).encode()
    length = draw(st.one_of(st.just(len(text)), st.integers(0, 2**64 - 1)))
    return struct.pack("<Q", length) + text + draw(st.binary(min_size=data_len,
                                                              max_size=data_len))


@FUZZ
@given(blob=safetensors_blobs())
def test_lying_safetensors_headers(tmp_path, blob):
    path = tmp_path / "model.safetensors"
    path.write_bytes(blob)
    assert isinstance(only_checkpoint_errors(path), CheckpointError)


# ------------------------------------------------------------------------------ pickle payloads

class Reduce:
    """An object whose unpickling calls ``func(*args)``."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker: Path):
    touch = f"open({str(marker)!r}, 'w').write('pwned')"
    import builtins
    import importlib

    return {
        "os.system": Reduce(os.system, (f"touch {marker}",)),
        "builtins.exec": Reduce(builtins.exec, (touch,)),
        "builtins.eval": Reduce(builtins.eval, (f"{touch} and 1",)),
        "subprocess.call": Reduce(subprocess.call, (["touch", str(marker)],)),
        "import_module": Reduce(importlib.import_module, ("antigravity",)),
    }


def _malicious_zip(path: Path, evil: bytes):
    """A real torch.save zip whose data.pkl is replaced by ``evil``."""
    torch.save({"w": torch.zeros(2)}, path)
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, evil if name.endswith("/data.pkl") else data)


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "builtins.eval",
                                  "subprocess.call", "import_module"])
@pytest.mark.parametrize("layout", ["legacy_pickle", "torch_zip", "zip_data_pkl", "wrapped"])
def test_pickle_payloads_never_run(tmp_path, kind, layout):
    marker = tmp_path / "marker"
    evil = payloads(marker)[kind]
    path = tmp_path / "pytorch_model.bin"
    if layout == "legacy_pickle":
        path.write_bytes(pickle.dumps({"decoder.token.weight": evil}, protocol=2))
    elif layout == "torch_zip":
        torch.save({"decoder.token.weight": evil}, path)
    elif layout == "zip_data_pkl":
        _malicious_zip(path, pickle.dumps({"w": evil}, protocol=2))
    else:  # payload hidden in the wrapper the loader unwraps
        torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": evil}, path)
    for target in (path, tmp_path):  # the file, and the folder that holds it
        result = only_checkpoint_errors(target)
        assert isinstance(result, UnsafeCheckpointError), result
        assert "nothing" in str(result)  # says nothing was executed
    assert not marker.exists()


@FUZZ
@given(protocol=st.integers(0, 5), junk=st.binary(max_size=64))
def test_payload_with_junk_never_runs(tmp_path, protocol, junk):
    marker = tmp_path / "marker_junk"
    import builtins

    blob = pickle.dumps(Reduce(builtins.exec, (f"open({str(marker)!r}, 'w')",)), protocol)
    path = tmp_path / "x.pt"
    path.write_bytes((b"\x80" if protocol < 2 else b"") + blob + junk)
    assert isinstance(only_checkpoint_errors(path), CheckpointError)
    assert not marker.exists()


# ------------------------------------------------------------------------------ real keys, bad values

MUTATIONS = ["int32", "int64", "bool", "float64", "float16", "drop_axis", "add_axis", "grow",
             "shrink", "empty", "scalar", "extra_key", "drop_key", "nan"]


def mutate(state: dict, key: str, how: str) -> dict:
    s = dict(state)
    v = s[key]
    if how in ("int32", "int64", "bool", "float64", "float16"):
        s[key] = v.to(getattr(torch, how))
    elif how == "drop_axis":
        s[key] = v.reshape(-1)[:1].reshape(()) if v.ndim <= 1 else v[0]
    elif how == "add_axis":
        s[key] = v.unsqueeze(0)
    elif how == "grow":
        s[key] = torch.zeros(*[n + 1 for n in v.shape]) if v.ndim else torch.zeros(2)
    elif how == "shrink":
        s[key] = torch.zeros(*[max(n - 1, 0) for n in v.shape]) if v.ndim else torch.zeros(0)
    elif how == "empty":
        s[key] = torch.zeros(*([0] + list(v.shape[1:])))
    elif how == "scalar":
        s[key] = torch.tensor(1.0)
    elif how == "extra_key":
        s[key + ".extra"] = torch.zeros(1)
    elif how == "drop_key":
        del s[key]
    elif how == "nan":
        s[key] = torch.full_like(v, float("nan"))
    return s


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_shipped_keys_with_wrong_dtypes_and_shapes(tmp_path, shipped_state, data):
    from safetensors.torch import save_file

    # keys that drive infer_dims are drawn often: they are where shapes are unpacked
    key = data.draw(st.one_of(
        st.sampled_from(["decoder.token.weight", "decoder.positional", "encoder.rope.inv_freq",
                         "encoder.blocks.spectrogram.0._norm.weight",
                         "encoder.blocks.spectrogram.0.encoder.0.weight",
                         "decoder._blocks.0.attna.rope.inv_freq"]),
        st.sampled_from(sorted(shipped_state))).filter(lambda k: k in shipped_state))
    how = data.draw(st.sampled_from(MUTATIONS))
    state = mutate(shipped_state, key, how)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    result = only_checkpoint_errors(path)
    # independent expectation: the same keys, the same shapes, floating point -> loads
    fits = state.keys() == shipped_state.keys() and all(
        v.shape == shipped_state[k].shape and v.is_floating_point() for k, v in state.items())
    if fits:  # e.g. float64/float16/NaN weights, or "shrink" of a 0-d scalar
        assert not isinstance(result, Exception), f"{key} {how}: {result}"
        return
    assert isinstance(result, CheckpointError), f"{key} {how} loaded"
    if how in ("int32", "int64", "bool"):
        assert isinstance(result, CheckpointDtypeError)


# ------------------------------------------------------------------------------ regressions

def test_regression_rank_and_zero_axes_are_checkpoint_errors(tmp_path, shipped_state):
    """Once escaped as ValueError (unpacking), IndexError (0-d shape[0]) or a bare ConfigError
    (vocab=0) from infer_dims."""
    from safetensors.torch import save_file

    cases = {"decoder.token.weight": torch.zeros(5), "decoder.positional": torch.tensor(1.0),
             "encoder.rope.inv_freq": torch.tensor(1.0)}
    for key, value in cases.items():
        path = tmp_path / f"{key}.safetensors"
        save_file({**shipped_state, key: value}, str(path))
        result = only_checkpoint_errors(path)
        assert isinstance(result, CheckpointError) and key in str(result)
    path = tmp_path / "vocab0.safetensors"
    save_file({**shipped_state, "decoder.token.weight": torch.zeros(0, 128)}, str(path))
    result = only_checkpoint_errors(path)
    assert isinstance(result, CheckpointConfigError) and isinstance(result, ConfigError)
    assert "vocab" in str(result)


def test_regression_corpus_files():
    """Every file kept under tests/regressions/*.ckpt.* once let a non-CheckpointError out."""
    files = sorted(REGRESSIONS.glob("*.ckpt.*"))
    assert files, "the regression corpus is missing"
    for path in files:
        assert isinstance(only_checkpoint_errors(path), CheckpointError), path.name


HUGE_CHILD = r"""
import resource, sys, torch
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from echo_core.checkpoint import load_checkpoint
from echo_core.errors import CheckpointError
try:
    load_checkpoint(sys.argv[1])
except CheckpointError as e:
    print("CheckpointError", type(e).__name__, e)
"""


def _run_limited(path: Path) -> str:
    """load_checkpoint in a child with a 3 GB address-space cap; returns its stdout."""
    code = HUGE_CHILD.format(limit=CHILD_ADDRESS_SPACE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], check=False, capture_output=True,
                          text=True, timeout=90, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_huge_dims_implied_by_tiny_tensors_are_refused_before_allocating(tmp_path,
                                                                         shipped_state):
    """A 1 x 32768 token table and a 32768-long norm imply text_dims = aud_dims = 32768: the real
    model would hold dozens of 4 GB matrices. Refused on the meta device, in a 3 GB child."""
    from safetensors.torch import save_file

    big = 2**15
    state = dict(shipped_state)
    state["decoder.token.weight"] = torch.zeros(1, big)
    for key in [k for k in state if k.endswith("0._norm.weight")]:
        state[key] = torch.zeros(big)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    out = _run_limited(path)  # the child's RLIMIT_AS bounds memory, its timeout a hang
    assert out.startswith("CheckpointError"), out


def test_legacy_pickle_declaring_a_huge_storage(tmp_path):
    """The legacy torch format declares each storage's element count in the pickle: claim 2**40
    floats (4 TB) for a 4-element tensor. Must fail as a CheckpointError within 3 GB."""
    path = tmp_path / "pytorch_model.bin"
    torch.save({"decoder.token.weight": torch.zeros(4)}, path,
               _use_new_zipfile_serialization=False)
    blob = path.read_bytes()
    # the storage tuple ends "...'cpu', K\x04 N t": numel 4 as BININT1; make it a LONG1 2**40
    old = b"X\x03\x00\x00\x00cpuq\x06K\x04"
    assert old in blob
    huge = b"X\x03\x00\x00\x00cpuq\x06\x8a\x06" + (2**40).to_bytes(6, "little")
    path.write_bytes(blob.replace(old, huge))
    out = _run_limited(path)  # the child's RLIMIT_AS bounds memory, its timeout a hang
    assert out.startswith("CheckpointError"), out


# ------------------------------------------------------------------------------ paths

def test_system_file_is_refused_without_echoing_it(tmp_path):
    secret = "root:x:0:0:TOPSECRET-LINE"
    fake = tmp_path / "passwd"
    fake.write_text(secret + "\n")
    targets = [fake] + ([Path("/etc/passwd")] if Path("/etc/passwd").is_file() else [])
    for target in targets:
        result = only_checkpoint_errors(target)
        assert isinstance(result, NotACheckpointError)
        assert "neither a safetensors file nor a PyTorch checkpoint" in str(result)
        head = target.read_bytes()[:8].decode("latin-1")
        assert head not in str(result) and "TOPSECRET" not in str(result)


def test_symlinks_devices_and_fifos(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    link = tmp_path / "link_to_dir"
    link.symlink_to(tmp_path, target_is_directory=True)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # ELOOP
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would block forever
    cases = [link, loop, dangling, fifo, Path("/dev/zero"), Path("/dev/null"),
             tmp_path / "missing" / "model.safetensors", Path("/proc/self/status")]
    for target in cases:
        result = only_checkpoint_errors(target)
        assert isinstance(result, CheckpointError), target
        assert "hello" not in str(result)
    assert "regular file nor a folder" in str(only_checkpoint_errors(fifo))
    assert "model.safetensors" in str(only_checkpoint_errors(link))  # says what it looked for


# ------------------------------------------------------------------------------ lying config.json

JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40),
                        st.floats(allow_nan=True), st.text(max_size=8),
                        st.lists(st.integers(0, 3), max_size=2), st.just({"a": 1}))


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_lying_config_json(tmp_path, data):
    """The shipped weights with a config.json whose dims (or whole shape) lie."""
    if not (SHIPPED / "config.json").exists():
        pytest.skip(f"{SHIPPED} missing")
    config = json.loads((SHIPPED / "config.json").read_text())
    choice = data.draw(st.sampled_from(["field", "field", "extra", "not_object", "dims_list"]))
    if choice == "field":
        field = data.draw(st.sampled_from(sorted(config["dims"])))
        config["dims"][field] = data.draw(JSON_VALUES)
    elif choice == "extra":
        config["dims"][data.draw(st.text(min_size=1, max_size=8))] = data.draw(JSON_VALUES)
    elif choice == "not_object":
        config = data.draw(JSON_VALUES)
    else:
        config["dims"] = [1, 2]
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = tmp_path / "model.safetensors"  # tmp_path is shared by all examples
    if not weights.exists():
        weights.symlink_to(SHIPPED / "model.safetensors")
    result = only_checkpoint_errors(tmp_path)
    if isinstance(result, torch.nn.Module):  # a lie the model tolerates must be harmless
        assert result.dims.vocab > 0
