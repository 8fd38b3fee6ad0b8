"""ONNX graphs of the three-file form (:mod:`shared.learning.interchange`): the article's reconstruction
graph, its checks, and :func:`wrap` / :func:`unwrap` between it and Rotorwatch's scoring graph (raw
features → per-row error). Pure: bytes in, bytes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

ONNX_FILE = "motor_autoencoder.onnx"
SCALER_FILE = "scaler_params.json"
THRESHOLD_FILE = "threshold.json"
FILES = (ONNX_FILE, SCALER_FILE, THRESHOLD_FILE)
#: Input name of the reconstruction graph (normalised features), as the flow feeds it.
FLOW_INPUT = "features"
#: Output name of the reconstruction graphs Rotorwatch builds.
RECONSTRUCTION = "reconstruction"
#: The flow's fixed floor on the scaler's std (feature units) and its default clip (standardised units).
FLOW_MIN_STD = 0.1
FLOW_CLIP = 5.0
#: The flow's rolling window (windows).
FLOW_WINDOW = 10
#: Features the flow computes (3 axes × 11).
FLOW_FEATURES = 33
#: Raw input / error output names of the wrapped scoring graph.
RAW_INPUT = "input"
ERROR_OUTPUT = "error"
#: Prefix of every node and initializer :func:`wrap` adds.
PREFIX = "rw_"
FORMAT = "flowfuse-autoencoder-v1"
#: The article's exporter writes opset 11, IR 7; Rotorwatch's reconstruction graphs use the same.
OPSET = 11
IR_VERSION = 7
MAX_ZIP_BYTES = 20 * 1024 * 1024


class InterchangeError(ValueError):
    """The three files cannot be used; the text says why (shown to the user as is)."""


# ---------------------------------------------------------------------------------------------
# The reconstruction graph
# ---------------------------------------------------------------------------------------------
def _load(data: bytes, what: str) -> onnx.ModelProto:
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises several types (DecodeError, ValidationError)
        raise InterchangeError(f"{what} is not a valid ONNX model: {exc}") from None
    return model


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    inits = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in inits]


def _check_io(model: onnx.ModelProto, d: int) -> str:
    """One float input ``features`` [N, d] and one float output [N, d]; the output's name."""
    g = model.graph
    inputs, outputs = _real_inputs(g), list(g.output)
    if len(inputs) != 1 or inputs[0].name != FLOW_INPUT:
        names = [i.name for i in inputs]
        raise InterchangeError(f"{ONNX_FILE}: expected one input named {FLOW_INPUT!r}, got {names}")
    if len(outputs) != 1:
        raise InterchangeError(
            f"{ONNX_FILE}: expected one output (the reconstruction), got {[o.name for o in outputs]}"
        )
    for role, vi in (("input", inputs[0]), ("output", outputs[0])):
        dims = _dims(vi)
        if vi.type.tensor_type.elem_type != TensorProto.FLOAT or len(dims) != 2 or dims[1] != d:
            raise InterchangeError(
                f"{ONNX_FILE}: {role} {vi.name!r} is {dims or 'of unknown shape'} "
                f"({TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}); expected float [N, {d}]"
            )
    return outputs[0].name


def probe_inputs(d: int, clip: float) -> NDArray[np.float32]:
    """Normalised probe rows: the scaler's mean (z = 0), ±1 and ±clip in every feature."""
    rows = [np.zeros(d), np.ones(d), -np.ones(d), np.full(d, clip), np.full(d, -clip)]
    return np.asarray(rows, dtype=np.float32)


def check_reconstruction(data: bytes, d: int = FLOW_FEATURES, clip: float = FLOW_CLIP) -> str:
    """Check a reconstruction graph: valid ONNX, input ``features`` float [N, d], one float output
    [N, d], and a probe inference (:func:`probe_inputs`) giving finite [5, d] reconstructions. Returns the
    output name; :class:`InterchangeError` with the reason otherwise."""
    model = _load(data, ONNX_FILE)
    out_name = _check_io(model, d)
    import onnxruntime as ort  # only where graphs are run

    try:
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        y = np.asarray(sess.run(None, {FLOW_INPUT: probe_inputs(d, clip)})[0])
    except Exception as exc:  # onnxruntime raises its own types
        raise InterchangeError(f"{ONNX_FILE}: probe inference failed: {type(exc).__name__}: {exc}") from None
    if y.shape != (5, d):
        raise InterchangeError(f"{ONNX_FILE}: probe of 5 rows gave shape {list(y.shape)}, expected [5, {d}]")
    if not np.isfinite(y).all():
        raise InterchangeError(f"{ONNX_FILE}: probe inference gave non-finite reconstructions")
    return out_name


