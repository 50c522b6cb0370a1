"""What every benchmark prints about the machine it ran on."""

import os


def load() -> str:
    """`uptime`: the load average next to a timing."""
    return os.popen("uptime").read().strip()


def cpu() -> str:
    """The processor's model name from `lscpu`."""
    for ln in os.popen("lscpu").read().splitlines():
        if ln.startswith("Model name"):
            return ln.split(":", 1)[1].strip()
    return "unknown CPU"
