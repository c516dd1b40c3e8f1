"""A linear screen in front of the tone head: hashed word and character n-grams → logistic regression.

Why: the MiniLM tone head costs ~10 ms a response on one core, and most responses are plainly not
cheerleading. The screen (~0.1 ms, numpy only) answers those: below ``clear_below`` its probability
is the answer; anything else goes to the head. It never flags cheerleading on its own, because a
flag costs a rewrite and the head is the better judge. Trained by ``training/tone_screen.py`` on the
tone head's data, registered as the ``tone-screen`` artifact; the guard works without it.
"""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

from penny_slm.errors import NotLoadedError
from penny_slm.pipeline.model_registry import ModelRegistry

SCREEN_ARTIFACT = "tone-screen"
N_FEATURES = 1 << 18
_WORD = re.compile(r"[a-z0-9']+")


def screen_features(text: str) -> np.ndarray:
    """Sorted unique feature ids: words, word pairs, 3- and 4-character pieces of words, and the number
    of ``!`` (capped at 2). Training builds its matrix with this same function."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    keys = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    for word in words:
        padded = f" {word} "
        keys += [f"c:{padded[i:i + n]}" for n in (3, 4) for i in range(len(padded) - n + 1)]
    keys.append(f"bang:{min(lowered.count('!'), 2)}")
    return np.array(sorted({zlib.crc32(k.encode()) % N_FEATURES for k in keys}), dtype=np.int64)


def screen_probability(weights: np.ndarray, bias: float, text: str) -> float:
    """Logistic regression over binary features scaled to unit length (as in training's matrix)."""
    features = screen_features(text)
    logit = bias + float(weights[features].sum()) / math.sqrt(max(1, len(features)))
    return 1.0 / (1.0 + math.exp(-logit))


class ToneScreen:
    """The fast linear screen in front of the tone head: it answers only for prose it is sure is clean."""
    def __init__(self) -> None:
        self.weights: np.ndarray | None = None
        self.bias = 0.0
        self.clear_below = 0.0
        self.model_version: str | None = None

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        """Load the screen's weights, bias and clearing threshold from the registry."""
        artifact = store.load(SCREEN_ARTIFACT, version)
        self.weights = np.load(artifact.file("weights.npy"))
        self.bias = float(artifact.manifest.details["bias"])
        self.clear_below = float(artifact.manifest.details["clear_below"])
        self.model_version = artifact.manifest.version

    def p_cheerleader(self, prose: str) -> float:
        """The screen's P(cheerleader) for ``prose``; ``NotLoadedError`` before ``load``."""
        if self.weights is None:
            raise NotLoadedError("ToneScreen used before load(); build it with: penny-slm models build --only tone-screen")
        return screen_probability(self.weights, self.bias, prose)

    def clears(self, prose: str) -> float | None:
        """P(cheerleader) if the screen is sure the text is not cheerleading, else None (ask the head)."""
        p = self.p_cheerleader(prose)
        return p if p < self.clear_below else None
