"""Run the generated multi-instance test suite once (uv run pytest)."""

import os
import subprocess
import sys

uv = os.environ.get("SESSIONFIX_UV", "uv")
sys.exit(subprocess.run([uv, "run", "pytest", "-q"], check=False).returncode)
