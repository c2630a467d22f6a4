"""Keep freed heap memory in the process, so the detector's per-frame buffers stop page-faulting.

OpenCV's DNN module allocates YuNet's intermediate blobs (megabytes at 640x480) on every
forward pass and frees them afterwards. With glibc's default, dynamic thresholds, those frees
can hand the memory back to the kernel (``munmap`` or a heap trim) and the next frame faults
every page in again: measured on ``fer-edge run`` over a 640x480 scene, about 3,500 minor page
faults per frame, 16-19 ms per YuNet call instead of 11-13 ms, and 52-55 fps instead of 69-79
(whether it happens depends on the heap layout, so it came and went between runs). Fixing
the two thresholds keeps the memory for reuse: about 10 faults per frame, and the same peak
resident memory (126 MB against 124 MB), because the same buffers are reused every frame.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap, not from their own ``mmap``: glibc's largest
#: allowed value on 64-bit systems (32 MiB); 32-bit systems (Raspberry Pi OS armhf) allow
#: 16 MiB, tried next.
MMAP_THRESHOLDS = (32 << 20, 16 << 20)
#: Free memory at the top of the heap is returned to the kernel only beyond this.
TRIM_THRESHOLD = 512 << 20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc to keep freed memory for reuse instead of returning it to the kernel.

    Process-wide and idempotent; a no-op (returning ``False``) off Linux or without glibc
    (musl, macOS), where the allocator behaves differently.

    Returns:
        True if the thresholds are set.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Setting either threshold turns off glibc's dynamic adjustment of both; set the mmap
    # threshold first: with only the trim threshold fixed, every block over 128 KiB gets
    # its own mmap and the faults grow (12,000 per frame measured).
    if not any(mallopt(M_MMAP_THRESHOLD, size) for size in MMAP_THRESHOLDS):
        return False
    _applied = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
