"""Read a stack of ONNX ``LSTM`` nodes, and an optional dense head, as canonical PyTorch weights.

:func:`read_onnx` accepts a graph holding one or more forward ``LSTM``
nodes in graph order, each layer's ``X`` being the previous layer's ``Y``
(through ``Squeeze`` / ``Transpose`` / ``Reshape`` only), with default
activations, no ``clip``, no ``input_forget`` and no peepholes, ``layout`` 0
or 1; and optionally one ``Gemm``, or ``MatMul`` (+ ``Add``), on the last
layer's ``Y`` or ``Y_h`` whose input width is the hidden size. ``W``, ``R``,
``B`` and the head come from initializers or ``Constant`` nodes. ONNX's
gate order (i, o, f, c) becomes PyTorch's (i, f, g, o). Only the ``onnx``
package is used (no runtime), imported when an ONNX file is read. External
data is read only from files in the model's folder (or below it); a location
that leaves it, by an absolute path, ``..`` or a symlink, is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, UsageError

__all__ = ["read_onnx"]

# Rows of ONNX's [i, o, f, c] blocks in PyTorch's [i, f, g, o] order.
_GATES_FROM_ONNX = (0, 2, 3, 1)
_DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "tanh")
# Ops that only move or reshape data; allowed on the data path (Gather/Slice/Flatten pick the last step for a head).
_BETWEEN_LAYERS = {"Squeeze", "Unsqueeze", "Transpose", "Reshape", "Identity", "Dropout", "Cast"}
_BEFORE_HEAD = _BETWEEN_LAYERS | {"Gather", "Slice", "Flatten"}
# Ops that hold weights: anything of these outside the LSTM stack and its head is refused.
_WEIGHTED = {"LSTM", "GRU", "RNN", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "Einsum", "Conv",
             "ConvTranspose", "ConvInteger", "QLinearConv", "BatchNormalization", "LayerNormalization",
             "InstanceNormalization", "GroupNormalization", "Attention", "Scan", "Loop"}


def _import_onnx(path: Path):
    try:
        import onnx
    except ImportError:
        raise UsageError(f"{path}: reading an ONNX file needs onnx: pip install 'lstm-hw[onnx]'") from None
    return onnx


def read_onnx(path: str | Path, notes: list[str]) -> tuple[dict[str, np.ndarray], bool]:
    """Weights under canonical names (not yet checked for shape consistency) and ``batch_first``.

    Lines worth telling the user are appended to ``notes``.
    """
    path = Path(path)
    onnx = _import_onnx(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
        _load_external_data(model, path, onnx)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - protobuf and external-data errors have many types
        text = str(e).strip()
        raise ConfigError(str(path), f"cannot read: {text.splitlines()[0] if text else type(e).__name__}") from None
    return _Graph(model.graph, path, onnx, notes).read()


def _tensors(graph):
    """Every tensor of ``graph`` that may hold external data: initializers and attributes, subgraphs too."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            yield attr.t
            yield from attr.tensors
            yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            for sub in (attr.g, *attr.graphs):
                yield from _tensors(sub)


def _load_external_data(model, path: Path, onnx) -> None:
    """Read each tensor's external data, refusing any location outside the model's folder (or a symlink out of it).

    Whatever the ``onnx`` version checks itself, no file outside that folder is opened.
    """
    folder = path.parent.resolve()
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not location or Path(location).is_absolute() or not (folder / location).resolve().is_relative_to(folder):
            raise ConfigError(f"{path}:{tensor.name}", f"external data {location!r} lies outside the model's "
                                                       f"folder {folder}; only files in that folder are read")
        onnx.external_data_helper.load_external_data_for_tensor(tensor, str(folder))


