"""A new PIM command is its row in the command table plus its semantics, nothing else.

A toy all-bank command TOY16 (reads the open row of every bank like MAC16, needs nRCDRDMAC after an ACT16,
and has a timing rule of its own, nTOY = 4 x nCCDL between two TOY16s in a channel) is added with
`commands.register`; its semantics is one decode row (`requests.DECODE`: MAC_ABK now issues TOY16 instead
of MAC16). Nothing in timing.py, fast.py, reference.py, checker.py or energy.py is touched, yet both engines schedule
it by the new rule, the checker enforces it and the energy model costs it. The registration must precede the engines' import, so the
scenario runs in a fresh interpreter.

Cycle count by hand (aim_gddr6 preset, one channel: nRCDRDMAC = 56, nCCDS = nCCDL = 2, so nTOY = 8; TOY16
has no completion latency in the config, so 0): MAC_ABK 4 reaches the channel in cycle 1. All banks are
closed: ACT16 in cycle 1; the first TOY16 at 1 + nRCDRDMAC = 57; the next three follow at the larger of the
column spacing (2) and nTOY (8): 65, 73, 81. The requests entered the queue in cycle 1 (the queue is not
full), so the EOC reaches the channel in cycle 2, issues one cycle after the last command, 82, and is
acknowledged one cycle later: 83. With MAC16 (completion 1) the same instruction gives MAC16s at 57, 59, 61,
63, EOC at 64, acknowledged at max(64 + 1, 63 + 1 + 1) = 65.
"""

import json
import subprocess
import sys
import textwrap

SCENARIO = textwrap.dedent('''
    import json
    from simulator.dram import commands
    from simulator.dram.commands import CCD_READ, TOUCH_ALL, CommandFacts, Energy, Rule

    # --- the table: the command's facts, its own timing rule and its energy recipe ---
    TOY = commands.register("TOY16", CommandFacts(
        TOUCH_ALL, needs_row=True, bank_read=True, ccd=CCD_READ, rcd="nRCDRDMAC",
        rules=(Rule("TOY16", "TOY16", "channel", lambda t: 4 * t.nCCDL, "nTOY"),),
        energy=Energy("dram_mac", lambda e: e.banks * e.local * e.rd)))  # a row read in every bank

    # --- its semantics: which request issues it ---
    from simulator.dram import requests
    from simulator.dram.isa import Op

    before = requests.DECODE[Op.MAC_ABK]
    requests.DECODE[Op.MAC_ABK] = (requests.K_ALLBANK, TOY, False, False)

    import numpy as np
    from simulator.config import load_arch
    from simulator.dram.checker import check_log
    from simulator.dram.fast import run_fast
    from simulator.dram.log import CommandLog
    from simulator.dram.program import from_rows
    from simulator.dram.reference import run_reference

    cfg = load_arch("aim_gddr6", ["organisation.channels=1"])
    prog = from_rows([(Op.MAC_ABK, 4, 1, 0, 0), (Op.EOC, 0, 1, 0, 0)])
    ref = run_reference(prog, cfg, keep_log=True)
    fast_log = run_fast(prog, cfg, keep_log=True)
    fast = run_fast(prog, cfg)  # every shortcut on (closed-form burst)
    rows = ref.log.rows()
    # the second TOY16 one cycle early: 7 cycles after the first, which nCCDS (2) allows and nTOY (8) not
    toys = [i for i, r in enumerate(rows) if r[2] == "TOY16"]
    bad = list(rows)
    c, ch, name, b, r = bad[toys[1]]
    bad[toys[1]] = (c - 1, ch, name, b, r)
    ids = {n: i for i, n in enumerate(commands.CMD_NAMES)}
    cols = list(zip(*[(cy, chn, ids[nm], bk, rw) for cy, chn, nm, bk, rw in bad]))
    injected = check_log(CommandLog(*(np.array(v, np.int64) for v in cols)), cfg)
    requests.DECODE[Op.MAC_ABK] = before
    from simulator import energy
    table = energy.load_energy_table(energy.SHIPPED_TABLE)
    mac = run_reference(prog, cfg, keep_log=True)
    print(json.dumps({
        "toy_id": int(TOY), "n_cmds": commands.N_CMDS,
        "ref": ref.cycles, "fast_log": fast_log.cycles, "fast": fast.cycles,
        "same_log": fast_log.log.rows() == rows, "rows": rows,
        "fast_counts": int(fast.counts[0, TOY]), "ref_counts": int(ref.counts[0, TOY]),
        "clean": [str(v) for v in check_log(ref.log, cfg)], "injected": [v.rule for v in injected],
        "mac": mac.cycles, "toy_pj": table.e_cmd_pj["TOY16"], "af16_pj": table.e_cmd_pj["AF16"],
        "toy_component": energy.COMPONENT_OF_COMMAND["TOY16"],
    }))
''')


def test_toy_command_from_table_and_semantics_only():
    out = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["toy_id"] == res["n_cmds"] - 1 == 24  # the next free id
    assert res["ref"] == res["fast_log"] == res["fast"] == 83  # derived by hand in the module docstring
    assert res["same_log"]
    assert [(r[0], r[2]) for r in res["rows"]] == [(1, "ACT16"), (57, "TOY16"), (65, "TOY16"), (73, "TOY16"),
                                                   (81, "TOY16")]
    assert res["fast_counts"] == res["ref_counts"] == 4
    assert res["clean"] == []
    assert res["injected"] == ["nTOY"]  # the checker enforces the command's own rule, and nothing else broke
    assert res["mac"] == 65  # the unpatched decode: MAC16 at the column spacing
    # its energy recipe reaches the energy model (the same recipe as AF16's, so the same energy)
    assert res["toy_component"] == "dram_mac" and res["toy_pj"] == res["af16_pj"] > 0


def test_register_refuses_after_the_engines_read_the_table():
    """In this process the engines are imported already: registering now would leave them without the
    command, so it is refused with a message saying why."""
    import pytest

    from simulator.dram import commands, fast  # noqa: F401  (fast reads the command set at import)

    with pytest.raises(RuntimeError, match="must run before"):
        commands.register("LATE16", commands.CommandFacts(commands.TOUCH_ALL))
