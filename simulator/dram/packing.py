"""How the fast engine's arguments are packed: the config scalars with every array's offset (`cfg`), the static
tables (one flat int64 buffer) and the device state (one flat int64 buffer). Shared by the kernel
(simulator/dram/fast.py) and the run memo (simulator/dram/memo.py), which both carve their arrays out of the
same buffers.
"""

from __future__ import annotations

# `cfg`'s head; the command count is passed, not compiled in: the cached kernel must not keep a stale one
# when the command table grows (tests/test_new_command.py)
CFG_N_CH, CFG_NB, CFG_BPG, CFG_NG, CFG_DEPTH, CFG_REFI, CFG_FAW, CFG_STALL, CFG_N_CMDS = range(9)
N_CFG = 9
TABLES = ("rptr", "rscope", "rnext", "rcyc", "touch", "mode_of", "is_open", "is_close", "row_in_log",
          "completion", "dkind", "dcmd", "dconv", "dblock", "dcolcount", "self_gaps")  # 1-D, in this order
STATE = ("st_bank", "st_group", "st_chan", "open_row", "mode", "last_issue", "last_done", "acts", "n_acts",
         "ref_due", "ring", "nreq", "last_conv", "last_leave", "counts", "chan_class", "parent", "cut", "scal",
         "open_since", "open_cycles", "chan_counts", "chan_open")  # FastState's arrays, in this order
OFF_T = N_CFG  # cfg[OFF_T + j]: start of table j in `tables` (and cfg[OFF_T + j + 1] its end)
OFF_S = N_CFG + len(TABLES) + 1  # cfg[OFF_S + j]: start of state array j in `state`

# indices into TABLES and STATE (for code that reads single arrays out of the packed buffers)
T_DKIND, T_DCOLCOUNT = TABLES.index("dkind"), TABLES.index("dcolcount")
(S_ST_BANK, S_ST_GROUP, S_ST_CHAN, S_OPEN_ROW, S_MODE, S_LAST_ISSUE, S_LAST_DONE, S_ACTS, S_N_ACTS, S_REF_DUE,
 S_RING, S_NREQ, S_LAST_CONV, S_LAST_LEAVE, S_COUNTS, S_CHAN_CLASS, S_PARENT, S_CUT, S_SCAL, S_OPEN_SINCE,
 S_OPEN_CYCLES, S_CHAN_COUNTS, S_CHAN_OPEN) = range(len(STATE))
SCAL_X, SCAL_CLASSES, SCAL_STALL_CMD, SCAL_STALL_CLASS = range(4)  # `scal`'s entries (simulator/dram/fast.py `_run`)
