"""Calibrate the drift monitor's CUSUM thresholds on simulated clean streams (docs/MEASUREMENTS.md, "Drift").

Per-turn channel scores of the clean development streams (penny_slm/training/data/drift_dev.jsonl) are resampled
into long simulated clean streams; for each channel the smallest threshold h >= its cap whose mean run length to a
false alarm (ARL0) reaches the target is printed, with the ARL0 measured again on fresh draws. Copy the values into
``CHANNELS`` in penny_slm/pipeline/modules/drift.py (with --attachment-head: the attachment line into
``ATTACHMENT_HEAD_CHANNEL``).
Usage: python scripts/calibrate_drift.py [TARGET_ARL0_TURNS=2000] [--tone-head] [--attachment-head]
(each --...-head needs that head built in the configured models folder)
"""

import sys
from pathlib import Path

from penny_slm.pipeline.modules.drift import DriftMonitor
from penny_slm.training.drift_eval import calibrate, clean_scores, load_streams

args = [a for a in sys.argv[1:] if not a.startswith("--")]
target = float(args[0]) if args else 2000.0
tone, attachment = "--tone-head" in sys.argv, "--attachment-head" in sys.argv
monitor = DriftMonitor(use_tone_head=tone, use_attachment_head=attachment)
if tone or attachment:
    from penny_slm.cli import _registry
    from penny_slm.config import load_config
    monitor.load(_registry(load_config()))
    assert monitor.tone_loaded or not tone, "no tone head built: penny-slm models build --only tone"
    assert monitor.attachment_loaded or not attachment, "no attachment head built: penny-slm models build --only attachment"
streams = load_streams(Path(__file__).parents[1] / "penny_slm/training/data/drift_dev.jsonl")
scores = clean_scores(monitor, streams)
print(f"target ARL0 {target:.0f} turns per channel; {len(scores['tone_up'])} clean dev turns; tone head: {monitor.tone_loaded}; "
      f"attachment head: {monitor.attachment_loaded}")
for c in monitor.channels:
    h, arl = calibrate(scores[c.name], c.k, c.cap, target)
    print(f'    Channel("{c.name}", "{c.drift_type}", {c.k}, {c.cap}, {h}, {arl:.0f}),')
