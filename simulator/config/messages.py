"""The one translator of pydantic validation errors into one-line user messages (`file: field: problem`).

Every typed input (arch config sections, sweep specs, ASIC and energy sections) reports its first error
through `pydantic_message`, so the same mistake reads the same everywhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from simulator.errors import clip

#: pydantic's tags for members of a union; they are not part of the user's path
_TAGS = frozenset({"bool", "int", "float", "str", "none", "dict", "list", "Axis", "Zip", "Compare",
                   "function-after", "function-before", "function-plain", "function-wrap"})


def _got(value: Any) -> str:
    return clip(repr(value), 60)


def location(loc: tuple, prefix: str = "") -> str:
    """`('timing', 'nRP')` -> `timing.nRP`; list indices as `[i]`; union tags dropped."""
    parts: list[str] = [prefix] if prefix else []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p in _TAGS or "[" in str(p):
            continue
        else:
            parts.append(str(p))
    return ".".join(parts).replace(".[", "[")


def describe(err: dict, docs: str = "docs/configuration.md") -> str:
    """What is wrong with one pydantic error, in words, with the offending value."""
    kind, ctx, got = err.get("type", ""), err.get("ctx") or {}, err.get("input")
    tagged = any(p in _TAGS for p in err.get("loc", ()) if isinstance(p, str))
    if tagged and kind in ("bool_type", "int_type", "float_type", "string_type", "none_required"):
        return f"must be a plain value (number, string, true/false or null), got {_got(got)}"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key (check the spelling; see {docs})"
    if kind in ("missing", "missing_argument"):
        return "missing required field"
    if kind == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ")
    if kind == "finite_number":
        return f"must be a finite number, got {_got(got)}"
    bounds = {"greater_than": "greater than {gt}", "greater_than_equal": "at least {ge}",
              "less_than": "less than {lt}", "less_than_equal": "at most {le}"}
    if kind in bounds:
        number = any(isinstance(v, float) for v in ctx.values())
        noun = "a number" if number else "an integer"
        if ctx.get("gt") == 0 or (ctx.get("ge") == 1 and not number):
            return f"must be a positive {noun.split()[-1]}, got {_got(got)}"
        if ctx.get("ge") == 0:
            return f"must be a non-negative {noun.split()[-1]}, got {_got(got)}"
        return f"must be {noun} {bounds[kind].format(**ctx)}, got {_got(got)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer (not true/false, text or a fraction), got {_got(got)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {_got(got)}"
    if kind in ("float_type", "float_parsing"):
        hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(got, str) else ""
        return f"must be a number{hint}, got {_got(got)}"
    if kind == "string_too_short":
        loc = err.get("loc", ())
        why = " (name the datasheet, paper or measurement, or mark [estimate])" if loc and loc[-1] == "source" else ""
        return f"must not be empty{why}"
    if kind == "string_type":
        return f"must be a non-empty string, got {_got(got)}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', '?')}, got {_got(got)}"
    if kind in ("model_type", "dict_type", "model_attributes_type", "dataclass_type"):
        return f"must be a mapping of keys to values, got {_got(got)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {_got(got)}"
    if kind == "too_short":
        return f"must not be empty, got {_got(got)}"
    msg = str(err.get("msg", "invalid value"))
    return msg if isinstance(got, (dict, list)) else f"{msg}, got {_got(got)}"


def pydantic_message(exc: ValidationError, source: str, prefix: str = "", docs: str = "docs/configuration.md") -> str:
    """`source: field: problem` for the first error of `exc` (an unknown key first: a misspelt key is usually
    also the cause of a 'missing' one)."""
    errors = exc.errors()
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    where = location(err.get("loc", ()), prefix)
    return f"{source}: {where + ': ' if where else ''}{describe(err, docs)}"
