"""A cocotb testbench of the reference design (rtl/eie_top.v) with eie_compress as its golden
model, the way an RTL team starts one: the model's memory images are loaded through the
design's host port from the files `compress` or `pack` wrote, the input activations through
its load port, and every layer's cycle count, every PE's accumulators and every output are
compared with the bit-exact functional model and the timing model (docs/python.md, "A
cocotb testbench").

The case comes from the environment (test_rtl.py sets it): EIE_BENCH_MODEL, the model
folder; EIE_BENCH_INPUT, an .npy file of input vectors (the first is run) or empty for the
generated or dataset input EIE_BENCH_OPTIONS (JSON keyword arguments of
Compressed.testbench) describes.
"""

import json
import os
import pathlib

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

import eie_compress as eie

# host_mem selects the memory a host write goes to (docs/rtl.md, "Memory map").
SPMAT, PTR_BANK0, PTR_BANK1, DESCRIPTOR, CODEBOOK = 0, 1, 2, 3, 4


def read_hex(path: pathlib.Path) -> list[int]:
    """The words of a $readmemh image, one per line."""
    return [int(line, 16) for line in path.read_text().split()]


def image(layer: dict, kind: str, pe) -> dict:
    """The manifest's readmemh file of `kind` for PE `pe` (None: the layer's own)."""
    for f in layer["files"]:
        if f["kind"] == kind and f["pe"] == pe and f["encoding"] == "readmemh":
            return f
    raise AssertionError(f"the manifest lists no {kind} image for PE {pe} of {layer['name']}")


def golden(model_dir: pathlib.Path) -> "eie.Testbench":
    """The golden model's plan and runs for the case."""
    options = json.loads(os.environ.get("EIE_BENCH_OPTIONS") or "{}")
    given = os.environ.get("EIE_BENCH_INPUT")
    x = np.load(given)[0] if given else None
    return eie.load(model_dir).testbench(x, **options)


async def host_write(dut, mem: int, pe: int, addr: int, data: int) -> None:
    """One word through the host port: presented at a falling edge, written at the rising."""
    await FallingEdge(dut.clk)
    dut.host_we.value = 1
    dut.host_mem.value = mem
    dut.host_pe.value = pe
    dut.host_addr.value = addr
    dut.host_data.value = data


async def load_images(dut, model_dir: pathlib.Path, tb: "eie.Testbench") -> int:
    """Every part's Spmat and pointer images, every layer's codebook and the descriptors,
    at the bases the descriptors give. Returns the words written."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    parts = manifest["layers"]
    assert len(parts) == len(tb.descriptors), "one descriptor per part of the manifest"
    n = tb.params["N_PE"]
    codes = 1 << tb.params["CODE_BITS"]
    words = 0
    for part, fields in zip(parts, tb.descriptor_fields):
        for k in range(n):
            spmat = read_hex(model_dir / image(part, "spmat", k)["path"])
            for w, word in enumerate(spmat):
                await host_write(dut, SPMAT, k, fields["spmat_base"] + w, word)
            pointers = read_hex(model_dir / image(part, "pointers", k)["path"])
            assert len(pointers) == part["cols"] + 1
            for j, p in enumerate(pointers):
                a = fields["ptr_base"] + j
                await host_write(dut, PTR_BANK0 + a % 2, k, a // 2, p)
            words += len(spmat) + len(pointers)
        # Column batches of one layer share its codebook slot.
        codebook = read_hex(model_dir / image(part, "codebook", None)["path"])
        assert len(codebook) == codes
        for c, value in enumerate(codebook):
            await host_write(dut, CODEBOOK, 0, fields["layer"] * codes + c, value)
        words += codes
    for i, d in enumerate(tb.descriptors):
        for quarter in range(4):
            await host_write(dut, DESCRIPTOR, 0, i * 4 + quarter, (d >> (64 * quarter)) & (2**64 - 1))
    await FallingEdge(dut.clk)
    dut.host_we.value = 0
    return words + 4 * len(tb.descriptors)


async def load_input(dut, activations: np.ndarray, n: int) -> None:
    """The first layer's 16-bit input: activation j in PE j mod N at j div N."""
    for j, a in enumerate(activations.tolist()):
        await FallingEdge(dut.clk)
        dut.ld_we.value = 1
        dut.ld_pe.value = j % n
        dut.ld_addr.value = j // n
        dut.ld_data.value = a & 0xFFFF
    await FallingEdge(dut.clk)
    dut.ld_we.value = 0


async def pulse(dut, signal) -> None:
    await FallingEdge(dut.clk)
    signal.value = 1
    await FallingEdge(dut.clk)
    signal.value = 0


async def wait_hold(dut, phase: int, limit: int) -> None:
    for _ in range(limit):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.hold.value == 1 and int(dut.phase.value) == phase:
            return
    raise AssertionError(f"no hold in phase {phase} within {limit} cycles")


async def peek(dut, select: dict, out) -> int:
    """Sets the debug selects and reads the combinational output, signed."""
    await FallingEdge(dut.clk)
    for signal, value in select.items():
        getattr(dut, signal).value = value
    await Timer(1, unit="ns")
    return out.value.to_signed()


@cocotb.test()
async def images_match_the_golden_model(dut):
    """Every layer: cycles, every PE's accumulators, every output, against eie_compress."""
    model_dir = pathlib.Path(os.environ["EIE_BENCH_MODEL"])
    tb = golden(model_dir)
    assert tb.mode == "chained", "this bench feeds the first layer and chains the rest"
    n = tb.params["N_PE"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for signal in ("start", "go", "host_we", "ld_we", "dbg_pe", "dbg_row", "dbg_addr"):
        getattr(dut, signal).value = 0
    dut.n_parts.value = len(tb.descriptors)
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0  # the host port writes only out of reset
    words = await load_images(dut, model_dir, tb)
    dut._log.info("loaded %d words through the host port", words)
    await load_input(dut, tb.runs[0].input, n)
    await pulse(dut, dut.start)
    limit = tb.params["max_cycles"]
    for index, run in enumerate(tb.runs):
        await wait_hold(dut, 1, limit)
        cycles = int(dut.cycles.value)
        dut._log.info("layer %d %s: %d cycles (model %d)", index, run.name, cycles, run.cycles)
        assert cycles == run.cycles, f"layer {run.name}: RTL {cycles} cycles, model {run.cycles}"
        for k, want in enumerate(run.accumulators):
            for r, value in enumerate(want.tolist()):
                got = await peek(dut, {"dbg_pe": k, "dbg_row": r}, dut.dbg_acc)
                assert got == value, (
                    f"layer {run.name} PE {k} row {r} (output {r * n + k}): accumulator {got}, expected {value}"
                )
        await pulse(dut, dut.go)
        await wait_hold(dut, 2, limit)
        for r, value in enumerate(run.outputs.tolist()):
            got = await peek(dut, {"dbg_pe": r % n, "dbg_addr": r // n}, dut.dbg_act)
            assert got == value, f"layer {run.name} output {r}: {got}, expected {value}"
        await pulse(dut, dut.go)
    await RisingEdge(dut.clk)
    await ReadOnly()
    assert dut.done.value == 1, "the design did not stop after the last layer"
