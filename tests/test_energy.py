"""Energy model: every term against a hand-computed value, config errors, v1/v2 variants, the shipped table."""

from __future__ import annotations

import copy

import pytest
import yaml

from simulator.energy import (
    COMPONENTS, SHIPPED_TABLE, EnergyInputs, build_table, compute_energy, energy_config_from_data,
    load_energy_config, load_energy_table,
)
from simulator.errors import PimsimError


def c(v, s="test"):
    return {"value": v, "source": s}


# Round numbers so every expected value below can be checked by hand.
SECTION = {
    "name": "hand",
    "dram": {
        "vdd_v": c(1.0), "idd0_ma": c(150), "idd2n_ma": c(100), "idd3n_ma": c(120), "idd4r_ma": c(620),
        "idd4w_ma": c(520), "idd5b_ma": c(320), "t_ras_ns": c(30), "t_rp_ns": c(20), "t_burst_ns": c(1),
        "t_rfc_ns": c(100), "banks": c(16), "bank_local_fraction": c(0.5), "e_tmod_pj": c(10),
    },
    "pim": {"mac_lanes_per_bank": c(16), "e_mac_bf16_pj": c(2.0), "e_mul_bf16_pj": c(1.0)},
    "link": {"e_io_pj_per_bit": c(4.0)},
    "asic": {"e_op_pj": {"add": c(1.0), "exp": c(10.0)}, "e_operand_access_pj": c(0.5),
             "p_active_mw": c(20), "p_leakage_mw": c(10)},
}
# Hand-derived (mA x V x ns = pJ):
E_ACT = (150 - 120) * 1.0 * 30      # 900 pJ
E_PRE = (150 - 100) * 1.0 * 20      # 1000 pJ
E_RD = (620 - 120) * 1.0 * 1        # 500 pJ
E_WR = (520 - 120) * 1.0 * 1        # 400 pJ
E_REF = (320 - 120) * 1.0 * 100     # 20000 pJ


@pytest.fixture()
def table():
    return build_table(energy_config_from_data(copy.deepcopy(SECTION), "hand.yaml"))


def inputs(**kw):
    base = dict(commands={}, cycles=0, tck_ns=0.5, channels=8, banks_per_channel=16, bank_open_cycles=0,
                link_bits=0, asic_ops={}, asic_active_cycles=0, asic_clock_ghz=1.0, tokens=1)
    base.update(kw)
    return EnergyInputs(**base)


def test_derived_idd_energies(table):
    d = table.derived
    assert d["e_act_pj"] == pytest.approx(900)
    assert d["e_pre_pj"] == pytest.approx(1000)
    assert d["e_rd_col_pj"] == pytest.approx(500)
    assert d["e_wr_col_pj"] == pytest.approx(400)
    assert d["e_ref_pj"] == pytest.approx(20000)
    assert table.p_act_bg_mw == pytest.approx(120)
    assert table.p_pre_bg_mw == pytest.approx(100)


@pytest.mark.parametrize("cmd,expected_pj", [
    ("ACT", E_ACT), ("PRE", E_PRE), ("ACT16", 16 * E_ACT), ("PREA", 16 * E_PRE),
    ("ACT4", 4 * E_ACT), ("PRE4", 4 * E_PRE), ("RD", E_RD), ("WR", E_WR),
    ("MAC16", 16 * (0.5 * E_RD + 16 * 2.0)),    # 16 banks x (250 pJ array + 32 pJ MAC) = 4512 pJ
    ("MAC", 0.5 * E_RD + 16 * 2.0),             # 282 pJ
    ("AF16", 16 * 0.5 * E_RD),                  # 4000 pJ
    ("EWMUL16", 16 * (0.5 * E_RD + 16 * 1.0)),  # 4256 pJ
    ("WRGB", 0.5 * E_WR), ("WRMAC16", 0.5 * E_WR), ("RDMAC16", 0.5 * E_RD), ("RDAF16", 0.5 * E_RD),
    ("RDCP", E_RD), ("WRCP", E_WR),
    ("WRA16", 16 * 0.5 * E_WR + 0.5 * E_WR + 16 * E_PRE),  # 3200 + 200 + 16000
    ("REFab", E_REF), ("REFpb", E_REF / 16), ("TMOD", 10.0), ("SYNC", 0.0), ("EOC", 0.0),
])
def test_each_command_energy(table, cmd, expected_pj):
    r = compute_energy(inputs(commands={cmd: 3}), table)
    assert r.by_command_j[cmd] == pytest.approx(3 * expected_pj * 1e-12)
    assert r.total_j == pytest.approx(3 * expected_pj * 1e-12)


def test_background_uses_clock_period(table):
    # 1000 cycles x 8 channels; 3000 channel-cycles with a row open: 3000 x 0.5 ns x 120 mW + 5000 x 0.5 ns x 100 mW
    r = compute_energy(inputs(cycles=1000, bank_open_cycles=3000), table)
    expected = (3000 * 0.5 * 120 + 5000 * 0.5 * 100) * 1e-12  # 180000 + 250000 pJ = 4.3e-7 J
    # leakage: 10 mW x 1000 x 0.5 ns = 5000 pJ
    assert r.breakdown_j["dram_background"] == pytest.approx(expected)
    assert r.breakdown_j["asic_leakage"] == pytest.approx(5000e-12)
    # the same run at twice the clock period costs twice the time-proportional energy
    r2 = compute_energy(inputs(cycles=1000, bank_open_cycles=3000, tck_ns=1.0), table)
    assert r2.breakdown_j["dram_background"] == pytest.approx(2 * expected)


