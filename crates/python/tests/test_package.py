"""The package against the command line: the same inputs and settings give the same images,
outputs, cycles and reports, and the same refusals."""

import json
import pathlib
import struct
import threading

import numpy as np
import pytest

import eie_compress as eie
from conftest import FIXTURES, files_of

MLP = FIXTURES / "mlp-gaussian.safetensors"
FIGURE2 = FIXTURES / "figure2.safetensors"


def save_safetensors(tensors: dict, path: pathlib.Path) -> None:
    """A minimal safetensors writer (float32 and int64), so the tests need numpy alone."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dtype = {np.float32: "F32", np.int64: "I64", np.uint8: "U8"}[a.dtype.type]
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path: pathlib.Path) -> dict:
    """The tensors of a safetensors file (float32, float16, int64)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        dtype = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}[t["dtype"]]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtype).reshape(t["shape"])
    return out


def test_compress_of_arrays_is_compress_of_the_file(tmp_path, cli):
    """A dict of numpy arrays compresses to the very images the CLI makes of the file."""
    tensors = read_safetensors(MLP)
    c = eie.compress(tensors, tmp_path / "py", pes=8, density=0.1, code_bits=4, quiet=True)
    cli("compress", MLP, "-o", tmp_path / "cli", "--pes", 8, "--density", 0.1, "--code-bits", 4)
    py_files = files_of(tmp_path / "py" / "images")
    assert py_files == files_of(tmp_path / "cli" / "images")
    assert len(py_files) > 8
    cli_report = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert c.report["layers"] == cli_report["layers"]
    assert c.report["totals"] == cli_report["totals"]


def test_simulate_matches_the_cli_report(tmp_path, cli_json):
    """simulate(x) is `simulate --input x --json`, field for field, on several vectors."""
    c = eie.compress(MLP, tmp_path / "m", pes=4, density=0.2, quiet=True)
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(3, c.layers[0].inputs)).astype(np.float32)
    save_safetensors({"x": x}, tmp_path / "x.safetensors")
    sim = c.simulate(x)
    assert sim.report == cli_json("simulate", tmp_path / "m", "--input", tmp_path / "x.safetensors")
    assert sim.outputs.shape == (3, c.layers[-1].rows)
    assert sim.cycles.shape == (3, 3) and (sim.cycles > 0).all()
    last = [v["layers"][-1]["outputs"]["fixed"] for v in sim.report["vectors"]]
    assert sim.outputs.tolist() == last
    np.testing.assert_array_equal(sim.outputs_float, sim.outputs / 2.0**sim.frac_bits)
    # One generated vector, with its seed and density, as --act-density and --seed.
    gen = c.simulate(act_density=0.5, seed=3)
    assert gen.report == cli_json("simulate", tmp_path / "m", "--act-density", 0.5, "--seed", 3)


def test_run_layer_is_simulate_of_one_layer(tmp_path, cli_json):
    """run_layer's outputs and cycles are `simulate --layer`'s, and its per-PE accumulators
    interleave back into the layer's rows."""
    c = eie.compress(MLP, tmp_path / "m", pes=4, density=0.2, quiet=True)
    layer = c.layers[1]
    x = np.linspace(-1, 1, layer.inputs, dtype=np.float32)
    save_safetensors({"x": x}, tmp_path / "x.safetensors")
    run = c.run_layer(layer.name, x)
    report = cli_json("simulate", tmp_path / "m", "--layer", layer.name, "--input", tmp_path / "x.safetensors")
    cli_layer = report["vectors"][0]["layers"][0]
    assert run.outputs.tolist() == cli_layer["outputs"]["fixed"]
    assert run.cycles == cli_layer["cycles"]
    assert [run.f_in, run.f_out] == report["fractions"][0]
    assert len(run.accumulators) == 4
    rows = np.empty(layer.rows, dtype=np.int64)
    for k, acc in enumerate(run.accumulators):
        rows[k::4] = acc
    # Write-back: round the guard bits off, saturate to 16 bits (docs/fixed-point.md).
    shift = (32 - 16) // 2
    back = np.clip((rows + (1 << (shift - 1))) >> shift, -32768, 32767)
    if run.relu:
        back = np.maximum(back, 0)
    np.testing.assert_array_equal(back, run.outputs)


def test_layer_arrays_decode_to_the_dense_weights(tmp_path):
    """Each PE's codes, relative indices and pointers decode to what dense() returns."""
    c = eie.compress(MLP, tmp_path / "m", pes=4, density=0.15, quiet=True)
    for layer in c.layers:
        w, bias = layer.dense()
        assert w.shape == (layer.rows, layer.inputs) and bias is not None
        decoded = np.zeros((layer.rows, layer.cols), dtype=np.float32)
        for k in range(layer.pes):
            codes, z, ptr = layer.codes(k), layer.indices(k), layer.pointers(k)
            assert len(ptr) == layer.cols + 1 and ptr[-1] == len(codes) == len(z)
            for col in range(layer.cols):
                row = -1
                for e in range(ptr[col], ptr[col + 1]):
                    row += int(z[e]) + 1
                    if codes[e]:
                        decoded[k + row * layer.pes, col] = layer.codebook[codes[e]]
        np.testing.assert_array_equal(decoded[:, :-1], w)
        np.testing.assert_array_equal(decoded[:, -1], bias)
        assert layer.entries_per_pe.sum() == sum(len(layer.codes(k)) for k in range(layer.pes))
        reported = next(r for r in c.report["layers"] if r["name"] == layer.name)
        assert reported["entries_by_pe"] == layer.entries_per_pe.tolist()
        counts = np.bincount(np.concatenate([layer.codes(k) for k in range(layer.pes)]), minlength=16)
        assert reported["quantization"]["code_counts"] == counts.tolist()


