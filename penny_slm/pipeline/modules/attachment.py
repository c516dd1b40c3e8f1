"""The over-attachment head: P(a message is over-attachment) for a user or an assistant message (issue 19).

An assistant message is over-attachment when it fosters dependency, discourages the user's other relationships,
claims needs or feelings for the user, guilts them about leaving or escalates intimacy; a user message when it shows
dependency on the assistant. Warm support, a lonely user encouraged toward people, and figures of speech are not
(docs/DATA.md, "Over-attachment head", has the labelling rules of every source).

The head reads ``"<role>: <text>"`` (:func:`attachment_input`), so one encoder pass tells the two roles apart.
A long message is cut into windows of whole sentences (:data:`WINDOW_WORDS`) and scored as its most attached
window: the head is trained on short messages, and an attached sentence in the middle of a long reply would
otherwise fall outside the encoder's 128 tokens. ``threshold`` is the decision point chosen at build time on the
development split of the training sources (stored in the manifest); probabilities are temperature-calibrated there.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import EncoderHeadModule
from penny_slm.rules.prohibitions import CODE, sentence_spans

ATTACHMENT_ARTIFACT = "attachment"
Role = Literal["user", "assistant"]
ROLES: tuple[Role, ...] = ("user", "assistant")
WINDOW_WORDS = 60
"""Words per window of a long message (whole sentences; a longer sentence is a window of its own)."""
MAX_WINDOWS = 8
"""Windows scored per message (the first ones): bounds the cost of one check on a very long reply."""


def attachment_input(text: str, role: str) -> str:
    """What the head reads for one message: its role, then its prose (code blocks and spans left out)."""
    return f"{role}: {' '.join(CODE.sub(' ', text).split())}"


def windows(text: str, words: int = WINDOW_WORDS, limit: int = MAX_WINDOWS) -> list[str]:
    """``text`` as consecutive runs of whole sentences of at most ``words`` words each (at most ``limit`` of them)."""
    sentences = [text[a:b].strip() for a, b in sentence_spans(text)] or [text]
    out: list[str] = []
    current: list[str] = []
    for sentence in (s for s in sentences if s):
        if current and len(" ".join([*current, sentence]).split()) > words:
            out.append(" ".join(current))
            current = []
        current.append(sentence)
    if current:
        out.append(" ".join(current))
    return out[:limit] or [text]


class AttachmentScorer(EncoderHeadModule):
    """P(over-attachment) of one message from the calibrated ``attachment`` head, and the build's decision threshold."""

    default_artifact: ClassVar[str] = ATTACHMENT_ARTIFACT
    threshold: float = 0.5

    def load(self, store: ModelRegistry, version: str | None = None) -> None:
        """The head and the threshold its build chose on the training sources' development split."""
        artifact = store.load(self.artifact, version)
        self.load_files(artifact.file("model.onnx"), artifact.file("tokenizer.json"),
                        float(artifact.manifest.details["temperature"]), artifact.manifest.version)
        self.threshold = float(artifact.manifest.details.get("threshold", 0.5))

    def p_over_attachment(self, text: str, role: str) -> float:
        """P(over-attachment) of a ``role`` message: the highest over its windows (0 for a message with no prose), each
        window scored alone (``encode_each``: in one padded batch a window's score moved with its neighbours, up to 0.12
        on Spiral-Bench replies; docs/MEASUREMENTS.md)."""
        self.require_loaded()
        prose = " ".join(CODE.sub(" ", text).split())
        if not prose:
            return 0.0
        outputs = self.encode_each([attachment_input(w, role) for w in windows(prose)])
        return max(float(self.calibrated(o.logits["attachment"])[1]) for o in outputs)

    def flags(self, text: str, role: str) -> bool:
        """True when the message's probability reaches the build's threshold."""
        return self.p_over_attachment(text, role) >= self.threshold
