"""The native entry of a compiled Numba overload, for calls made many times with arguments of one type.

A Numba dispatcher types every argument on every call (~0.1-0.2 us an array) before it picks the overload;
the device engine's tile and memo calls, ~1000 per GPT2-XL token, always pass the same types, so after the
first call through the dispatcher they call the overload's entry directly.
"""

from __future__ import annotations


def compiled_entry(k, args: tuple):
    """The native entry of the dispatcher `k`'s overload for these argument types, or `k` itself (an
    ahead-of-time build, or no exact overload). The entry unboxes its arguments by that signature without
    checking them: a caller must pass the same types as `args` on every call (C-contiguous int64 arrays of
    the same dimensions, integers)."""
    overloads = getattr(k, "overloads", None)
    if overloads is None:
        return k
    from numba import typeof

    cres = overloads.get(tuple(typeof(v) for v in args))
    return k if cres is None else cres.entry_point
