"""Create the project's virtual environment (uv venv)."""

import os
import subprocess
import sys

uv = os.environ.get("SESSIONFIX_UV", "uv")
sys.exit(subprocess.run([uv, "venv", "--quiet", "--allow-existing"], check=False).returncode)
