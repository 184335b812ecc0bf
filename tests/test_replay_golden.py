"""Golden cycle counts for small ISR traces, derived by hand from docs/aim-device.md (32-channel AiM preset).

Conventions used in every derivation: the first ISR reaches the channels in cycle 1; a request may issue
in the cycle it arrives; EOC takes the cycle after the channel's last command and is acknowledged one
cycle later, but not before the cycle after the last completion (MAC16 +1, WRGB +3, RDMAC16 +2).
"""

import pytest

from simulator.config import load_arch
from simulator.dram.checker import check_log
from simulator.dram.replay import replay
from simulator.trace.isr import parse_isr

CFG = load_arch("aim_gddr6")
ALL = "0xffffffff"


def run(text, engine):
    res = replay(parse_isr(text, CFG.organisation), CFG, engine=engine, keep_log=True)
    assert check_log(res.log, CFG) == []
    return res


@pytest.fixture(params=["fast", "reference"])
def engine(request):
    return request.param


def test_one_row_mac(engine):
    """ACT16@1; MAC16 at 1 + nRCDRDMAC(56) = 57, then every nCCD (2): the 64th at 57 + 126 = 183.
    EOC@184, acknowledged @185 (MAC16 completion 184 + 1)."""
    res = run(f"AiM MAC_ABK 64 {ALL} 0\nAiM EOC\n", engine)
    assert res.cycles == 185
    assert res.command_summary() == {"ACT16": {"per_channel_max": 1, "total": 32},
                                     "MAC16": {"per_channel_max": 64, "total": 2048}}


def test_two_rows_mac(engine):
    """Row 0 as above (last MAC16@183). Row 1: PREA at max(183 + nRTP 12, 1 + nRAS 54) = 195,
    ACT16 at max(195 + nRP 32, 1 + nRC 89) = 227, MAC16 @283 ... @409, EOC ack 411: +226 per row."""
    res = run(f"AiM MAC_ABK 64 {ALL} 0\nAiM MAC_ABK 64 {ALL} 1\nAiM EOC\n", engine)
    assert res.cycles == 411


def test_same_row_twice_is_row_hit(engine):
    """The second instruction hits the open row: its MAC16s follow at nCCD: last @183 + 128 = 311, ack 313."""
    assert run(f"AiM MAC_ABK 64 {ALL} 0\nAiM MAC_ABK 64 {ALL} 0\nAiM EOC\n", engine).cycles == 313


def test_long_mac_stream_exact_per_row_increment(engine):
    """Every further row adds exactly PREA/ACT16/64 MAC16 = nRTP + nRP + nRCDRDMAC + 63 nCCD + ... = 226."""
    cycles = [run("".join(f"AiM MAC_ABK 64 {ALL} {r}\n" for r in range(n)) + "AiM EOC\n", engine).cycles
              for n in (1, 2, 3, 6)]
    assert cycles == [185, 411, 637, 185 + 5 * 226]


def test_wr_gb_mode_switch(engine):
    """TMOD@1 (WRGB needs register mode), WRGB @1 + nMODCH 32 = 33; completion 36; EOC ack 37."""
    assert run(f"AiM WR_GB 1 0 {ALL}\nAiM EOC\n", engine).cycles == 37


def test_rd_mac_blocking(engine):
    """TMOD@1, RDMAC16@33 completes @35; the next ISR arrives @36: RDMAC16@36, completes 38; EOC arrives 39,
    issues 39, acknowledged 40."""
    assert run(f"AiM RD_MAC 0 {ALL}\nAiM RD_MAC 0 {ALL}\nAiM EOC\n", engine).cycles == 40


def test_wr_gb_then_mac_with_mode_switch(engine):
    """TMOD@1, WRGB@33, 35, WRMAC16@37 (nCCD), TMOD@38 (ACT16 is otherwise legal at once), ACT16@70,
    MAC16@126 (nRCDRDMAC), 128, TMOD@130 (RDMAC16 legal at 128 + 2), RDMAC16@162, done 164; EOC arrives
    165 and is acknowledged 166."""
    res = run(f"AiM WR_GB 2 0 {ALL}\nAiM WR_BIAS 0 {ALL}\nAiM MAC_ABK 2 {ALL} 0\nAiM RD_MAC 0 {ALL}\nAiM EOC\n",
              engine)
    assert res.cycles == 166
    ch0 = [(c, n) for c, ch, n, _, _ in res.log.rows() if ch == 0]
    assert ch0 == [(1, "TMOD"), (33, "WRGB"), (35, "WRGB"), (37, "WRMAC16"), (38, "TMOD"), (70, "ACT16"),
                   (126, "MAC16"), (128, "MAC16"), (130, "TMOD"), (162, "RDMAC16")]


def test_wr_abk_costs_101_each(engine):
    """ACT16@1, WRA16@29 (nRCDWR 28); the next ACT16 waits nCWL+nBL+nWR+nRP = 73 after WRA16: @102."""
    res = run("AiM WR_ABK 0 0x1 0\nAiM WR_ABK 0 0x1 0\nAiM EOC\n", engine)
    cmds = [(c, n) for c, _, n, _, _ in res.log.rows()]
    assert cmds == [(1, "ACT16"), (29, "WRA16"), (102, "ACT16"), (130, "WRA16")]


def test_ewmul_row_steady_state(engine):
    """EWMUL rows repeat every nRCDEWMUL + 63 nCCD + (nCWL + nWR) + nRP = 25 + 126 + 39 + 32 = 222 cycles."""
    one = run(f"AiM EWMUL 64 {ALL} 0\nAiM EOC\n", engine).cycles
    two = run(f"AiM EWMUL 64 {ALL} 0\nAiM EWMUL 64 {ALL} 1\nAiM EOC\n", engine).cycles
    assert two - one == 222


def test_partial_mask_channels_diverge(engine):
    """ISR bit i selects channel 31 - i: 0x1 is channel 31. The other channels stay idle until EOC."""
    res = run("AiM MAC_ABK 64 0x1 0\nAiM EOC\n", engine)
    assert res.counts[31].sum() == 65 and res.counts[:31].sum() == 0
    assert res.cycles == 185
