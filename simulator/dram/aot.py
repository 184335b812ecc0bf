"""Ahead-of-time build of the fast engine's kernel, so a short replay does not pay Numba's start-up.

Calling a cached `@njit` function for the first time in a process initialises Numba's compiler target
(about 0.6-1 s here, most of it importing SciPy for its BLAS check), even when the machine code comes from
the cache. `python -m simulator.dram.aot` compiles the same source (the kernel's entry
`simulator.dram.fast._run_packed`, with `_run` under it) once into a plain extension module (numba.pycc); a
replay (`run_fast`, `FastEngine(fast_start=True)`) then calls that module and Numba's target is never
initialised. The built code runs about as fast as the JIT's (it ran ~1.3x slower while the kernel
used Numba's runtime); long runs (the system engine) keep the JIT, which they load for the memo anyway. Without a build, or when a kernel source, Numba or Python
changed since the build, the JIT path runs as before: the results are the same either way
(tests/test_aot.py compares them).

The module lives in `$PIMSIM_AOT_DIR` (default `~/.cache/pimsim/aot`), named after a hash of the kernel
sources, the Numba and Python versions, the platform and the CPU, so a stale build is never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import sys
import sysconfig
import time
from pathlib import Path

# the kernel's source and every module whose constants it compiles in (command ids, request kinds, ops)
_SOURCES = tuple(Path(__file__).with_name(n) for n in ("fast.py", "commands.py", "requests.py", "isa.py"))


def cache_dir() -> Path:
    return Path(os.environ.get("PIMSIM_AOT_DIR") or Path.home() / ".cache" / "pimsim" / "aot")


def module_name() -> str:
    from importlib.metadata import version

    h = hashlib.sha256()
    for src in _SOURCES:
        h.update(src.read_bytes())
    h.update(f"{version('numba')}|{sys.version}|{platform.machine()}|{sysconfig.get_platform()}|{_cpu()}".encode())
    return f"pimsim_fast_{h.hexdigest()[:16]}"


def _cpu() -> str:
    """The host CPU model the module is compiled for (read from /proc, so loading needs no LLVM)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return hashlib.sha256(line.encode()).hexdigest()[:8] + line[:40]
    except OSError:
        pass
    return platform.processor()


def _path(name: str) -> Path:
    return cache_dir() / (name + importlib.machinery.EXTENSION_SUFFIXES[0])


def load():
    """The built kernel's `run` function, or None if there is no build for the current source."""
    path = _path(module_name())
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(path.stem.split(".")[0], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run


def _signature():
    """The kernel's argument types, taken from a real call's arguments (they do not depend on the config)."""
    from numba import typeof, types

    from simulator.config import load_arch
    from simulator.dram.fast import FastEngine

    eng = FastEngine(load_arch("aim_gddr6"))
    z1 = __import__("numpy").zeros(1, "int64")
    args = eng.kernel_args(z1, z1, z1, z1, z1, False, None)
    tys = []
    for a in args:
        t = typeof(a)
        if isinstance(t, types.Array):  # C-contiguous, as the JIT specialises (strided indexing is slower)
            t = types.Array(t.dtype, t.ndim, "C")
        elif isinstance(t, types.Integer):
            t = types.int64
        tys.append(t)
    return types.Tuple((types.int64, types.int64))(*tys)


def build() -> Path:
    """Compile the kernel into the cache directory (a few minutes); returns the module's path."""
    from numba.pycc import CC

    from simulator.dram import fast

    name = module_name()
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    cc = CC(name)
    cc.output_dir = str(out)
    cc.verbose = False
    cc.target_cpu = "host"  # as the JIT does; the module name records the CPU, so it is rebuilt elsewhere
    cc.export("run", _signature())(fast.jit_kernels().py_func)
    cc.compile()
    return _path(name)


def main() -> int:
    t0 = time.perf_counter()
    path = build()
    print(f"built {path} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