def test_pack_of_sparse_arrays_is_the_cli_pack(tmp_path, cli):
    """pack of a dict of already-sparse arrays writes the CLI's images of the same file."""
    tensors = read_safetensors(FIGURE2)
    p = eie.pack(tensors, tmp_path / "py", pes=4, quiet=True)
    cli("pack", FIGURE2, "-o", tmp_path / "cli", "--pes", 4)
    assert files_of(tmp_path / "py" / "images") == files_of(tmp_path / "cli" / "images")
    assert p.report is None and p.pes == 4


def test_testbench_descriptors_are_rtl_checks(tmp_path, cli):
    """testbench() plans the design rtl-check runs: the same descriptors.hex."""
    cli("pack", FIGURE2, "-o", tmp_path / "f2", "--pes", 4)
    tb = eie.load(tmp_path / "f2").testbench()
    code, _, err = cli("rtl-check", tmp_path / "f2", "--work", tmp_path / "work", check=False)
    if code != 0 and "iverilog" in err:
        pytest.skip(f"rtl-check needs Icarus Verilog: {err.strip()}")
    assert code == 0, err
    hexes = [f"{d:064x}" for d in tb.descriptors]
    assert hexes == (tmp_path / "work" / "descriptors.hex").read_text().split()
    assert tb.params["N_PE"] == 4 and tb.mode == "chained"
    assert tb.runs[0].cycles == 19  # Figure 2 on 4 PEs (docs/rtl.md)


def test_errors_are_the_cli_messages(tmp_path, cli):
    """A refusal is an EieError carrying the CLI's one-line message."""
    code, _, err = cli("compress", MLP, "-o", tmp_path / "cli", "--density", 1.5, check=False)
    assert code != 0
    with pytest.raises(eie.EieError) as e:
        eie.compress(MLP, tmp_path / "py", density=1.5, quiet=True)
    assert err.strip() == f"error: {e.value}"
    assert not (tmp_path / "py").exists()
    with pytest.raises(eie.EieError, match="unknown keyword argument \"densty\""):
        eie.compress(MLP, densty=0.1)
    with pytest.raises(eie.EieError, match="no_such.safetensors"):
        eie.compress(tmp_path / "no_such.safetensors")
    with pytest.raises(eie.EieError, match="tensor a: numpy dtype"):
        eie.compress({"a": np.array(["x"])})
    c = eie.compress(MLP, pes=4, quiet=True)
    with pytest.raises(eie.EieError, match="first layer takes"):
        c.simulate(np.zeros(3, dtype=np.float32))
    with pytest.raises(eie.EieError, match="NaN|not finite|infinite"):
        c.simulate(np.full(c.layers[0].inputs, np.nan, dtype=np.float32))
    with pytest.raises(eie.EieError, match="nope"):
        c.run_layer("nope", np.zeros(4))


def test_save_publishes_a_copy_and_never_writes_over_an_input(tmp_path):
    c = eie.compress(MLP, pes=4, density=0.1, quiet=True)
    saved = c.save(tmp_path / "saved")
    assert files_of(pathlib.Path(saved)) == files_of(pathlib.Path(c.path))
    again = eie.load(saved)
    assert again.report == c.report
    with pytest.raises(eie.EieError):
        c.save(tmp_path / "saved")  # exists: only with force
    c.save(tmp_path / "saved", force=True)
    # A folder of one's own takes the output beside what it holds with force, as
    # compress -o does.
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(eie.EieError, match="already holds"):
        c.save(keep)
    c.save(keep, force=True)
    assert (keep / "notes.txt").read_text() == "mine" and (keep / "model.eie").is_file()
    # A file of one's own under an output's name is never replaced, force or not.
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.json").write_text("mine")
    with pytest.raises(eie.EieError):
        c.save(other, force=True)
    assert (other / "report.json").read_text() == "mine"
    with pytest.raises(eie.EieError):
        again.save(saved, force=True)  # its own input


