"""Reading ONNX LSTM models built by hand from a torch LSTM, and every refusal as one line.

Each built model is first run with ONNX's own reference evaluator against
torch, so the hand-written gate order is checked independently of the
importer; then the imported weights must equal torch's and a float NumPy
LSTM on them must reproduce torch's output.
"""

import sys

import numpy as np
import pytest

from lstm_hw.config.schema import parse_config
from lstm_hw.errors import ConfigError, UsageError
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import float_lstm
from lstm_hw.model.torch_io import load_model

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

I, H, O, N, T = 3, 4, 5, 2, 6
TORCH_TO_ONNX = (0, 3, 1, 2)  # torch blocks i, f, g, o  ->  ONNX i, o, f, c


def onnx_gates(a: np.ndarray) -> np.ndarray:
    return np.concatenate([np.split(a, 4)[g] for g in TORCH_TO_ONNX])


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def build(lstm, fc=None, *, head=None, layout=0, transpose_input=False, bias=True, lstm_attrs=None,
          extra_inits=(), extra_inputs=None):
    """An ONNX model of ``lstm`` (+ ``fc``): ``head`` is None, "gemm" (on Y_h) or "matmul" (+ Add, on Y).

    The graph input is (N, T, I) when layout is 1 or ``transpose_input``, else (T, N, I).
    """
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    nodes, inits = [], list(extra_inits)
    batch_major = layout == 1 or transpose_input
    x = "x"
    if transpose_input:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2]))
        x = "x_t"
    dir_axis = 2 if layout else 1
    inits.append(numpy_helper.from_array(np.array([dir_axis], np.int64), "dir_axis"))
    for k in range(lstm.num_layers):
        inits += [const(f"W{k}", onnx_gates(sd[f"weight_ih_l{k}"])[None]),
                  const(f"R{k}", onnx_gates(sd[f"weight_hh_l{k}"])[None])]
        ins = [x, f"W{k}", f"R{k}"]
        if bias:
            b = np.concatenate([onnx_gates(sd[f"bias_ih_l{k}"]), onnx_gates(sd[f"bias_hh_l{k}"])])
            inits.append(const(f"B{k}", b[None]))
            ins.append(f"B{k}")
        ins += (extra_inputs or {}).get(k, [])
        attrs = {"hidden_size": H, **({"layout": 1} if layout else {}), **(lstm_attrs or {}).get(k, {})}
        nodes.append(helper.make_node("LSTM", ins, [f"Y{k}", f"Yh{k}"], name=f"lstm{k}", **attrs))
        nodes.append(helper.make_node("Squeeze", [f"Y{k}", "dir_axis"], [f"seq{k}"]))
        x = f"seq{k}"
    out = x
    if head == "gemm":
        inits += [numpy_helper.from_array(np.array([1 if layout else 0], np.int64), "h_axis"),
                  const("fc_w", fc.weight.detach().numpy()), const("fc_b", fc.bias.detach().numpy())]
        last = lstm.num_layers - 1
        nodes += [helper.make_node("Squeeze", [f"Yh{last}", "h_axis"], ["h_last"]),
                  helper.make_node("Gemm", ["h_last", "fc_w", "fc_b"], ["logits"], transB=1)]
        out = "logits"
    elif head == "matmul":
        inits += [const("fc_wt", fc.weight.detach().numpy().T), const("fc_b", fc.bias.detach().numpy())]
        nodes += [helper.make_node("MatMul", [x, "fc_wt"], ["mm"]),
                  helper.make_node("Add", ["mm", "fc_b"], ["out"])]
        out = "out"
    shape = [N, T, I] if batch_major else [T, N, I]
    out_dims = ["n", "o"] if head == "gemm" else ["d0", "d1", "d2"]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_dims)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def seeded(layers=1, head=False, seed=0):
    torch.manual_seed(seed)
    return torch.nn.LSTM(I, H, layers, batch_first=True), (torch.nn.Linear(H, O) if head else None)


