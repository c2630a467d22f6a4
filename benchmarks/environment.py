"""What machine and library versions produced a benchmark number.

Int8 speed depends on the runtime and the CPU (tflite-runtime 2.14 runs int8 slower than float
on x86, LiteRT with XNNPACK faster), so every report carries this record.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.runtime import load_average, usable_cores

# ARM's "CPU part" ids of the cores found in Raspberry Pis and similar boards.
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2",
}


@dataclass(frozen=True)
class Environment:
    """The machine and software a benchmark ran on.

    Attributes:
        cpu: the CPU model (``/proc/cpuinfo`` or ``platform``), e.g. ``AMD EPYC`` or
            ``Cortex-A72``.
        board: the board model where the kernel knows it (``Raspberry Pi 4 Model B``), or ``""``.
        machine: the architecture (``x86_64``, ``aarch64``).
        cores: logical CPUs in the machine.
        usable_cores: CPUs this process may run on (containers and ``taskset`` limit it).
        load_1m: the 1-minute load average when the run started; a busy machine is slower.
        os: the operating system and kernel release.
        python: the Python version.
        numpy: the numpy version.
        opencv: the OpenCV version.
        packages: versions of the TFLite runtimes installed (not necessarily used).
    """

    cpu: str
    board: str
    machine: str
    cores: int
    usable_cores: int
    load_1m: float | None
    os: str
    python: str
    numpy: str
    opencv: str
    packages: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """Return one line, e.g. ``AMD EPYC (x86_64, 2 cores), numpy 2.4.0, OpenCV 4.14.0``."""
        board = f"{self.board}, " if self.board else ""
        return (
            f"{board}{self.cpu} ({self.machine}, {self.usable_cores}/{self.cores} cores), "
            f"Python {self.python}, numpy {self.numpy}, OpenCV {self.opencv}"
        )


def parse_cpuinfo(text: str) -> str:
    """Return the CPU model named in the text of ``/proc/cpuinfo``, or ``""``.

    x86 kernels give ``model name``; ARM kernels give ``CPU part`` ids (mapped to core
    names) and sometimes ``Hardware`` or ``Model``.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    if "model name" in fields:
        return fields["model name"]
    part = fields.get("cpu part", "").lower()
    if part:
        return _ARM_PARTS.get(part, f"ARM part {part}")
    return fields.get("hardware", "") or fields.get("cpu model", "")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_environment() -> Environment:
    """Describe this machine and the installed numpy, OpenCV and TFLite runtimes.

    Nothing here imports a runtime: versions come from package metadata, so recording the
    environment never pulls TensorFlow into a device process.
    """
    import cv2
    import numpy as np

    cores = os.cpu_count() or 1
    usable = usable_cores()
    load = load_average()
    cpu = parse_cpuinfo(_read("/proc/cpuinfo")) or platform.processor() or platform.machine()
    board = _read("/proc/device-tree/model").strip("\x00\n ")
    packages = {
        name: version
        for name in ("ai-edge-litert", "tflite-runtime", "tensorflow")
        if (version := _version(name))
    }
    return Environment(
        cpu=cpu,
        board=board,
        machine=platform.machine(),
        cores=cores,
        usable_cores=usable,
        load_1m=load,
        os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        numpy=np.__version__,
        opencv=cv2.__version__,
        packages=packages,
    )
