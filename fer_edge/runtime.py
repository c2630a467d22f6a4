"""The one place that chooses a TFLite interpreter.

Order: ``ai_edge_litert`` (LiteRT, current), then ``tflite_runtime`` (frozen at 2.14, needs
numpy<2), then ``tf.lite`` (full TensorFlow). Speed differs a lot between them (int8 can be
slower than float on tflite-runtime), so the chosen runtime and its version are reported with
every number.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fer_edge.errors import FerEdgeError, first_line
from fer_edge.quiet import runtime_chatter

RUNTIMES: tuple[str, ...] = ("litert", "tflite_runtime", "tf")
RUNTIME_CHOICES: tuple[str, ...] = ("auto", *RUNTIMES)
#: Environment variable that overrides ``auto`` (useful where a runtime is known to crash).
RUNTIME_ENV = "FER_EDGE_RUNTIME"
EDGETPU_LIBRARY = "libedgetpu.so.1"
#: Interpreter threads allowed per CPU. More only adds contention, and a huge count crashes
#: the interpreter (``--threads 100000`` segfaulted in LiteRT 2.3).
THREADS_PER_CPU = 4


def usable_cores() -> int:
    """Return the CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_average() -> float | None:
    """Return the 1-minute load average, or ``None`` where the OS does not report one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def max_threads() -> int:
    """Return the largest ``--threads`` accepted on this machine."""
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def check_threads(threads: int | None) -> None:
    """Refuse a thread count below 1 or above :func:`max_threads`.

    Raises:
        FerEdgeError: naming ``--threads``.
    """
    if threads is not None and not 1 <= threads <= max_threads():
        raise FerEdgeError(
            f"--threads: must be 1-{max_threads()} ({THREADS_PER_CPU} per CPU here), got {threads}"
        )


_INSTALL_HINTS = {
    "litert": "pip install ai-edge-litert",
    "tflite_runtime": "pip install tflite-runtime 'numpy<2'",
    "tf": "pip install 'fer-edge[train]'",
}


@dataclass(frozen=True)
class Runtime:
    """A loaded TFLite runtime.

    Attributes:
        name: one of :data:`RUNTIMES`.
        version: the installed package version.
        interpreter_class: the runtime's ``Interpreter`` class.
        load_delegate: the runtime's ``load_delegate`` function.
    """

    name: str
    version: str
    interpreter_class: type
    load_delegate: Callable[..., Any]

    def interpreter(
        self,
        model_path: str | None = None,
        model_content: bytes | None = None,
        threads: int | None = None,
        delegate: str | None = None,
    ) -> Any:
        """Create an interpreter with tensors allocated.

        Args:
            model_path: a ``.tflite`` file (or pass ``model_content``).
            model_content: the model bytes.
            threads: CPU threads (``None``: the runtime's default).
            delegate: ``"edgetpu"`` to run on a Coral Edge TPU, or ``None``.

        Raises:
            FerEdgeError: the delegate cannot be loaded or the model is not a TFLite model.
        """
        check_threads(threads)
        if delegate not in (None, "edgetpu"):
            raise FerEdgeError(f"--delegate: unknown delegate {delegate!r} (known: edgetpu)")
        delegates = [self._edgetpu()] if delegate == "edgetpu" else None
        try:
            with runtime_chatter():
                interp = self.interpreter_class(
                    model_path=model_path,
                    model_content=model_content,
                    num_threads=threads,
                    experimental_delegates=delegates,
                )
                interp.allocate_tensors()
        except ValueError as exc:
            where = model_path or "model"
            raise FerEdgeError(f"{where}: not a usable TFLite model ({first_line(exc)})") from None
        return interp

    def _edgetpu(self) -> Any:
        # A Delegate whose library failed to load is half-built, and its __del__ then raises
        # AttributeError, which Python prints as a traceback after our one-line error. Let
        # it die here, before raising ours, with that one report silenced.
        hook = sys.unraisablehook
        sys.unraisablehook = _ignore_delegate_del(hook)
        try:
            try:
                return self.load_delegate(EDGETPU_LIBRARY)
            except (ValueError, OSError) as exc:
                reason = str(exc).replace("\n", " ")
            gc.collect()  # the traceback (and the half-built Delegate) is gone with ``exc``
        finally:
            sys.unraisablehook = hook
        raise FerEdgeError(
            f"--delegate edgetpu: cannot load {EDGETPU_LIBRARY} ({reason}); install the Edge TPU "
            "runtime (apt-get install libedgetpu1-std) and plug in the Coral device"
        )

    def describe(self) -> str:
        """Return e.g. ``litert 2.3.0``."""
        return f"{self.name} {self.version}"


def _ignore_delegate_del(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    def filtered(unraisable: Any) -> object:
        where = getattr(unraisable.object, "__qualname__", "")
        if isinstance(unraisable.exc_value, AttributeError) and where == "Delegate.__del__":
            return None
        return hook(unraisable)

    return filtered


def _require_numpy_1() -> None:
    # tflite-runtime 2.14 (the last release) was built against numpy 1 but does not say so:
    # under numpy 2 it imports, then dies inside the interpreter with a SystemError.
    numpy_version = importlib.metadata.version("numpy")
    if int(numpy_version.split(".")[0]) >= 2:
        raise ImportError(f"tflite-runtime needs numpy<2, found numpy {numpy_version}")


#: The standalone interpreters: runtime name -> (module with Interpreter, distribution name).
_STANDALONE = {
    "litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
}


def _import(name: str) -> Runtime:
    if name in _STANDALONE:
        module_name, distribution = _STANDALONE[name]
        module = importlib.import_module(module_name)
        if name == "tflite_runtime":
            _require_numpy_1()
        return Runtime(
            name,
            importlib.metadata.version(distribution),
            module.Interpreter,
            module.load_delegate,
        )
    check_runtime_name(name)
    tf = importlib.import_module("tensorflow")
    return Runtime(name, tf.__version__, tf.lite.Interpreter, tf.lite.experimental.load_delegate)


def check_runtime_name(name: str) -> str:
    """Return ``name`` if it is a runtime choice, else raise the one ``--runtime`` error.

    Raises:
        FerEdgeError: ``name`` is not one of :data:`RUNTIME_CHOICES`.
    """
    if name not in RUNTIME_CHOICES:
        raise FerEdgeError(
            f"--runtime: unknown runtime {name!r}; choose from {', '.join(RUNTIME_CHOICES)}"
        )
    return name


def load_runtime(name: str = "auto") -> Runtime:
    """Load a TFLite runtime by name, or the first that imports for ``"auto"``.

    ``auto`` honours the ``FER_EDGE_RUNTIME`` environment variable when it is set.

    Raises:
        FerEdgeError: the named runtime (or, for ``auto``, every runtime) fails to import; the
            message says how to install one.
    """
    if name == "auto":
        name = os.environ.get(RUNTIME_ENV, "auto") or "auto"
    order = RUNTIMES if check_runtime_name(name) == "auto" else (name,)
    failures = []
    for candidate in order:
        try:
            return _import(candidate)
        # A runtime built against numpy 1 raises more than ImportError under numpy 2.
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{candidate}: {type(exc).__name__}: {first_line(exc)}")
    hints = "; or ".join(_INSTALL_HINTS[c] for c in order)
    raise FerEdgeError(f"no usable TFLite runtime ({' | '.join(failures)}); install one: {hints}")
