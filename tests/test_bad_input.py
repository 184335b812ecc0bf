"""Bad input gives one clear line (file, line/field, problem) and exit code 2, never a traceback;
fuzzed configs and ISR traces are either accepted or rejected with such a line."""

import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.config import load_arch
from simulator.config.loader import SHIPPED_DIR, apply_overrides, validate_arch
from simulator.errors import PimsimError
from simulator.trace.isr import parse_isr

ORG = load_arch("aim_gddr6").organisation
GOOD = "AiM MAC_ABK 64 0xffffffff 0\nAiM EOC\n"


@pytest.mark.parametrize("text,needle", [
    ("AiM MAC_ABK 64 0xffffffff\nAiM EOC\n", ":1: AiM MAC_ABK takes 3 argument(s)"),
    ("AiM FOO 1 2\nAiM EOC\n", ":1: unknown AiM instruction 'FOO'"),
    ("X Y\nAiM EOC\n", ":1: unknown instruction 'X Y'"),
    ("AiM MAC_ABK 0 0xffffffff 0\nAiM EOC\n", ":1: opsize: must be a column count from 1 to 64, got 0"),
    ("AiM MAC_ABK 65 0xffffffff 0\nAiM EOC\n", ":1: opsize: must be a column count from 1 to 64, got 65"),
    ("# c\nAiM MAC_ABK 1 0xffffffff 16384\nAiM EOC\n", ":2: row: must be in 0..16383, got 16384"),
    ("AiM MAC_ABK 1 0xffffffff 0\n", "missing 'AiM EOC'"),
    ("AiM MAC_ABK 1 0x1ffffffff 0\nAiM EOC\n", ":1: chmask"),
    ("AiM MAC_ABK 1 zz 0\nAiM EOC\n", ":1: chmask: expected a decimal or 0x-hex number, got 'zz'"),
    ("AiM WR_ABK 0 0x3 0\nAiM EOC\n", ":1: chmask: WR_ABK targets exactly one channel"),
    ("AiM EOC\nAiM EOC\n", ":2: instruction after 'AiM EOC'"),
    ("AiM MAC_SBK 1 0x1 16 0\nAiM EOC\n", ":1: bank: must be in 0..15, got 16"),
])
def test_bad_isr_one_line(tmp_path, capsys, text, needle):
    f = tmp_path / "t.isr"
    f.write_text(text)
    assert main(["replay", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert needle in err and str(f) in err


def test_bad_config_field_named(tmp_path, capsys):
    f = tmp_path / "x.yaml"
    f.write_text("base: aim_gddr6\ntiming:\n  nRCDRDMAC: -3\n")
    trace = tmp_path / "t.isr"
    trace.write_text(GOOD)
    assert main(["replay", str(trace), "--arch", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pimsim: error: {f}: timing.nRCDRDMAC: must be a positive integer, got -3"


@pytest.mark.parametrize("text,needle", [
    ("timing:\n  nRCDRDMACC: 3\n", "timing.nRCDRDMACC: unknown key"),
    ("organisation: [1, 2]\n", "organisation"),
    ("timing:\n  nRP: two\n", "timing.nRP: must be an integer"),
    ("refresh:\n  enabled: maybe\n", "refresh.enabled: must be true or false"),
    ("a: [unclosed\n", "YAML syntax error at line"),
    ("- 1\n- 2\n", "top level must be a mapping"),
    ("base: no_such_preset\n", "no_such_preset: arch config not found"),
    ("organisation:\n  columns: 1000\n", "must be a multiple of access_bytes"),
])
def test_bad_config_files(tmp_path, text, needle):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(PimsimError) as exc:
        load_arch(f)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_overrides_from_cli_and_python(tmp_path, capsys):
    cfg = load_arch("pim_gpt", ["organisation.channels=16", "timing.nRP=40"])
    assert cfg.organisation.channels == 16 and cfg.timing.nRP == 40 and cfg.organisation.banks == 16
    trace = tmp_path / "t.isr"
    trace.write_text("AiM MAC_ABK 64 0xffff 0\nAiM EOC\n")
    assert main(["replay", str(trace), "--set", "organisation.channels=16", "--json"]) == 0
    assert '"cycles": 185' in capsys.readouterr().out
    assert main(["replay", str(trace), "--set", "organisation.channels"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def _mutate(rng, data):
    data = yaml.safe_load(yaml.safe_dump(data))
    section = rng.choice(list(data))
    if isinstance(data[section], dict) and data[section] and rng.random() < 0.8:
        key = rng.choice(list(data[section]))
        data[section][key] = rng.choice([-3, 0, 1, 2**40, "x", None, [], {}, 1.5, True, -0.5, "0x10"])
    elif rng.random() < 0.5:
        data[section] = rng.choice([None, 3, "s", [1], {"bogus": 1}])
    else:
        data[rng.choice(["bogus", "timing", "organisation"])] = {"nRP": rng.choice([1, -1, "a"])}
    return data


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_configs(seed):
    rng = random.Random(seed)
    base = yaml.safe_load((SHIPPED_DIR / "aim_gddr6.yaml").read_text())
    data = _mutate(rng, base)
    try:
        validate_arch(data, "fuzz.yaml")
    except PimsimError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz.yaml: ")
    for _ in range(2):
        try:
            apply_overrides(base, [f"{rng.choice(['timing.nRP', 'organisation', 'a.b.c', ''])}={rng.random()}"])
        except PimsimError as err:
            assert "\n" not in str(err)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_isr_traces(seed):
    rng = random.Random(seed)
    lines = ["AiM MAC_ABK 64 0xffffffff 3", "AiM WR_GB 2 0 0x1", "AiM RD_MAC 0 0x3", "R MEM 1 2 3",
             "W CFR 0 1", "AiM EOC", "AiM WR_ABK 0 0x4 9", "AiM SYNC", "AiM COPY_BKGB 4 0xf 2 7"]
    text = "\n".join(rng.choice(lines) for _ in range(rng.randint(0, 6)))
    chars = list(text)
    for _ in range(rng.randint(0, 4)):
        if chars and rng.random() < 0.5:
            del chars[rng.randrange(len(chars))]
        else:
            chars.insert(rng.randrange(len(chars) + 1), rng.choice("0123456789x -#\nAMCEOabf\t"))
    try:
        parse_isr("".join(chars), ORG, source="fuzz.isr")
    except PimsimError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz.isr")
