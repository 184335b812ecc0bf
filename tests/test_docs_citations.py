"""The repository stands alone: every `docs/...` page that code, configs or docs cite exists, every relative
link in the docs resolves, and the docs cite no file that lives outside the repository."""

import re
from pathlib import Path

import pytest

from simulator.config import schema

ROOT = Path(__file__).resolve().parents[1]
CITING = ["simulator", "tests", "benchmarks", "notebooks", "arch_configs", "docs"]
EXTERNAL = re.compile(r"ARCHITECTURE\.md|aim-isa\.md|pim-gpt\.md|\.\./shared|shared/reference")
# directories whose files must cite docs/ only
SELF_CONTAINED = CITING
# `docs/...` paths that name another project's documentation, not ours
OTHER_PROJECTS = {("simulator/compress/gguf.py", "gguf.md")}  # the ggml repository's gguf.md


def _files(dirs, suffixes=(".py", ".md", ".yaml", ".yml", ".ipynb")):
    out = [ROOT / "README.md"]
    for d in dirs:
        out += [p for p in sorted((ROOT / d).rglob("*")) if p.suffix in suffixes and p.is_file()]
    return out


def test_every_cited_docs_page_exists():
    missing = set()
    for path in _files(CITING):
        # a docs/ path inside a URL or another path (.../FasterTransformer/blob/main/docs/x.md) is not ours
        for name in re.findall(r"(?<![/\w])docs/([\w.-]+\.md)\b", path.read_text(encoding="utf-8")):
            if not (ROOT / "docs" / name).is_file() and (str(path.relative_to(ROOT)), name) not in OTHER_PROJECTS:
                missing.add(f"{path.relative_to(ROOT)} cites docs/{name}")
    assert not missing, sorted(missing)


@pytest.mark.parametrize("path", _files(["docs"], (".md",)), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link {target}"


def test_docs_cite_nothing_outside_the_repository():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _files(SELF_CONTAINED) if p != Path(__file__).resolve()
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if EXTERNAL.search(line)]
    assert not hits, hits


def test_configuration_page_names_every_config_key():
    """docs/configuration.md (where an unknown-key error points) lists every key the schema accepts."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    sections = {"organisation": schema.Organisation, "timing": schema.Timing, "completion": schema.Completion,
                "refresh": schema.Refresh, "controller": schema.Controller, "mac": schema.MacUnit}
    missing = [f"{sec}.{key}" for sec, model in sections.items() for key in model.model_fields
               if f"`{key}`" not in text and f"`{sec}.{key}`" not in text]
    missing += [f"`{sec}`" for sec in schema.ArchConfig.model_fields if f"`{sec}`" not in text]
    assert not missing, missing
