"""A character tokenizer for the project's own checkpoints (special ids as in the reference).

The reference used a BPE tokenizer with pad 0, bos 1, eos 2; our digit models need only
characters, so ids 0-2 keep those meanings and every other id is one character. It is saved as
``tokenizer.json`` beside the weights so a checkpoint folder is self-contained.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from echo_core.errors import TranscriptError

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")
DEFAULT_CHARACTERS = " '" + string.ascii_lowercase
TOKENIZER_FILE = "tokenizer.json"


class CharTokenizer:
    """Maps text to ids and back, one character per id after the three special ids."""

    pad_id, bos_id, eos_id = PAD, BOS, EOS

    def __init__(self, characters: str = DEFAULT_CHARACTERS):
        if len(set(characters)) != len(characters) or not characters:
            raise TranscriptError(f"tokenizer characters must be distinct and non-empty, got "
                                  f"{characters!r}")
        self.characters = characters
        self._id = {c: i + len(SPECIALS) for i, c in enumerate(characters)}

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.characters)

    def normalize(self, text: str) -> str:
        """Lowercase and collapse whitespace: the transcript form the models are trained on."""
        return " ".join(text.lower().split())

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``normalize(text)``; TranscriptError naming the characters not in the vocab."""
        text = self.normalize(text)
        unknown = sorted({c for c in text if c not in self._id})
        if unknown:
            raise TranscriptError(f"cannot tokenise {''.join(unknown)!r} in {text!r}: accepted "
                                  f"characters are {self.characters!r} (lowercased)")
        ids = [self._id[c] for c in text]
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def decode(self, ids) -> str:
        """Text of ``ids``: stops at the first eos, skips pad/bos, rejects ids out of range."""
        chars = []
        for i in (int(x) for x in ids):
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            if not len(SPECIALS) <= i < self.vocab_size:
                raise TranscriptError(f"token id {i} is outside this tokenizer's range "
                                      f"0..{self.vocab_size - 1}")
            chars.append(self.characters[i - len(SPECIALS)])
        return "".join(chars)

    def to_dict(self) -> dict:
        return {"type": "char", "specials": list(SPECIALS), "characters": self.characters}

    def save(self, path: str | Path) -> Path:
        """Write JSON to ``path`` (a file, or a folder that gets ``tokenizer.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        """Read a tokenizer written by :meth:`save` (a file, or a folder with tokenizer.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TranscriptError(f"cannot read a tokenizer from {path}: {e}") from e
        if data.get("type") != "char" or list(data.get("specials", [])) != list(SPECIALS):
            raise TranscriptError(f"{path} is not a character tokenizer with specials {SPECIALS}")
        return cls(data["characters"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, characters={self.characters!r})"
