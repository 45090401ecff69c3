"""Install the project and its development tools (uv sync)."""

import os
import subprocess
import sys

uv = os.environ.get("SESSIONFIX_UV", "uv")
sys.exit(subprocess.run([uv, "sync"], check=False).returncode)
