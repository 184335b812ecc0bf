import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # tests/isr_gen.py

# CI is deterministic: the same checkout draws the same examples (a red run can be reproduced, a green one
# is not luck). PIMSIM_HYPOTHESIS=explore draws fresh random examples, for hunting counterexamples locally.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("PIMSIM_HYPOTHESIS") == "explore" else "ci")
