"""Register the 'evsched' Jupyter kernel inside .venv (sys-prefix), quiet at start-up.

The kernel is launched with ``--IPKernelApp.log_level=ERROR`` so that papermill runs are not
interleaved with ipykernel's start-up warning about unencrypted local TCP transport.
"""
import json
import subprocess
import sys
from pathlib import Path

NAME = "evsched"
subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", NAME,
                "--display-name", "Python (evsched)"], check=True, capture_output=True)
spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / NAME / "kernel.json"
data = json.loads(spec.read_text())
if "--IPKernelApp.log_level=ERROR" not in data["argv"]:
    data["argv"].append("--IPKernelApp.log_level=ERROR")
spec.write_text(json.dumps(data, indent=1))
print(f"registered Jupyter kernel '{NAME}' ({spec.parent})")