def reconstruction_graph(layers: Sequence[tuple[Any, Any]], d: int) -> bytes:
    """The article's reconstruction graph from dense layers ``(W [out, in], b [out])`` (torch layout):
    ``MatMul(x, Wᵀ) + b`` per layer, ReLU after every layer but the last; input ``features`` [N, d],
    output ``reconstruction`` [N, d]; opset 11, IR 7."""
    inits, nodes = [], []
    cur = FLOW_INPUT
    for i, (w, b) in enumerate(layers):
        wt = np.ascontiguousarray(np.asarray(w, dtype=np.float32).T)
        inits += [
            numpy_helper.from_array(wt, f"w_{i}"),
            numpy_helper.from_array(np.asarray(b, np.float32), f"b_{i}"),
        ]
        last = i == len(layers) - 1
        nodes += [
            helper.make_node("MatMul", [cur, f"w_{i}"], [f"mm_{i}"], name=f"mm_{i}"),
            helper.make_node(
                "Add", [f"mm_{i}", f"b_{i}"], [RECONSTRUCTION if last else f"add_{i}"], name=f"add_{i}"
            ),
        ]
        cur = RECONSTRUCTION if last else f"add_{i}"
        if not last:
            nodes.append(helper.make_node("Relu", [cur], [f"relu_{i}"], name=f"relu_{i}"))
            cur = f"relu_{i}"
    graph = helper.make_graph(
        nodes,
        "autoencoder",
        [helper.make_tensor_value_info(FLOW_INPUT, TensorProto.FLOAT, [None, d])],
        [helper.make_tensor_value_info(RECONSTRUCTION, TensorProto.FLOAT, [None, d])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rotorwatch"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---------------------------------------------------------------------------------------------
# Wrap (raw features → error) and unwrap (→ the reconstruction graph again)
# ---------------------------------------------------------------------------------------------
def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _names(graph: onnx.GraphProto) -> set[str]:
    names = (
        {i.name for i in graph.input} | {i.name for i in graph.initializer} | {o.name for o in graph.output}
    )
    for node in graph.node:
        names.update(node.output)
        names.add(node.name)
    return names


def _scaler_nodes(raw: str, mean: Any, std: Any, clip: float) -> tuple[list[Any], list[Any]]:
    """``features = min(max((raw − mean) / std, −clip), clip)`` (float32)."""
    inits = [
        numpy_helper.from_array(np.asarray(mean, dtype=np.float32), f"{PREFIX}mean"),
        numpy_helper.from_array(np.asarray(std, dtype=np.float32), f"{PREFIX}std"),
        numpy_helper.from_array(np.asarray(-clip, dtype=np.float32), f"{PREFIX}lo"),
        numpy_helper.from_array(np.asarray(clip, dtype=np.float32), f"{PREFIX}hi"),
    ]
    p = PREFIX
    nodes = [
        helper.make_node("Sub", [raw, f"{p}mean"], [f"{p}centred"], name=f"{p}sub_mean"),
        helper.make_node("Div", [f"{p}centred", f"{p}std"], [f"{p}z"], name=f"{p}div_std"),
        helper.make_node("Max", [f"{p}z", f"{p}lo"], [f"{p}z_lo"], name=f"{p}clip_lo"),
        helper.make_node("Min", [f"{p}z_lo", f"{p}hi"], [FLOW_INPUT], name=f"{p}clip_hi"),
    ]
    return nodes, inits


def _error_nodes(recon: str, opset: int) -> tuple[list[Any], list[Any]]:
    """``error = mean_j (recon_j − features_j)²`` per row → [N] (float32)."""
    p = PREFIX
    nodes = [
        helper.make_node("Sub", [recon, FLOW_INPUT], [f"{p}diff"], name=f"{p}sub_recon"),
        helper.make_node("Mul", [f"{p}diff", f"{p}diff"], [f"{p}sq"], name=f"{p}square"),
    ]
    inits = []
    if opset >= 18:  # ReduceMean takes its axes as an input from opset 18
        inits.append(numpy_helper.from_array(np.asarray([1], dtype=np.int64), f"{p}axes"))
        nodes.append(
            helper.make_node("ReduceMean", [f"{p}sq", f"{p}axes"], [ERROR_OUTPUT], name=f"{p}mse", keepdims=0)
        )
    else:
        nodes.append(
            helper.make_node("ReduceMean", [f"{p}sq"], [ERROR_OUTPUT], name=f"{p}mse", axes=[1], keepdims=0)
        )
    return nodes, inits


def wrap(
    recon_onnx: bytes, mean: Any, std: Any, clip: float, d: int = FLOW_FEATURES
) -> tuple[bytes, dict[str, Any]]:
    """The scoring graph: input ``input`` raw float32 [N, d] → ``error`` float32 [N] around the
    reconstruction graph (checked by :func:`check_reconstruction`), with ``std`` the divisor as used
    (already floored). Returns the bytes and the manifest's ``interchange`` block."""
    recon_name = check_reconstruction(recon_onnx, d, clip)
    model = _load(recon_onnx, ONNX_FILE)
    opset = _opset(model)
    if opset < 8:
        raise InterchangeError(f"{ONNX_FILE}: opset {opset} is too old (8 or newer needed to wrap it)")
    g = model.graph
    taken = sorted(n for n in _names(g) if n.startswith(PREFIX) or n in (RAW_INPUT, ERROR_OUTPUT))
    if taken:
        raise InterchangeError(f"{ONNX_FILE}: uses reserved tensor/node names {taken[:5]}")
    pre, pre_init = _scaler_nodes(RAW_INPUT, mean, std, clip)
    post, post_init = _error_nodes(recon_name, opset)
    inits = list(g.initializer)
    old_inputs = [i for i in g.input if i.name != FLOW_INPUT]  # initializers listed as inputs stay
    new_graph = helper.make_graph(
        pre + list(g.node) + post,
        g.name or "autoencoder",
        [helper.make_tensor_value_info(RAW_INPUT, TensorProto.FLOAT, [None, d]), *old_inputs],
        [helper.make_tensor_value_info(ERROR_OUTPUT, TensorProto.FLOAT, [None])],
        initializer=inits + pre_init + post_init,
    )
    new_graph.value_info.extend(g.value_info)
    wrapped = helper.make_model(new_graph, opset_imports=list(model.opset_import), producer_name="rotorwatch")
    wrapped.ir_version = model.ir_version
    wrapped.functions.extend(model.functions)
    onnx.checker.check_model(wrapped)
    info = {
        "format": FORMAT,
        "normalised_input": FLOW_INPUT,
        "reconstruction": recon_name,
        "added_nodes": [n.name for n in pre + post],
        "added_initializers": [i.name for i in pre_init + post_init],
        "opset": opset,
        "ir_version": int(model.ir_version),
    }
    return wrapped.SerializeToString(), info


def unwrap(scoring_onnx: bytes, info: Mapping[str, Any], d: int) -> bytes:
    """The reconstruction graph inside a :func:`wrap` graph: the ``rw_*`` nodes and initializers removed,
    input ``features`` float [N, d], output ``info['reconstruction']`` float [N, d]."""
    if info.get("format") != FORMAT:
        raise InterchangeError(
            "this model version was not built in the interchange form (trained before export support, "
            "or not an autoencoder); calibrate the asset again to export it"
        )
    model = _load(scoring_onnx, "the stored model")
    g = model.graph
    drop_nodes, drop_inits = set(info["added_nodes"]), set(info["added_initializers"])
    nodes = [n for n in g.node if n.name not in drop_nodes]
    inits = [i for i in g.initializer if i.name not in drop_inits]
    extra_inputs = [i for i in g.input if i.name != RAW_INPUT]
    recon = str(info["reconstruction"])
    graph = helper.make_graph(
        nodes,
        g.name,
        [helper.make_tensor_value_info(FLOW_INPUT, TensorProto.FLOAT, [None, d]), *extra_inputs],
        [helper.make_tensor_value_info(recon, TensorProto.FLOAT, [None, d])],
        initializer=inits,
    )
    graph.value_info.extend(g.value_info)
    out = helper.make_model(graph, opset_imports=list(model.opset_import), producer_name="rotorwatch")
    out.ir_version = model.ir_version
    out.functions.extend(model.functions)
    onnx.checker.check_model(out)
    return out.SerializeToString()
