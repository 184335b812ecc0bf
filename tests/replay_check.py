"""The system-level exactness check shared by the system tests: the event-driven run and the command-by-command
replay of exactly what its PIM controller issued agree to the cycle and the command, and the log is clean."""

from simulator.dram.checker import check_log


def assert_fast_equals_reference(arch, eng, ctxs: list[int]) -> None:
    fast = eng.run(ctxs)
    ref = eng.run_reference(ctxs)
    # fast.cycles runs from cycle 1 to the cycle X in which a next instruction could arrive, minus one; the
    # reference stream ends with an EOC that arrives in X and is acknowledged in X + 1
    assert ref.cycles - 2 == fast.cycles
    assert (ref.counts == fast.counts).all()
    assert check_log(ref.log, arch) == []
