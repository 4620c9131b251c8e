"""How many bytes of a model file are the front end's constants (window, mel matrix, ...)."""

from __future__ import annotations

from export.tflite import FRONT_END_PATTERN

import numpy as np


def tflite_front_end_bytes(model_bytes: bytes) -> int:
    """Bytes of constant buffers read by ops whose output tensor belongs to the
    ``normalize``/``logmel`` layers (parsed from the TFLite flatbuffer)."""
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(model_bytes), 0)
    graph = model.Subgraphs(0)
    seen, total = set(), 0
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        outs = [graph.Tensors(op.Outputs(j)).Name().decode() for j in range(op.OutputsLength())]
        if not any(FRONT_END_PATTERN.search(n) for n in outs):
            continue
        for j in range(op.InputsLength()):
            t = op.Inputs(j)
            if t < 0 or t in seen:
                continue
            buf = model.Buffers(graph.Tensors(t).Buffer())
            size = buf.DataLength() or int(buf.Size())
            if size:
                seen.add(t)
                total += size
    return int(total)


def onnx_front_end_bytes(onnx_bytes: bytes) -> int:
    """Bytes of initializers consumed by nodes of the ``normalize``/``logmel`` layers."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(onnx_bytes)
    inits = {i.name: i for i in proto.graph.initializer}
    consumers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def front(node, depth: int = 0) -> bool:
        """A front-end node, or a (De)QuantizeLinear feeding one (quantized graphs)."""
        if FRONT_END_PATTERN.search("/" + node.name):
            return True
        if depth < 2 and node.op_type in ("DequantizeLinear", "QuantizeLinear"):
            return any(front(c, depth + 1) for out in node.output for c in consumers.get(out, []))
        return False

    used = {name for name in inits if any(front(c) for c in consumers.get(name, []))}
    return int(sum(np.asarray(numpy_helper.to_array(inits[n])).nbytes for n in used))


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.sizes is a library module, not a command (see python -m export --help)")
