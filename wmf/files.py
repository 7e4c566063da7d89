"""Names of the files a train output and its checkpoints hold.

Here rather than in `wmf.model` so that planning a stage (which looks for them) does not
import torch: ~1.5-2 s of every unchanged rerun.
"""

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
