"""Runs the cocotb testbench (eie_bench.py) on the reference design in Icarus Verilog, one case
per test: pytest rtl/cocotb (docs/python.md). Skips, saying so, without iverilog or cocotb."""

import json
import pathlib
import shutil

import numpy as np
import pytest

import eie_compress as eie

cocotb_runner = pytest.importorskip(
    "cocotb_tools.runner", reason="cocotb is not installed here (pip install cocotb)"
)
from cocotb_tools.check_results import get_results  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
RTL = ROOT / "rtl"
FIXTURES = ROOT / "fixtures"
# The design's parameters a model sets (the rest follow from them).
DESIGN_PARAMS = (
    "N_PE", "CODE_BITS", "INDEX_BITS", "PTR_BITS", "SPMAT_DEPTH", "PTR_DEPTH", "ACT_DEPTH",
    "ACC_ROWS", "FIFO_DEPTH", "ACC_BITS", "COL_BITS", "ROW_BITS", "MAX_PARTS", "MAX_LAYERS",
)


def bench(model_dir: pathlib.Path, work: pathlib.Path, x=None, **options) -> None:
    """Builds the design for the model's parameters and runs the bench on it."""
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog (iverilog) is not installed: apt-get install iverilog")
    plan = eie.load(model_dir).testbench(x, **options)
    params = {k: plan.params[k] for k in DESIGN_PARAMS}
    runner = cocotb_runner.get_runner("icarus")
    build = work / "build"
    runner.build(
        sources=[RTL / "eie_lnzd.v", RTL / "eie_pe.v", RTL / "eie_top.v"],
        hdl_toplevel="eie_top",
        parameters=params,
        build_dir=build,
        timescale=("1ns", "1ps"),
        always=True,
    )
    env = {"EIE_BENCH_MODEL": str(model_dir), "EIE_BENCH_OPTIONS": json.dumps(options)}
    if x is not None:
        np.save(work / "x.npy", np.atleast_2d(np.asarray(x, dtype=np.float32)))
        env["EIE_BENCH_INPUT"] = str(work / "x.npy")
    results = runner.test(
        hdl_toplevel="eie_top",
        test_module="eie_bench",
        test_dir=pathlib.Path(__file__).parent,
        build_dir=build,
        extra_env=env,
        results_xml=str(work / "results.xml"),
    )
    tests, failed = get_results(pathlib.Path(results))
    assert (tests, failed) == (1, 0), f"the cocotb bench failed: see {work}"


def test_figure2(tmp_path):
    """The paper's Figure 2 layer on 4 PEs, on a random input with zeros in it."""
    model = eie.pack(FIXTURES / "figure2.safetensors", tmp_path / "f2", pes=4, quiet=True)
    x = np.random.default_rng(2).uniform(-1, 1, model.layers[0].inputs)
    x[::3] = 0
    bench(tmp_path / "f2", tmp_path, x)


def test_random_layer_on_64_pes(tmp_path):
    """A random 256 x 300 layer with a bias, 10% of its weights kept, on 64 PEs; 40% of the
    activations zero, as EIE's input sparsity."""
    rng = np.random.default_rng(64)
    tensors = {
        "layer.weight": rng.normal(0, 0.1, (256, 300)).astype(np.float32),
        "layer.bias": rng.normal(0, 0.1, 256).astype(np.float32),
    }
    eie.compress(tensors, tmp_path / "m", pes=64, density=0.1, quiet=True)
    x = rng.uniform(0, 1, 300) * (rng.uniform(0, 1, 300) > 0.4)
    bench(tmp_path / "m", tmp_path, x)


def test_demo_model_on_dataset_samples(tmp_path):
    """The shipped demo MLP (three chained layers with biases) on 8 PEs, fed a sample of the
    built-in dataset, as `demo` feeds it."""
    eie.compress(FIXTURES / "demo-mlp.safetensors", tmp_path / "m", pes=8, density=0.12, quiet=True)
    bench(tmp_path / "m", tmp_path, dataset="synthetic", range="3..4")