def test_eval_on_arrays_is_eval_on_the_dataset(tmp_path, cli_json):
    """eval on inputs and labels given as arrays measures what eval on the file does."""
    c = eie.compress(FIXTURES / "tiny-mlp.safetensors", tmp_path / "m", pes=4, quiet=True)
    rng = np.random.default_rng(1)
    width = c.layers[0].inputs
    x = rng.uniform(0, 1, size=(50, width)).astype(np.float32)
    y = rng.integers(0, c.layers[-1].rows, size=50).astype(np.int64)
    save_safetensors({"inputs": x, "labels": y}, tmp_path / "d.safetensors")
    from_arrays = eie.eval(c, inputs=x, labels=y)
    from_file = cli_json("eval", FIXTURES / "tiny-mlp.safetensors", tmp_path / "m", "--dataset", tmp_path / "d.safetensors")
    assert [s["top1"] for s in from_arrays["stages"]] == [s["top1"] for s in from_file["stages"]]
    assert len(from_arrays["stages"]) >= 3


def test_simulate_runs_in_threads_with_the_gil_released(tmp_path):
    """Calls from several threads give the results of one thread."""
    c = eie.compress(MLP, pes=4, density=0.2, quiet=True)
    want = c.simulate(seed=5, act_density=0.5).outputs
    got = [None] * 4

    def work(i):
        got[i] = c.simulate(seed=5, act_density=0.5).outputs

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in got:
        np.testing.assert_array_equal(g, want)


def test_hostile_arguments_are_refused_by_name(tmp_path):
    """Regressions from a hostile review: each was a panic, a silent coercion or a setting
    ignored, and is now an EieError naming what is wrong."""
    c = eie.compress(MLP, tmp_path / "m", pes=4, density=0.2, quiet=True)
    name = c.layers[0].name
    for short in (np.ones(3), np.ones(0)):  # was a PanicException from the float model
        with pytest.raises(eie.EieError, match="input"):
            c.run_layer(name, short)
    with pytest.raises(eie.EieError, match="pes must be a whole number"):
        eie.compress(MLP, pes=True)  # True is not 1 PE
    with pytest.raises(eie.EieError, match="give dataset too"):
        eie.compress(MLP, range="0..5")
    with pytest.raises(eie.EieError, match="give dataset too"):
        c.simulate(mean=0.5)
    with pytest.raises(eie.EieError, match="give calibration too"):
        eie.compress(MLP, calibration_samples=4)
    with pytest.raises(eie.EieError, match="calibration_samples 0"):
        eie.compress(MLP, calibration="synthetic", calibration_samples=0)
    with pytest.raises(eie.EieError, match="masked array"):
        c.simulate(np.ma.masked_array(np.ones(c.layers[0].inputs), mask=True))
    with pytest.raises(eie.EieError, match="numbers was expected"):
        c.simulate(np.ones(c.layers[0].inputs, dtype=complex))
    with pytest.raises(eie.EieError, match="numbers was expected"):
        c.simulate(["1"] * c.layers[0].inputs)


def test_a_folder_rewritten_since_loading_is_not_saved_or_evaluated(tmp_path):
    """save and eval read the folder again: one another run replaced is refused."""
    first = eie.compress(MLP, tmp_path / "m", pes=4, density=0.2, quiet=True)
    eie.compress(MLP, tmp_path / "m", pes=4, density=0.05, force=True, quiet=True)
    with pytest.raises(eie.EieError, match="changed on disk"):
        first.save(tmp_path / "copy")
    with pytest.raises(eie.EieError, match="changed on disk"):
        eie.eval(first, "synthetic")
    assert not (tmp_path / "copy").exists()


def test_timing_keywords_are_the_clis_flags(tmp_path, cli_json):
    c = eie.compress(MLP, tmp_path / "m", pes=4, density=0.2, quiet=True)
    got = c.simulate(fifo=2, timing_rules="authors", seed=4).report
    want = cli_json("simulate", tmp_path / "m", "--fifo", 2, "--timing-rules", "authors", "--seed", 4)
    assert got == want
    got = c.simulate(pipeline_depth=6, no_group_advance=True, clock_mhz=500).report
    want = cli_json("simulate", tmp_path / "m", "--pipeline-depth", 6, "--no-group-advance",
                    "--clock-mhz", 500)
    assert got == want
    with pytest.raises(eie.EieError, match="timing_rules \"fast\": one of rtl, authors"):
        c.simulate(timing_rules="fast")


def test_report_html_is_the_clis_page_beside_the_folder(tmp_path, cli):
    out = tmp_path / "m"
    c = eie.compress(MLP, out, pes=4, density=0.1, quiet=True)
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>\n<!-- eie-compress report -->")
    page = c.report_html(act_density=0.5, seed=3)
    assert page == tmp_path / "m-report.html"
    cli("report", out, "-o", tmp_path / "cli.html", "--act-density", "0.5", "--seed", "3")
    assert page.read_text() == (tmp_path / "cli.html").read_text()
    with pytest.raises(eie.EieError, match="input"):
        c.report_html(out / "inside.html")
    with pytest.raises(eie.EieError, match="--force"):
        c.report_html()
    assert c.report_html(force=True) == page
    with pytest.raises(eie.EieError, match="dataset"):
        c.report_html(tmp_path / "x.html", checkpoint=MLP)
    # A model in a temporary folder needs a place for its page.
    t = eie.compress(MLP, pes=4, density=0.1, quiet=True)
    with pytest.raises(eie.EieError, match="temporary"):
        t.report_html()
    assert t.report_html(tmp_path / "t.html").is_file()