def test_link_asic_terms(table):
    r = compute_energy(inputs(link_bits=1000, asic_ops={"add": 100, "exp": 10}, asic_active_cycles=2000,
                              asic_clock_ghz=0.5), table)
    assert r.breakdown_j["link_io"] == pytest.approx(4000e-12)                     # 1000 bit x 4 pJ
    assert r.breakdown_j["asic_ops"] == pytest.approx((100 * 1.5 + 10 * 10.5) * 1e-12)  # op + operand access
    assert r.breakdown_j["asic_active"] == pytest.approx(20 * 4000 * 1e-12)        # 2000 cycles / 0.5 GHz = 4000 ns


def test_total_per_token_and_components(table):
    r = compute_energy(inputs(commands={"MAC16": 100, "ACT16": 2}, cycles=100, bank_open_cycles=800,
                              link_bits=256, tokens=4), table)
    assert set(r.breakdown_j) == set(COMPONENTS)
    assert r.total_j == pytest.approx(sum(r.breakdown_j.values()))
    assert r.per_token_j == pytest.approx(r.total_j / 4)
    assert r.table_hash == table.hash and len(r.table_hash) == 16


def test_v1_omits_background_refresh_io_leakage(table):
    kw = dict(commands={"MAC16": 10, "REFab": 2}, cycles=1000, bank_open_cycles=4000, link_bits=100,
              asic_ops={"add": 5})
    v2, v1 = compute_energy(inputs(**kw), table), compute_energy(inputs(**kw), table, variant="v1")
    for comp in ("dram_background", "dram_refresh", "link_io", "asic_leakage"):
        assert v2.breakdown_j[comp] > 0 and v1.breakdown_j[comp] == 0.0
    for comp in ("dram_mac", "asic_ops"):
        assert v1.breakdown_j[comp] == v2.breakdown_j[comp]
    assert v1.total_j < v2.total_j and v1.variant == "v1" and "dram_refresh" in v1.omitted
    with pytest.raises(PimsimError, match="variant"):
        compute_energy(inputs(), table, variant="v3")


def test_hash_changes_with_values_not_sources(table):
    s = copy.deepcopy(SECTION)
    s["dram"]["idd0_ma"]["source"] = "another datasheet"
    assert build_table(energy_config_from_data(s, "x")).hash == table.hash
    s["dram"]["idd0_ma"]["value"] = 151
    assert build_table(energy_config_from_data(s, "x")).hash != table.hash


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s["dram"].pop("idd0_ma"), r"hand\.yaml: energy\.dram\.idd0_ma: missing"),
    (lambda s: s["dram"]["idd4r_ma"].update(value=0), r"hand\.yaml: energy\.dram\.idd4r_ma\.value: must be a positive"),
    (lambda s: s["link"]["e_io_pj_per_bit"].update(value=-1), r"energy\.link\.e_io_pj_per_bit\.value: must be a positive"),
    (lambda s: s["pim"]["e_mac_bf16_pj"].pop("source"), r"energy\.pim\.e_mac_bf16_pj\.source: missing"),
    (lambda s: s["dram"].update(idd_typo=c(1)), r"energy\.dram\.idd_typo: unknown key"),
    (lambda s: s["dram"]["idd0_ma"].update(value=110), r"hand\.yaml: energy\.dram\.idd0_ma: must exceed idd3n_ma"),
    (lambda s: s["asic"]["e_op_pj"]["add"].update(value=0), r"energy\.asic\.e_op_pj\.add\.value: must be a positive"),
])
def test_bad_config_is_one_line_error(mutate, match):
    s = copy.deepcopy(SECTION)
    mutate(s)
    with pytest.raises(PimsimError, match=match) as exc:
        energy_config_from_data(s, "hand.yaml")
    assert "\n" not in str(exc.value)


def test_bad_file_names_file_and_field(tmp_path):
    data = yaml.safe_load(SHIPPED_TABLE.read_text())
    del data["energy"]["asic"]["p_leakage_mw"]
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(PimsimError, match=r"e\.yaml: energy\.asic\.p_leakage_mw: missing"):
        load_energy_config(f)


def test_inputs_validation(table):
    with pytest.raises(PimsimError, match="unknown DRAM command 'MACX'"):
        inputs(commands={"MACX": 1})
    with pytest.raises(PimsimError, match="bank_open_cycles"):
        inputs(cycles=10, bank_open_cycles=81)
    with pytest.raises(PimsimError, match="tck_ns"):
        inputs(tck_ns=0)
    with pytest.raises(PimsimError, match="tokens"):
        inputs(tokens=0)
    with pytest.raises(PimsimError, match="ASIC op 'gelu'"):
        compute_energy(inputs(asic_ops={"gelu": 1}), table)
    with pytest.raises(PimsimError, match="banks"):
        compute_energy(inputs(banks_per_channel=8), table)


def test_shipped_table_loads_and_every_coefficient_is_sourced():
    cfg = load_energy_config()
    t = load_energy_table()
    assert t.e_cmd_pj["MAC16"] > t.e_cmd_pj["RDMAC16"] > 0
    raw = yaml.safe_load(SHIPPED_TABLE.read_text())["energy"]

    def walk(node, path):
        if isinstance(node, dict) and "value" in node:
            assert node["value"] > 0 and node["source"].strip(), path
            return 1
        return sum(walk(v, f"{path}.{k}") for k, v in node.items() if isinstance(v, dict))

    assert walk(raw, "energy") >= 30
    assert cfg.dram.vdd_v.value == pytest.approx(1.35)
    # shipped arithmetic (docs/energy.md): e_act = (155 - 140) mA x 1.35 V x 27 ns = 546.75 pJ
    assert t.derived["e_act_pj"] == pytest.approx(546.75)
    assert t.e_cmd_pj["MAC16"] == pytest.approx(16 * (0.5 * 688.5 + 16 * 2.0))
