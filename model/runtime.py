"""Deployment choices for running a model: where and how fast, never which codes come out.

A model pack decides its output; a `Runtime` only says how the machine it lands on runs it. The edges (the
CLI, the app factory, benchmark scripts) build one from their settings and pass it to `load_pack`.
"""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("auto", "float32", "bfloat16")
BACKENDS = ("torch", "numpy")
TRAINING_PRECISION = "float32"
"""What a training computes the vectors it stores in (code names, training sentences and documents): float32
whatever the machine, so that a pack answers the same everywhere; bfloat16 stays a serving choice."""


@dataclass(frozen=True, slots=True)
class Runtime:
    device: str = "cpu"
    """Where networks run ("cpu", "cuda")."""
    precision: str = "auto"
    """Number format of the sentence encoder: "auto" and "float32" give the pack's own answers (its vectors
    were computed in float32); "bfloat16" is about twice as fast on CPUs with native bfloat16 units but
    changes a trained pack's answers (246 of 250 CodiEsp dev notes differed in a measurement)."""
    threads: int | None = None
    """Threads the encoder may use (None: every core)."""
    encoder_backend: str = "torch"
    """What runs the sentence encoder and the code-vector search: "torch" (fastest for a long-running
    service), or "numpy" (float32, for a one-note command: it spares the 2-3 s of importing torch). The two
    agree to about 1e-7, and every similarity a model reads is rounded (`dense.steady`), so the codes are
    the same."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"encoder precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"
            )
        if self.encoder_backend not in BACKENDS:
            raise ValueError(
                f"encoder backend must be one of {', '.join(BACKENDS)}, not {self.encoder_backend!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
