"""cocotb bench proving that :class:`lstm_hw.sim.axis_checker.AxiStreamChecker` catches each fault.

The design under test is :data:`VERILOG`, module ``axis_faults``: one module
holding many small stream ports, so that each simulator builds once. Each port
group ``<prefix>_t*`` breaks the AXI4-Stream rules in exactly one way (``ok``
breaks none); :data:`EXPECTED` says which kind of violation the checker must
report on it, and nothing else. Run it with :func:`lstm_hw.sim.runner.run_cocotb`
(``tests/sim/test_axis_checker.py``); clock ``aclk``, reset ``aresetn``.

The X and Z faults are invisible to a 2-state simulator: under Verilator those
ports must report nothing.
"""

from __future__ import annotations

import itertools

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, RisingEdge

from lstm_hw.sim.axis import reset
from lstm_hw.sim.axis_checker import AxiStreamChecker, Kind

TOPLEVEL = "axis_faults"

VERILOG = """\
// Stream ports for lstm_hw.sim.tb_checker, each with at most one kind of
// AXI4-Stream violation. Synchronous active-low reset; every source holds
// tvalid low until the edge after the first edge at which reset is released,
// unless that is its fault.
module axis_faults (
    input  wire       aclk,
    input  wire       aresetn,
    // ok: a correct source with idle cycles, holding its item until the handshake
    output reg  [7:0] ok_tdata,   output reg  ok_tvalid,   input  wire ok_tready,   output reg  ok_tlast,
    // drop: tvalid toggles every cycle, whether or not the item was taken
    output wire [7:0] drop_tdata, output reg  drop_tvalid, input  wire drop_tready, output wire drop_tlast,
    // data: tdata counts every cycle, also while stalled
    output reg  [7:0] data_tdata, output reg  data_tvalid, input  wire data_tready, output wire data_tlast,
    // last: tlast toggles every cycle, also while stalled
    output wire [7:0] last_tdata, output reg  last_tvalid, input  wire last_tready, output reg  last_tlast,
    // inrst: tvalid tied high, also during reset
    output wire [7:0] inrst_tdata, output wire inrst_tvalid, input wire inrst_tready, output wire inrst_tlast,
    // early: tvalid follows aresetn, so it is high at the first edge after reset
    output wire [7:0] early_tdata, output wire early_tvalid, input wire early_tready, output wire early_tlast,
    // xdata: half of tdata is X while tvalid is high
    output wire [7:0] xdata_tdata, output wire xdata_tvalid, input wire xdata_tready, output wire xdata_tlast,
    // zlast: tlast is Z while tvalid is high
    output wire [7:0] zlast_tdata, output wire zlast_tvalid, input wire zlast_tready, output wire zlast_tlast,
    // xvalid: tvalid is X after reset
    output wire [7:0] xvalid_tdata, output wire xvalid_tvalid, input wire xvalid_tready, output wire xvalid_tlast,
    // xready: a sink whose tready is X after reset (tdata, tvalid, tlast come from the bench)
    input  wire [7:0] xready_tdata, input wire xready_tvalid, output wire xready_tready, input wire xready_tlast
);
    reg armed;  // 0 in reset and at the first edge after it
    reg [7:0] count;
    always @(posedge aclk) armed <= aresetn;

    always @(posedge aclk)
        if (!aresetn) begin
            ok_tvalid <= 1'b0; ok_tdata <= 8'd0; ok_tlast <= 1'b0; count <= 8'd0;
        end else if (!ok_tvalid || ok_tready) begin
            count <= count + 8'd1;
            ok_tvalid <= count[1:0] != 2'd3;
            ok_tdata <= count;
            ok_tlast <= count[2:0] == 3'd7;
        end

    always @(posedge aclk)
        if (!aresetn) drop_tvalid <= 1'b0; else drop_tvalid <= !drop_tvalid;
    assign drop_tdata = 8'h5a;
    assign drop_tlast = 1'b0;

    always @(posedge aclk)
        if (!aresetn) begin
            data_tvalid <= 1'b0; data_tdata <= 8'd0;
        end else begin
            data_tvalid <= 1'b1; data_tdata <= data_tdata + 8'd1;
        end
    assign data_tlast = 1'b0;

    always @(posedge aclk)
        if (!aresetn) begin
            last_tvalid <= 1'b0; last_tlast <= 1'b0;
        end else begin
            last_tvalid <= 1'b1; last_tlast <= !last_tlast;
        end
    assign last_tdata = 8'h33;

    assign inrst_tvalid = 1'b1;
    assign inrst_tdata = 8'h44;
    assign inrst_tlast = 1'b0;

    assign early_tvalid = aresetn;
    assign early_tdata = 8'h55;
    assign early_tlast = 1'b0;

    assign xdata_tvalid = armed;
    assign xdata_tdata = 8'b0101xxxx;
    assign xdata_tlast = 1'b0;

    assign zlast_tvalid = armed;
    assign zlast_tdata = 8'h66;
    assign zlast_tlast = 1'bz;

    assign xvalid_tvalid = armed ? 1'bx : 1'b0;
    assign xvalid_tdata = 8'h77;
    assign xvalid_tlast = 1'b0;

    assign xready_tready = armed ? 1'bx : 1'b0;
endmodule
"""

