"""A PyTorch LeNet-300-100 state_dict through the package and through the command line:
byte-identical images, outputs and cycles (the issue's first target)."""

import json

import numpy as np
import pytest

import eie_compress as eie
from conftest import files_of

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed here (pip install torch): the state_dict test skips"
)
st = pytest.importorskip("safetensors.torch", reason="safetensors is not installed here")


class LeNet300100(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 300)
        self.fc2 = torch.nn.Linear(300, 100)
        self.fc3 = torch.nn.Linear(100, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def test_lenet_state_dict_is_byte_identical_to_the_cli(tmp_path, cli, cli_json):
    torch.manual_seed(0)
    model = LeNet300100()
    # A few steps on random data, so the weights are a trained model's, not an init's.
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(20):
        x = torch.rand(64, 784)
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (64,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    state = model.state_dict()

    # The state_dict straight from PyTorch, no file in between.
    c = eie.compress(state, tmp_path / "py", pes=64, density=0.08, code_bits=4, quiet=True)
    # The same weights saved by PyTorch's safetensors, through the command line.
    st.save_file(state, str(tmp_path / "lenet.safetensors"))
    cli("compress", tmp_path / "lenet.safetensors", "-o", tmp_path / "cli", "--pes", 64,
        "--density", 0.08, "--code-bits", 4)
    assert files_of(tmp_path / "py" / "images") == files_of(tmp_path / "cli" / "images")
    cli_report = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert c.report["layers"] == cli_report["layers"]
    assert [l.name for l in c.layers] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert [l.has_bias for l in c.layers] == [True] * 3

    # Inputs as a torch tensor (the array protocol), then as the CLI's input file.
    x = torch.rand(5, 784)
    sim = c.simulate(x)
    st.save_file({"x": x}, str(tmp_path / "x.safetensors"))
    want = cli_json("simulate", tmp_path / "cli", "--input", tmp_path / "x.safetensors")
    assert sim.report == want
    for v, run in enumerate(want["vectors"]):
        assert sim.cycles[v].tolist() == [l["cycles"] for l in run["layers"]]
        assert sim.outputs[v].tolist() == run["layers"][-1]["outputs"]["fixed"]

    # The bit-exact outputs track PyTorch's own logits.
    with torch.no_grad():
        dense = {k: v.clone() for k, v in state.items()}
        for layer in c.layers:
            w, b = layer.dense()
            dense[layer.name] = torch.from_numpy(w)
            dense[layer.name.replace("weight", "bias")] = torch.from_numpy(b)
        model.load_state_dict(dense)
        logits = model(x).numpy()
    assert np.abs(sim.outputs_float - logits).max() < 0.05 * np.abs(logits).max()