class _Graph:
    """Name lookups over one ONNX graph, and the walk from the input through the LSTMs to the head."""

    def __init__(self, graph, path: Path, onnx, notes: list[str]):
        self._path, self._onnx, self._notes = path, onnx, notes
        self._nodes = [n for n in graph.node if n.domain in ("", "ai.onnx")]
        self._init = {t.name: t for t in graph.initializer}
        self._inputs = {i.name for i in graph.input} - set(self._init)
        self._producer = {out: n for n in self._nodes for out in n.output if out}
        self._consumers: dict[str, list] = {}
        for n in self._nodes:
            for name in n.input:
                self._consumers.setdefault(name, []).append(n)

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _name(node) -> str:
        return f"{node.op_type} '{node.name or node.output[0]}'"

    def _where(self, node) -> str:
        return f"{self._path}:{self._name(node)}"

    def _attrs(self, node) -> dict:
        get = self._onnx.helper.get_attribute_value
        return {a.name: get(a) for a in node.attribute}

    def _const(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor (initializer, ``Constant``, or ``Identity`` of one), else ``None``."""
        to_array = self._onnx.numpy_helper.to_array
        if name in self._init:
            return to_array(self._init[name])
        node = self._producer.get(name)
        if node is None:
            return None
        if node.op_type == "Identity":
            return self._const(node.input[0])
        if node.op_type != "Constant":
            return None
        attrs = self._attrs(node)
        if "value" in attrs:
            return to_array(attrs["value"])
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return np.asarray(attrs[key])
        raise ConfigError(self._where(node), f"only dense Constant values are supported, got {sorted(attrs)}")

    def _fill(self, name: str) -> np.ndarray | None:
        """A constant, or the constant that ``Expand`` or ``ConstantOfShape`` spreads (torch's zero h0 and c0)."""
        node = self._producer.get(name)
        if node is not None and node.op_type == "Expand":
            return self._const(node.input[0])
        if node is not None and node.op_type == "ConstantOfShape":
            value = self._attrs(node).get("value")
            return np.zeros(1) if value is None else self._onnx.numpy_helper.to_array(value)
        return self._const(name)

    def _weight(self, node, index: int, role: str) -> np.ndarray | None:
        """Input ``index`` of ``node`` as finite float64, ``None`` when absent; it must be constant."""
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            return None
        a = self._const(name)
        if a is None:
            raise ConfigError(self._where(node), f"{role} '{name}' is not a constant "
                                                 "(initializer or Constant node)")
        if a.dtype.kind not in "fiu":
            raise ConfigError(f"{self._path}:{name}", f"{role} must be numeric, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{self._path}:{name}", f"{role} contains NaN or infinity")
        return a

    def _trace_back(self, name: str, allowed: set[str], ops: list | None = None) -> str:
        """Follow ``name`` back through data-moving ops in ``allowed`` to the tensor they start from."""
        node = self._producer.get(name)
        while node is not None and node.op_type in allowed:
            if ops is not None:
                ops.append(node)
            name = node.input[0]
            node = self._producer.get(name)
        return name

    # -- the model -------------------------------------------------------------

    def read(self) -> tuple[dict[str, np.ndarray], bool]:
        lstms = [n for n in self._nodes if n.op_type == "LSTM"]
        if not lstms:
            others = sorted({n.op_type for n in self._nodes if n.op_type in {"GRU", "RNN", "Scan", "Loop"}})
            raise ConfigError(str(self._path), "no LSTM node in the graph"
                              + (f" (found {', '.join(others)}, which is not supported)" if others else ""))
        batch_first = self._first_input(lstms[0])
        for prev, node in zip(lstms, lstms[1:]):
            if not prev.output or self._trace_back(node.input[0], _BETWEEN_LAYERS) != prev.output[0]:
                raise ConfigError(self._where(node), f"its input X does not come from the Y of "
                                                     f"{self._name(prev)}; only one stack of "
                                                     "LSTMs (each layer's X the previous layer's Y) is supported")
        raw: dict[str, np.ndarray] = {}
        for k, node in enumerate(lstms):
            raw.update(self._layer(k, node))
        raw.update(self._head(lstms[-1]))
        return raw, batch_first

    def _first_input(self, node) -> bool:
        """Check that X comes from a graph input; ``batch_first`` from ``layout`` and input transposes."""
        ops: list = []
        start = self._trace_back(node.input[0], _BETWEEN_LAYERS, ops)
        if start not in self._inputs:
            producer = self._producer.get(start)
            what = f"the output of {producer.op_type} '{producer.name or start}'" if producer else "a constant"
            raise ConfigError(self._where(node), f"its input X is {what}, not a graph input; only a stack of "
                                                 "LSTMs on the model's input is supported")
        batch_first = self._attrs(node).get("layout", 0) == 1
        for op in ops:
            perm = list(self._attrs(op).get("perm", [])) if op.op_type == "Transpose" else []
            if perm[:2] == [1, 0]:
                batch_first = not batch_first
        return batch_first

    def _layer(self, k: int, node) -> dict[str, np.ndarray]:
        where = self._where(node)
        attrs = self._attrs(node)
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        if direction != "forward":
            raise ConfigError(where, f"direction '{direction}' is not supported (only forward LSTMs)")
        if "clip" in attrs:
            raise ConfigError(where, f"clip {attrs['clip']:g} is not supported")
        if attrs.get("input_forget", 0):
            raise ConfigError(where, "input_forget = 1 (coupled input and forget gates) is not supported")
        acts = tuple(a.decode().lower() if isinstance(a, bytes) else str(a).lower()
                     for a in attrs.get("activations", []))
        if acts and acts != _DEFAULT_ACTIVATIONS:
            raise ConfigError(where, f"activations {', '.join(acts)} are not supported (only Sigmoid, Tanh, Tanh)")
        if attrs.get("layout", 0) not in (0, 1):
            raise ConfigError(where, f"layout {attrs['layout']} is not 0 or 1")
        w, r = self._weight(node, 1, "W"), self._weight(node, 2, "R")
        if w.ndim != 3 or w.shape[0] != 1 or r.ndim != 3 or r.shape[:2] != w.shape[:2] \
                or w.shape[1] != 4 * r.shape[2] or r.shape[2] == 0:
            raise ConfigError(where, f"W {w.shape} and R {r.shape} are not (1, 4H, I) and (1, 4H, H)")
        hidden = r.shape[2]
        if attrs.get("hidden_size", hidden) != hidden:
            raise ConfigError(where, f"hidden_size {attrs['hidden_size']} does not match R {r.shape}")
        b = self._weight(node, 3, "B")
        if b is None:
            b = np.zeros((1, 8 * hidden))
            self._notes.append(f"{where}: no B; using zero biases")
        if b.shape != (1, 8 * hidden):
            raise ConfigError(where, f"B {b.shape} is not (1, {8 * hidden})")
        peep = self._weight(node, 7, "P")
        if peep is not None and np.any(peep):
            raise ConfigError(where, "peepholes (input P) are not supported")
        for index, role in ((5, "initial_h"), (6, "initial_c")):
            name = node.input[index] if index < len(node.input) else ""
            if not name:
                continue
            value = self._fill(name)
            if value is None:
                self._notes.append(f"{where}: {role} is computed at run time; the accelerator starts from zero")
            elif np.any(value):
                raise ConfigError(where, f"a non-zero {role} is not supported (the accelerator starts from zero)")
        if len(node.input) > 4 and node.input[4]:
            self._notes.append(f"{where}: sequence_lens is ignored; every sequence runs to its full length")

        def torch_order(a):
            return np.concatenate([a[i * hidden:(i + 1) * hidden] for i in _GATES_FROM_ONNX])

        return {f"weight_ih_l{k}": torch_order(w[0]), f"weight_hh_l{k}": torch_order(r[0]),
                f"bias_ih_l{k}": torch_order(b[0, :4 * hidden]), f"bias_hh_l{k}": torch_order(b[0, 4 * hidden:])}

    def _head(self, last) -> dict[str, np.ndarray]:
        """``fc.weight`` and ``fc.bias`` of the one Gemm or MatMul reading the last layer's Y or Y_h."""
        outputs = [o for o in last.output[:2] if o]
        heads, extra = [], []
        stack = {id(n) for n in self._nodes if n.op_type == "LSTM"}
        for node in self._nodes:
            if node.op_type not in _WEIGHTED or id(node) in stack:
                continue
            if node.op_type in ("Gemm", "MatMul") and self._trace_back(node.input[0], _BEFORE_HEAD) in outputs:
                heads.append(node)
            else:
                extra.append(node)
        if extra:
            raise ConfigError(self._where(extra[0]), "is not supported: only a stack of LSTMs and an optional "
                                                     "Gemm or MatMul head on its output")
        if len(heads) > 1:
            raise ConfigError(str(self._path), "more than one dense head on the LSTM's output ("
                              + ", ".join(map(self._name, heads)) + ")")
        if not heads:
            self._note_after(outputs, set())
            return {}
        node = heads[0]
        where = self._where(node)
        hidden = self._weight(last, 2, "R").shape[2]
        attrs = self._attrs(node)
        weight = self._weight(node, 1, "weight")
        if weight is None or weight.ndim != 2:
            raise ConfigError(where, "the weight must be a constant 2-D matrix")
        used = {id(node)}
        out = node.output[0]
        if node.op_type == "Gemm":
            if attrs.get("transA", 0):
                raise ConfigError(where, "transA = 1 is not supported")
            fc_w = weight if attrs.get("transB", 0) else weight.T
            fc_w = fc_w * attrs.get("alpha", 1.0)
            bias = self._weight(node, 2, "C")
            if bias is not None:
                bias = bias * attrs.get("beta", 1.0)
        else:
            fc_w, bias = weight.T, None
            adds = self._consumers.get(out, [])
            if len(adds) == 1 and adds[0].op_type == "Add":
                add = adds[0]
                other = [n for n in add.input if n != out]
                value = self._const(other[0]) if len(other) == 1 else None
                if value is not None:
                    bias = self._weight(add, list(add.input).index(other[0]), "bias")
                    used.add(id(add))
                    out = add.output[0]
        if fc_w.shape[1] != hidden:
            raise ConfigError(where, f"takes {fc_w.shape[1]} inputs, not the LSTM's hidden size {hidden}")
        result = {"fc.weight": fc_w}
        if bias is not None:
            size = fc_w.shape[0]
            if bias.size not in (1, size) or (bias.ndim and bias.shape[-1] not in (1, size)):
                raise ConfigError(where, f"bias of shape {bias.shape} does not match the {size} outputs")
            result["fc.bias"] = np.broadcast_to(bias.reshape(-1), (size,)).copy()
        self._note_after([out], used)
        return result

    def _note_after(self, outputs: list[str], used: set[int]) -> None:
        """Name the computing ops that follow the model's output (a Softmax, say): the accelerator leaves them out."""
        seen, todo, ops = set(), list(outputs), []
        while todo:
            for node in self._consumers.get(todo.pop(), []):
                if id(node) in seen or id(node) in used:
                    continue
                seen.add(id(node))
                if node.op_type not in _BEFORE_HEAD:
                    ops.append(node.op_type)
                todo.extend(o for o in node.output if o)
        if ops:
            self._notes.append(f"{self._path}: not part of the accelerator and left out: "
                               + ", ".join(dict.fromkeys(ops)))