#: The violation kinds each port must report: (under Icarus, under Verilator).
EXPECTED: dict[str, tuple[set[Kind], set[Kind]]] = {
    "ok": (set(), set()),
    "drop": ({Kind.VALID_DROPPED}, {Kind.VALID_DROPPED}),
    "data": ({Kind.DATA_CHANGED}, {Kind.DATA_CHANGED}),
    "last": ({Kind.LAST_CHANGED}, {Kind.LAST_CHANGED}),
    "inrst": ({Kind.VALID_IN_RESET}, {Kind.VALID_IN_RESET}),
    "early": ({Kind.VALID_IN_RESET}, {Kind.VALID_IN_RESET}),
    "xdata": ({Kind.UNRESOLVED}, set()),
    "zlast": ({Kind.UNRESOLVED}, set()),
    "xvalid": ({Kind.UNRESOLVED}, set()),
    "xready": ({Kind.UNRESOLVED}, set()),
}
#: The tready of every source port, one value per cycle: stalls of 1 and 2 cycles.
READY_PATTERN = (1, 0, 0, 1, 0, 1, 1, 0)
RESET_CYCLES = 4
RUN_CYCLES = 64


async def _drive_ready(dut: SimHandleBase, prefixes: list[str]) -> None:
    """Drive every source's tready with READY_PATTERN, right after each edge."""
    for ready in itertools.cycle(READY_PATTERN):
        for prefix in prefixes:
            getattr(dut, f"{prefix}_tready").value = ready
        await RisingEdge(dut.aclk)


@cocotb.test()
async def each_fault_is_caught(dut: SimHandleBase) -> None:
    """Every port reports exactly its expected kinds; check() raises exactly when it should."""
    four_state = cocotb.SIM_NAME.lower().startswith("icarus")
    dut._log.info("simulator %s: X/Z checks %s", cocotb.SIM_NAME, "active" if four_state else "inactive")
    Clock(dut.aclk, 10, unit="ns").start()
    dut.xready_tvalid.value = 0
    dut.xready_tdata.value = 0
    dut.xready_tlast.value = 0
    checkers = {p: AxiStreamChecker(dut, dut.aclk, p, rst=dut.aresetn) for p in EXPECTED}
    cocotb.start_soon(_drive_ready(dut, [p for p in EXPECTED if p != "xready"]))
    await reset(dut, dut.aclk, "aresetn", active_low=True, cycles=RESET_CYCLES)
    await ClockCycles(dut.aclk, RUN_CYCLES)

    wrong = []
    for prefix, (icarus, verilator) in EXPECTED.items():
        checker, want = checkers[prefix], icarus if four_state else verilator
        got = set(checker.counts)
        for v in checker.violations[:3]:
            dut._log.info("%s: %s", prefix, v)
        if got != want:
            wrong.append(f"{prefix}: reported {sorted(got)}, expected {sorted(want)}")
        try:
            checker.check()
        except AssertionError as exc:
            if not want or not all(kind in str(exc) for kind in want):
                wrong.append(f"{prefix}: check() raised {exc}")
        else:
            if want:
                wrong.append(f"{prefix}: check() did not raise")

    # The reset check is edge-exact: 'inrst' is flagged at every edge in reset and at the
    # first edge after it; 'early' only at that first edge.
    inrst = [v.cycle for v in checkers["inrst"].violations]
    early = [v.cycle for v in checkers["early"].violations]
    if len(inrst) < RESET_CYCLES + 1 or inrst != list(range(inrst[0], inrst[-1] + 1)):
        wrong.append(f"inrst: flagged at cycles {inrst}, expected {RESET_CYCLES} reset edges and one more")
    if early != inrst[-1:]:
        wrong.append(f"early: flagged at cycles {early}, expected only cycle {inrst[-1:]}")
    assert not wrong, "\n".join(wrong)