def torch_output(lstm, fc, x, head):
    """float64 torch on the same float32 weights; x is (N, T, I)."""
    with torch.no_grad():
        y = lstm.double()(torch.from_numpy(x))[0]
        lstm.float()
        if head == "gemm":
            return fc.double()(y[:, -1]).numpy()
        if head == "matmul":
            return fc.double()(y).numpy()
        return y.numpy()


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("head", [None, "gemm", "matmul"])
@pytest.mark.parametrize("layout,transpose_input", [(0, False), (0, True), (1, False)])
def test_import_matches_torch(tmp_path, layers, head, layout, transpose_input):
    lstm, fc = seeded(layers, head is not None, seed=layers)
    want = {k: v.detach().numpy().astype(np.float64) for k, v in lstm.state_dict().items()}
    if fc is not None:
        want |= {"fc.weight": fc.weight.detach().numpy().astype(np.float64),
                 "fc.bias": fc.bias.detach().numpy().astype(np.float64)}
    model = build(lstm, fc, head=head, layout=layout, transpose_input=transpose_input)
    onnx.checker.check_model(model)
    x = np.random.default_rng(3).uniform(-1, 1, (N, T, I))
    ref = torch_output(lstm, fc, x, head)
    batch_major = layout == 1 or transpose_input

    # The hand-built graph means what torch means (ONNX's own evaluator, float32).
    feed = (x if batch_major else x.transpose(1, 0, 2)).astype(np.float32)
    got = ReferenceEvaluator(model).run(None, {"x": feed})[0]
    if layout == 0 and head != "gemm":  # Y stays time-major
        got = got.transpose(1, 0, 2)
    np.testing.assert_allclose(got, ref, atol=1e-5)

    weights, sizes = load_model(save(model, tmp_path))
    assert list(weights) == list(want)
    for name, a in want.items():
        assert weights[name].dtype == np.float64
        np.testing.assert_array_equal(weights[name], a, err_msg=name)
    assert sizes == {"input_size": I, "hidden_size": H, "num_layers": layers,
                     "output_size": O if head else 0, "batch_first": batch_major, "source": "onnx", "notes": []}

    cfg = parse_config({"model": {"input_size": I, "hidden_size": H, "num_layers": layers,
                                  "output_size": O if head else 0, "return_sequences": head != "gemm"},
                        "sparsity": {"banks": 1, "density": 1.0}})
    y = float_lstm(build_design(cfg, weights), x)
    np.testing.assert_allclose(y[:, -1] if head == "gemm" else y, ref, rtol=0, atol=1e-6)


def test_constant_nodes_gemm_untransposed_and_missing_bias(tmp_path):
    """W and R from Constant nodes, Gemm with transB = 0 and alpha/beta, no B, a Softmax after the head."""
    lstm, fc = seeded(1, True, seed=7)
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    w, b = fc.weight.detach().numpy(), fc.bias.detach().numpy()
    nodes = [helper.make_node("Constant", [], ["W"], value=const("w", onnx_gates(sd["weight_ih_l0"])[None])),
             helper.make_node("Constant", [], ["R"], value=const("r", onnx_gates(sd["weight_hh_l0"])[None])),
             helper.make_node("LSTM", ["x", "W", "R"], ["", "Yh"], hidden_size=H),
             helper.make_node("Flatten", ["Yh"], ["hf"], axis=0),  # (1, N*H): shapes are not checked here
             helper.make_node("Gemm", ["hf", "fc_wt", "fc_b"], ["z"], alpha=2.0, beta=0.5),
             helper.make_node("Softmax", ["z"], ["p"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, N, I])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, None)],
                              [const("fc_wt", w.T), const("fc_b", b)])
    weights, sizes = load_model(save(helper.make_model(graph), tmp_path))
    np.testing.assert_array_equal(weights["weight_hh_l0"], sd["weight_hh_l0"].astype(np.float64))
    np.testing.assert_array_equal(weights["bias_ih_l0"], np.zeros(4 * H))
    np.testing.assert_array_equal(weights["fc.weight"], 2.0 * w.astype(np.float64))
    np.testing.assert_array_equal(weights["fc.bias"], 0.5 * b.astype(np.float64))
    assert sizes["batch_first"] is False and sizes["output_size"] == O
    assert any("no B; using zero biases" in n for n in sizes["notes"])
    assert any("left out: Softmax" in n for n in sizes["notes"])


def refusal(tmp_path, model, *needles):
    with pytest.raises(ConfigError) as info:
        load_model(save(model, tmp_path))
    text = str(info.value)
    assert len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, (needle, text)


@pytest.mark.parametrize("attrs,needles", [
    ({"direction": "bidirectional"}, ["lstm0", "direction 'bidirectional' is not supported"]),
    ({"direction": "reverse"}, ["direction 'reverse'"]),
    ({"clip": 3.0}, ["clip 3 is not supported"]),
    ({"input_forget": 1}, ["input_forget = 1"]),
    ({"activations": ["Sigmoid", "Relu", "Tanh"]}, ["activations sigmoid, relu, tanh are not supported"]),
])
def test_refused_attributes(tmp_path, attrs, needles):
    lstm, _ = seeded()
    refusal(tmp_path, build(lstm, lstm_attrs={0: attrs}), *needles)


def test_refused_peepholes_and_initial_state(tmp_path):
    lstm, _ = seeded()
    peep = [const("P", np.full((1, 3 * H), 0.1))]
    refusal(tmp_path, build(lstm, extra_inits=peep, extra_inputs={0: ["", "", "", "P"]}),
            "lstm0", "peepholes (input P) are not supported")
    zero_peep = [const("P", np.zeros((1, 3 * H)))]
    load_model(save(build(lstm, extra_inits=zero_peep, extra_inputs={0: ["", "", "", "P"]}), tmp_path))
    h0 = [const("h0", np.ones((1, N, H)))]
    refusal(tmp_path, build(lstm, extra_inits=h0, extra_inputs={0: ["", "h0"]}), "a non-zero initial_h")
    # Zero states spread to the batch at run time, as torch exports them: accepted silently.
    model = build(lstm, extra_inputs={0: ["", "h0", "c0"]})
    model.graph.initializer.extend([const("zero", np.zeros(1)),
                                    numpy_helper.from_array(np.array([1, N, H], np.int64), "state_shape")])
    model.graph.node.insert(0, helper.make_node("Expand", ["zero", "state_shape"], ["h0"]))
    model.graph.node.insert(0, helper.make_node("ConstantOfShape", ["state_shape"], ["c0"]))
    assert load_model(save(model, tmp_path))[1]["notes"] == []
    model.graph.input.append(helper.make_tensor_value_info("c_in", TensorProto.FLOAT, [1, N, H]))
    model.graph.node[0].CopyFrom(helper.make_node("Identity", ["c_in"], ["c0"]))
    assert any("initial_c is computed at run time" in n for n in load_model(save(model, tmp_path))[1]["notes"])


