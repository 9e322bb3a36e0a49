"""Error types of echo_core.

Every error a user can cause is a ``ValueError`` subclass, so callers (the UI, batch jobs) can
catch ``EchoError`` and show ``str(e)``: the message says what was wrong and what is accepted.
"""


class EchoError(ValueError):
    """Base class of every user-facing error raised by echo_core."""


class AudioError(EchoError):
    """Audio that cannot be read or is not acceptable (empty, corrupt, too long, non-finite)."""


class ClipTooLongError(AudioError):
    """Audio over a length limit. Carries the numbers, so a UI can word the advice its users can
    follow (trim the clip) instead of the library's (raise ``max_seconds``)."""

    def __init__(self, message: str, seconds: float, limit: float, what: str):
        super().__init__(message)
        self.seconds, self.limit, self.what = seconds, limit, what


class PitchSettingsError(EchoError):
    """Praat pitch settings out of their valid range."""


class RotaryError(EchoError):
    """Bad arguments to the rotary / similarity math (sizes, theta, head dim)."""


class ConfigError(EchoError):
    """A model configuration field that is unknown or has a bad value."""


class CheckpointError(EchoError):
    """A file or folder that is not a loadable checkpoint, or weights that do not fit the config."""


class CaptureError(EchoError):
    """A hook cache that lacks what a statistic needs (e.g. no gradients were recorded)."""


class TranscriptError(EchoError):
    """Text that cannot be tokenised with the checkpoint's tokenizer."""


class VoicingError(EchoError):
    """A clip with too little voicing for pitch scores (see attention_priors.MIN_VOICED_FRAMES)."""