def test_refused_nan_and_non_constant_weights(tmp_path):
    lstm, _ = seeded()
    model = build(lstm)
    r = next(t for t in model.graph.initializer if t.name == "R0")
    bad = numpy_helper.to_array(r).copy()
    bad[0, 1, 2] = np.nan
    r.CopyFrom(numpy_helper.from_array(bad, "R0"))
    refusal(tmp_path, model, "R0", "R contains NaN or infinity")

    model = build(lstm)
    w = next(t for t in model.graph.initializer if t.name == "W0")
    model.graph.initializer.remove(w)
    model.graph.input.append(helper.make_tensor_value_info("W0", TensorProto.FLOAT, [1, 4 * H, I]))
    refusal(tmp_path, model, "W 'W0' is not a constant")


def test_refused_graphs(tmp_path):
    gemm = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "g",
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, I])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                             [const("w", np.ones((O, I)))])
    refusal(tmp_path, helper.make_model(gemm), "no LSTM node in the graph")

    lstm, fc = seeded(2, True)
    model = build(lstm, fc, head="matmul")
    squeeze = next(n for n in model.graph.node if n.output[0] == "seq0")
    squeeze.output[0] = "seq0_raw"
    model.graph.node.insert(list(model.graph.node).index(squeeze) + 1,
                            helper.make_node("Relu", ["seq0_raw"], ["seq0"]))
    refusal(tmp_path, model, "lstm1", "does not come from the Y of LSTM 'lstm0'")

    model = build(lstm, fc, head="matmul")
    model.graph.node.append(helper.make_node("MatMul", ["out", "w2"], ["out2"]))
    model.graph.initializer.append(const("w2", np.ones((O, 2))))
    refusal(tmp_path, model, "MatMul", "is not supported: only a stack of LSTMs")

    model = build(lstm, fc, head="gemm")
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    model.graph.initializer.append(const("wide", np.ones((O, H + 1))))
    gemm.input[1] = "wide"
    refusal(tmp_path, model, "Gemm", f"takes {H + 1} inputs, not the LSTM's hidden size {H}")

    save(build(lstm), tmp_path).write_bytes(b"not a protobuf at all")
    with pytest.raises(ConfigError, match="cannot read"):
        load_model(tmp_path / "m.onnx")


def test_without_onnx_installed(tmp_path, monkeypatch):
    lstm, _ = seeded()
    path = save(build(lstm), tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(UsageError, match=r"pip install 'lstm-hw\[onnx\]'") as info:
        load_model(path)
    assert len(str(info.value).splitlines()) == 1



def with_external_data(tmp_path, location, symlink=False):
    """The LSTM's model in ``tmp_path/model/m.onnx`` with every tensor in the file ``location`` names.

    The data itself is written where ``location`` resolves to (or, with ``symlink``, outside the folder
    with ``location`` a symlink to it), so a refusal can only come from where the data lies.
    """
    import shutil
    lstm, _ = seeded()
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(build(lstm), str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.data", size_threshold=0)
    model = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    target = tmp_path / "outside.data" if symlink else folder / location
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "m.data", target)
    if symlink:
        (folder / location).symlink_to(target)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = str(location)
    onnx.save(model, str(folder / "m.onnx"))
    (folder / "m.data").unlink()
    return lstm, folder / "m.onnx"


@pytest.mark.parametrize("location", ["m2.data", "sub/m.data"])
def test_external_data_in_the_models_folder_is_read(tmp_path, location):
    lstm, path = with_external_data(tmp_path, location)
    weights, _ = load_model(path)
    for name, value in lstm.state_dict().items():
        np.testing.assert_array_equal(weights[name], value.numpy().astype(np.float64), err_msg=name)


@pytest.mark.parametrize("location, symlink", [("../outside.data", False), ("sub/../../outside.data", False),
                                               ("{tmp}/outside.data", False), ("link.data", True)])
def test_external_data_outside_the_models_folder_is_refused(tmp_path, location, symlink):
    lstm, path = with_external_data(tmp_path, location.format(tmp=tmp_path), symlink)
    assert (tmp_path / "outside.data").is_file()  # readable, were it followed
    for trust in (False, True):  # trusting the model file does not widen what is read
        with pytest.raises(ConfigError) as info:
            load_model(path, trust_model=trust)
        message = str(info.value)
        assert message.startswith(f"{path}:") and "lies outside the model's folder" in message
        assert "\n" not in message
