"""An ONNX file as a PyTorch module, so that it imports like any other model.

:func:`onnx_module` reads the file with ``onnx`` and writes its graph as a ``torch.fx``
GraphModule: each ``Conv``, ``Gemm``, ``BatchNormalization``... becomes the ``torch.nn`` module it
stands for, holding the file's weights (so the importer maps it onto a catalog layer), and the
other operators become the torch operations that compute them (``Reshape`` → ``x.reshape``,
``Concat`` → ``torch.cat``). Shape arithmetic (``Shape`` → ``Gather`` → ``Concat`` → ``Reshape``,
as ``x.view(x.size(0), -1)`` exports) is followed as Python values: the sizes the file fixes
become numbers, the batch size stays read from the input, so the module runs on any batch.

Why not onnx2torch: it imports torchvision, whose compiled operators do not load beside the
torch build Layerlab pins, so the import would fail before reading a single node.

An operator outside :data:`OPS` (or an attribute value the mapping does not cover) stops the
import with a message naming the node and the operator; nothing is guessed. The module is
checked against onnxruntime on a random input (:func:`check_with_onnxruntime`).
"""
from __future__ import annotations

import contextlib
import keyword
import operator
import re
from pathlib import Path

from ..errors import ExportError
from ..errors import first_line as _first_line

ONNX_SUFFIX = ".onnx"


def is_onnx_source(source) -> bool:
    return isinstance(source, (str, Path)) and str(source).lower().endswith(ONNX_SUFFIX) and \
        ":" not in Path(str(source)).name


def _torch():
    import torch

    return torch


class _Unsupported(Exception):
    """An ONNX node this converter cannot write; the message says what."""


# -- reading the file ---------------------------------------------------------------------------
def onnx_module(path, label: str | None = None):
    """(GraphModule, {input name: shape of one sample}) for the ONNX file ``path``; ExportError
    naming the file (or ``label``) and the node for anything that cannot be converted."""
    import onnx

    path = Path(path)
    label = label or path.name
    if not path.is_file():
        raise ExportError(f"{path}: there is no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file, in any way
        raise ExportError(f"{label}: not a readable ONNX model ({_first_line(exc)})") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 9:
        raise ExportError(f"{label}: opset {opset} is older than Layerlab reads (9 and later)")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - ranks then come from the values themselves
        pass
    converter = _Converter(model, opset, label)
    missing = [o for n in model.graph.node for o in n.output if o and (
        o not in converter.ranks or any(not isinstance(d, int) for d in converter.ranks[o]))]
    if missing:  # shape inference left sizes open (``unk__3``): run the file to see them
        for name, dims in _probed_dims(model, missing).items():
            known = converter.ranks.get(name)
            if known is not None and len(known) == len(dims):  # the file's batch names stay
                dims = [d if isinstance(d, int) else k for k, d in zip(known, dims)]
            converter.ranks[name] = dims
    return converter.convert(), converter.sample_shapes


def onnx_scope(node) -> list[tuple[str, str]]:
    """The modules of the exporting model an ONNX node ran inside, outermost first, as
    ``(path, class name)``: from torch.onnx's ``pkg.torch.onnx.name_scopes`` and
    ``class_hierarchy`` (the dynamo exporter), or from a name such as
    ``/layer1/layer1.0/conv1/Conv`` (the TorchScript exporter; no class names: containers).
    Empty for a file that says nothing of it. The importer groups by these as it groups a
    traced module's hierarchy (:mod:`engine.importer.grouping`)."""
    import ast

    props = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" in props:
        try:
            names = ast.literal_eval(props["pkg.torch.onnx.name_scopes"])
            classes = ast.literal_eval(props.get("pkg.torch.onnx.class_hierarchy", "[]"))
        except (ValueError, SyntaxError):
            return []
        if not isinstance(names, list) or not isinstance(classes, list):
            return []
        classes = [str(c).rsplit(".", 1)[-1] for c in classes]
        return [(str(n), classes[i] if i < len(classes) else "Sequential")
                for i, n in enumerate(names) if 0 < i < len(names) - 1 and n]
    parts = [p for p in (node.name or "").split("/") if p]
    if len(parts) < 2 or (node.name or "")[:1] != "/":
        return []
    scopes, path = [], ""
    for part in parts[:-1]:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
        scopes.append((path, "Sequential"))
    return scopes


def _probed_dims(model, names: list[str]) -> dict[str, list]:
    """Dims of ``names`` from running the file at batch 2 and 3 with onnxruntime (a dim that
    follows the batch is symbolic); {} when it cannot run."""
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
    except ImportError:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.ValueInfoProto(name=name))
    inits = {i.name for i in model.graph.initializer}
    try:
        session = ort.InferenceSession(probe.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        runs = []
        for batch in (2, 3):
            feeds = {}
            for info in model.graph.input:
                if info.name in inits:
                    continue
                dims = [d.dim_value if d.HasField("dim_value") else batch
                        for d in info.type.tensor_type.shape.dim]
                kind = info.type.tensor_type.elem_type
                feeds[info.name] = np.ones(dims, np.int64) if kind == 7 else \
                    np.random.default_rng(0).standard_normal(dims).astype(np.float32)
            outputs = session.run(names, feeds)
            runs.append([np.shape(o) for o in outputs])
    except Exception:  # noqa: BLE001 - a file onnxruntime cannot run: no more ranks
        return {}
    found = {}
    for name, a, b in zip(names, *runs):
        if len(a) == len(b):
            found[name] = [p if p == q else "?" for p, q in zip(a, b)]
    return found


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


class _Converter:
    def __init__(self, model, opset: int, label: str):
        import torch.fx as fx
        import torch.nn as nn
        from onnx import numpy_helper

        self.model, self.opset, self.label = model, opset, label
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.tracer = fx.proxy.GraphAppendingTracer(self.graph)
        g = model.graph
        self.consts: dict = {}  # ONNX name -> torch tensor known before running
        for init in g.initializer:
            self.consts[init.name] = self._tensor(numpy_helper.to_array(init))
        # the file's weights: used by an operation directly, they stay trainable parameters
        self.weights = {id(v) for v in self.consts.values() if _is_weight(v)}
        self.env: dict = {}  # ONNX name -> Proxy | tensor | shape list | number
        self.ranks: dict[str, list] = {}  # ONNX name -> its dims (int or symbolic name)
        self.elem_types: dict[str, int] = {}  # ONNX name -> its TensorProto element type
        for info in [*g.input, *g.value_info, *g.output]:
            dims = self._dims(info)
            if dims is not None:
                self.ranks[info.name] = dims
            if info.type.WhichOneof("value") == "tensor_type":
                self.elem_types[info.name] = info.type.tensor_type.elem_type
        self.names: set[str] = set()
        self.attrs_made: dict[str, object] = {}  # constant tensors registered once each
        self.consumers: dict[str, int] = {}
        for node in g.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        for out in g.output:
            self.consumers[out.name] = self.consumers.get(out.name, 0) + 1
        self.fused: set[str] = set()  # Add nodes folded into the MatMul before them
        self.sample_shapes: dict[str, list[int]] = {}
        self.shared: dict[tuple, str] = {}  # (operator, weights, attributes) -> module name
        self.fixed_batch: int | None = None
        self.zeros: set[str] = set()  # ONNX names of values filled with zeros

    @staticmethod
    def _tensor(array):
        import numpy as np
        import torch

        array = np.array(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        return torch.from_numpy(array.copy())

    @staticmethod
    def _dims(info):
        kind = info.type.WhichOneof("value")
        if kind != "tensor_type" or not info.type.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in info.type.tensor_type.shape.dim]

    # -- the whole graph
    def convert(self):
        import torch.fx as fx

        g = self.model.graph
        inputs = [i for i in g.input if i.name not in self.consts]
        if not inputs:
            raise ExportError(f"{self.label}: the model has no input (every input is a weight)")
        for info in inputs:
            dims = self.ranks.get(info.name)
            name = self._free(re.sub(r"\W", "_", info.name) or "x")
            self.env[info.name] = fx.Proxy(self.graph.placeholder(name), self.tracer)
            if dims and len(dims) > 1 and all(isinstance(d, int) and d > 0 for d in dims[1:]):
                self.sample_shapes[name] = [int(d) for d in dims[1:]]
            if dims and isinstance(dims[0], int) and dims[0] > 0:
                self.fixed_batch = dims[0]  # the file was exported for this batch size only
        seen = set(self.graph.nodes)  # the fx nodes made so far (each ONNX node's scope)
        self.scopes: dict[str, list] = {}
        for index, node in enumerate(g.node):
            where = f"node {node.name or index} ({node.op_type})"
            handler = OPS.get(node.op_type)
            if node.domain not in ("", "ai.onnx") or handler is None:
                raise ExportError(f"{self.label}: {where}: the operator {node.op_type} is not "
                                  "one Layerlab converts (see the list in the import docs)")
            try:
                outs = handler(self, node, [self._value(n) for n in node.input], _attrs(node))
            except _Unsupported as exc:
                raise ExportError(f"{self.label}: {where}: {exc}") from None
            except ExportError:
                raise
            except Exception as exc:  # noqa: BLE001 - torch refusing the values: same cause
                raise ExportError(f"{self.label}: {where}: cannot be converted "
                                  f"({_first_line(exc)})") from None
            outs = outs if isinstance(outs, tuple) else (outs,)  # a list is one shape value
            if node.op_type in _ZERO_KEEPING_OPS and node.input and \
                    self._zeros(node.input[0]):
                self.zeros.update(o for o in node.output if o)
            for name, value in zip(node.output, outs):
                if name:
                    self.env[name] = value
            scope = onnx_scope(node)
            for made in reversed(self.graph.nodes):
                if made in seen:
                    break
                seen.add(made)
                if scope:
                    self.scopes[made.name] = scope
        results = [self._as_node(self._value(o.name), o.name) for o in g.output]
        self.graph.output(results[0] if len(results) == 1 else tuple(results))
        try:
            self.graph.lint()
            gm = fx.GraphModule(self.root, self.graph, class_name=_class_name(self.label))
            if gm.graph.eliminate_dead_code():  # the permutes that _permute folded together
                gm.recompile()
        except Exception as exc:  # noqa: BLE001 - a name or value fx cannot write as code
            raise ExportError(f"{self.label}: the converted model cannot be built "
                              f"({_first_line(exc)})") from None
        gm.onnx_converted = True  # the importer's trace reads its constants as graph values
        gm.onnx_batch = self.fixed_batch
        gm.onnx_scopes = self.scopes  # fx node name -> the exporting model's module stack
        return gm

    def _zeros(self, name: str) -> bool:
        """A value known to be all zeros: a constant of zeros, or made of one."""
        import torch

        if name in self.zeros:
            return True
        value = self.consts.get(name)
        return isinstance(value, torch.Tensor) and value.numel() > 0 and not bool(value.any())

    def _value(self, name: str):
        if not name:
            return None
        if name in self.env:
            return self.env[name]
        if name in self.consts:
            return self.consts[name]
        raise _Unsupported(f"it reads {name!r}, which no earlier node computes")

    def _free(self, base: str) -> str:
        base = re.sub(r"\W", "_", base).strip("_") or "op"
        if base[0].isdigit():
            base = f"n{base}"
        if keyword.iskeyword(base) or base in ("self", "torch", "nn"):
            base += "_"  # `in`, `class`: attribute names the generated code must be able to write
        name, i = base, 1
        while name in self.names or hasattr(self.root, name):
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def module_name(self, node, weight: str | None = None) -> str:
        """``conv1`` for a Conv whose weight is ``conv1.weight`` or whose node is
        ``/conv1/Conv``; the operator's name otherwise."""
        if weight and weight.endswith(".weight"):
            return self._free(weight[:-len(".weight")].replace(".", "_"))
        parts = [p for p in (node.name or "").split("/") if p]
        if len(parts) >= 2:
            return self._free(parts[-2].replace(".", "_"))
        return self._free(node.op_type.lower())

    # -- values
    def is_graph(self, value) -> bool:
        import torch.fx as fx

        return isinstance(value, fx.Proxy)

    def const(self, value, what: str = "value"):
        """A tensor known now (the file's constant), or _Unsupported."""
        import torch

        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
            return torch.tensor(value)
        if isinstance(value, (int, float)):
            return torch.tensor(value)
        raise _Unsupported(f"its {what} must be a constant of the file, and is computed")

    def ints(self, value, what: str) -> list[int]:
        return [int(v) for v in self.const(value, what).reshape(-1).tolist()]

    def call(self, name: str, module, *args, key=None):
        """Run ``module`` (added as ``name``) on ``args`` in the graph. Nodes with the same
        ``key`` (the operator and the weights it reads) call one module, as the file shares
        the weights (a loop unrolled by the exporter)."""
        import torch.fx as fx

        if key is not None and key in self.shared:
            self.names.discard(name)
            name = self.shared[key]
        else:
            self.root.add_module(name, module)
            if key is not None:
                self.shared[key] = name
        node = self.graph.call_module(name, tuple(self._as_node(a) for a in args))
        return fx.Proxy(node, self.tracer)

    def proxy(self, node):
        import torch.fx as fx

        return fx.Proxy(node, self.tracer)

    def fn(self, target, *args, **kwargs):
        """``target(*args)``: computed now when nothing is in the graph, else a graph node."""
        import torch.fx as fx

        if not any(self._has_graph(a) for a in (*args, *kwargs.values())):
            return target(*args, **kwargs)
        node = self.graph.call_function(target, tuple(self._arg(a) for a in args),
                                        {k: self._arg(v) for k, v in kwargs.items()})
        return fx.Proxy(node, self.tracer)

    def method(self, name: str, obj, *args):
        import torch.fx as fx

        if not self._has_graph(obj) and not any(self._has_graph(a) for a in args):
            return getattr(obj, name)(*args)
        node = self.graph.call_method(name, (self._as_node(obj), *map(self._arg, args)))
        return fx.Proxy(node, self.tracer)

    def scalar_or_tensor(self, value):
        """A shape value meeting a tensor: its one element, or a tensor of its elements."""
        if isinstance(value, list):
            return value[0] if len(value) == 1 else (
                self.fn(_torch().tensor, value) if self._has_graph(value)
                else self.const(value))
        return value

    def integer(self, node, *values) -> bool:
        """Whether an operator works on integer tensors: its file says so, or one of its
        constant operands is an integer tensor (ONNX's operands share one type)."""
        import torch

        ints = {2, 3, 4, 5, 6, 7, 12, 13}  # (u)int8/16/32/64
        named = [self.elem_types.get(n) for n in (*node.input, *node.output) if n]
        if any(t in ints for t in named if t):
            return True
        return any(isinstance(v, torch.Tensor) and not v.is_floating_point() and
                   v.dtype != torch.bool for v in values)

    def is_float(self, value) -> bool:
        """A float among sizes: a number, ``float(...)``, ``math.sqrt(...)``, a true division,
        or arithmetic on one of those."""
        if isinstance(value, float):
            return True
        if not self.is_graph(value) and not hasattr(value, "op"):
            return False
        node = value.node if self.is_graph(value) else value
        if node.op != "call_function":
            return False
        if node.target in (float, operator.truediv, operator.pow):
            return True
        return node.target in _SIZE_OPS.values() and any(
            isinstance(a, float) or (hasattr(a, "op") and self.is_float(a)) for a in node.args)

    def is_size(self, value) -> bool:
        """A graph value that is a size read from the input (``x.shape[0]``), not a tensor."""
        node = value.node
        return node.op == "call_function" and (
            node.target in (getattr, operator.truediv, operator.mod, operator.neg,
                            operator.abs, operator.pow) or node.target in _SIZE_OPS.values() or (
                node.target is operator.getitem and node.args[0].op == "call_function" and
                node.args[0].target is getattr))

    def _has_graph(self, value) -> bool:
        if isinstance(value, (list, tuple)):
            return any(self._has_graph(v) for v in value)
        return self.is_graph(value)

    def _arg(self, value):
        import torch

        if isinstance(value, (list, tuple)):
            return type(value)(self._arg(v) for v in value)
        if isinstance(value, torch.Tensor):
            return self._as_node(value)
        return value.node if self.is_graph(value) else value

    def _as_node(self, value, what: str = "value"):
        """An fx node for a graph value or a constant tensor: a parameter of the module for a
        weight of the file, a buffer for any other constant."""
        import torch
        import torch.nn as nn

        if self.is_graph(value):
            return value.node
        if isinstance(value, (int, float)):
            value = torch.tensor(value)
        if isinstance(value, list):
            if self._has_graph(value):  # a shape computed from the input: a tensor of sizes
                return self.fn(torch.tensor, value).node
            value = torch.tensor(value)
        if not isinstance(value, torch.Tensor):
            raise _Unsupported(f"its {what} is not a tensor")
        key = id(value)
        if key not in self.attrs_made:
            if key in self.weights:
                name = self._free(f"weight_{len(self.attrs_made)}")
                self.root.register_parameter(name, nn.Parameter(value.clone()))
            else:
                name = self._free(f"const_{len(self.attrs_made)}")
                self.root.register_buffer(name, value.clone())
            self.attrs_made[key] = (self.graph.get_attr(name), value)
        return self.attrs_made[key][0]

    def operand(self, value):
        """A value for a binary operation: one-element constants as Python numbers (they
        broadcast alike and keep the graph free of tiny buffers)."""
        import torch

        if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dim() <= 1:
            number = value.reshape(()).item()
            return number
        return value

    def rank(self, name: str, value) -> int | None:
        import torch

        if isinstance(value, torch.Tensor):
            return value.dim()
        dims = self.ranks.get(name)
        return len(dims) if dims is not None else None

    def shape_of(self, name: str, value) -> list:
        """The ``Shape`` of a value: known sizes as numbers, the others read from it."""
        import torch

        if isinstance(value, torch.Tensor):
            return list(value.shape)
        dims = self.ranks.get(name)
        if dims is None:
            raise _Unsupported(f"the rank of {name!r} is unknown (run onnx shape inference on "
                               "the file first)")
        shape = self.fn(getattr, value, "shape") if any(
            not (isinstance(d, int) and d > 0) for d in dims) else None
        return [d if isinstance(d, int) and d > 0 else self.fn(operator.getitem, shape, i)
                for i, d in enumerate(dims)]


def _is_weight(tensor) -> bool:
    """A float initializer of more than one value that is not a mask (only 0, 1 and the
    lowest or infinite values): a weight to train, not a constant of the computation."""
    import torch

    if not tensor.is_floating_point() or tensor.numel() <= 1:
        return False
    lowest = torch.finfo(tensor.dtype).min
    mask = (tensor == 0) | (tensor == 1) | torch.isinf(tensor) | (tensor == lowest)
    return not bool(mask.all())


def _class_name(label: str) -> str:
    stem = Path(label).name.split(".")[0]
    name = "".join(p[:1].upper() + p[1:] for p in re.split(r"\W|_", stem) if p)
    return name if name.isidentifier() else f"Onnx{name}"


# -- the operators ------------------------------------------------------------------------------
def _pads(pads, spatial: int, what: str = "padding"):
    """ONNX pads (begin..., end...) as torch's symmetric padding, or _Unsupported."""
    pads = list(pads or [0] * (2 * spatial))
    begin, end = pads[:spatial], pads[spatial:]
    if begin != end:
        return None
    return tuple(begin)


def _auto_pad(attrs: dict) -> None:
    mode = _decode(attrs.get("auto_pad", "NOTSET"))
    if mode not in ("NOTSET", "VALID", ""):
        raise _Unsupported(f"auto_pad {mode} is not converted (export with explicit pads)")


def _spatial_pad(c, x, pads, spatial: int, value: float = 0.0):
    """A separate F.pad for asymmetric pads; returns (input, symmetric padding)."""
    import torch.nn.functional as F

    same = _pads(pads, spatial)
    if same is not None:
        return x, same
    pads = list(pads)
    torch_pads = []
    for i in reversed(range(spatial)):
        torch_pads += [pads[i], pads[i + spatial]]
    return c.fn(F.pad, x, torch_pads, "constant", value), (0,) * spatial


def _conv_inputs(c, ins, a):
    """(input, weight, bias or None, spatial dimensions) of a Conv or ConvTranspose node."""
    w = c.const(ins[1], "weight")
    b = c.const(ins[2], "bias") if len(ins) > 2 and ins[2] is not None else None
    _auto_pad(a)
    return ins[0], w, b, w.dim() - 2


def _conv(c, node, ins, a):
    import torch.nn as nn

    x, w, b, spatial = _conv_inputs(c, ins, a)
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}.get(spatial)
    if cls is None:
        raise _Unsupported(f"a {spatial}-D convolution is not converted")
    x, padding = _spatial_pad(c, x, a.get("pads"), spatial)
    groups = int(a.get("group", 1))
    conv = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
               stride=tuple(a.get("strides", [1] * spatial)), padding=padding,
               dilation=tuple(a.get("dilations", [1] * spatial)), groups=groups, bias=b is not None)
    _load(conv, weight=w, bias=b)
    return c.call(c.module_name(node, node.input[1]), conv, x, key=_key(node))


def _key(node) -> tuple:
    """What makes two nodes the same module: the operator, its weights, its attributes."""
    return (node.op_type, tuple(node.input[1:]), str(_attrs(node)))


def _conv_transpose(c, node, ins, a):
    import torch.nn as nn

    x, w, b, spatial = _conv_inputs(c, ins, a)
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}.get(spatial)
    padding = _pads(a.get("pads"), spatial)
    if cls is None or padding is None or "output_shape" in a:
        raise _Unsupported("only a transposed convolution with symmetric pads is converted")
    groups = int(a.get("group", 1))
    conv = cls(w.shape[0], w.shape[1] * groups, tuple(w.shape[2:]),
               stride=tuple(a.get("strides", [1] * spatial)), padding=padding,
               output_padding=tuple(a.get("output_padding", [0] * spatial)), groups=groups,
               dilation=tuple(a.get("dilations", [1] * spatial)), bias=b is not None)
    _load(conv, weight=w, bias=b)
    return c.call(c.module_name(node, node.input[1]), conv, x, key=_key(node))


def _load(module, **tensors) -> None:
    import torch

    with torch.no_grad():
        for name, value in tensors.items():
            if value is None:
                continue
            target = getattr(module, name)
            if tuple(target.shape) != tuple(value.shape):
                raise _Unsupported(f"its {name} has shape {tuple(value.shape)}, where "
                                   f"{tuple(target.shape)} was expected")
            target.copy_(value.to(target.dtype))


def _linear(c, name: str, w, b, x, key=None):
    """nn.Linear with ``weight`` (out, in)."""
    import torch.nn as nn

    linear = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    _load(linear, weight=w, bias=b)
    return c.call(name, linear, x, key=key)


def _gemm(c, node, ins, a):
    import torch

    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    trans_a, trans_b = int(a.get("transA", 0)), int(a.get("transB", 0))
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    if not c.is_graph(w) and not trans_a and alpha == 1.0 and beta == 1.0 and (
            bias is None or (isinstance(bias, torch.Tensor) and bias.dim() == 1)):
        w = c.const(w)
        return _linear(c, c.module_name(node, node.input[1]), w if trans_b else w.t(), bias, x,
                       key=_key(node))
    if trans_a:
        x = c.method("t", x)
    if trans_b:
        w = c.method("t", w)
    out = c.fn(torch.matmul, x, w)
    if alpha != 1.0:
        out = c.fn(torch.mul, out, alpha)
    if bias is not None:
        out = c.fn(torch.add, out, c.fn(torch.mul, bias, beta) if beta != 1.0 else bias)
    return out


def _matmul(c, node, ins, a):
    import torch

    x, w = ins
    if not c.is_graph(w) and isinstance(w, torch.Tensor) and w.dim() == 2:
        bias = _fusable_bias(c, node, w.shape[1])
        return _linear(c, c.module_name(node, node.input[1]), w.t(), bias, x,
                       key=(*_key(node), id(bias)))
    return c.fn(torch.matmul, x, w)


def _fusable_bias(c, node, width: int):
    """The bias of an ``Add`` that reads only this MatMul and a constant (width,) vector; that
    Add then passes the value on (it is the Linear's bias)."""
    import torch

    out = node.output[0]
    if c.consumers.get(out) != 1:
        return None
    for later in c.model.graph.node:
        if later.op_type == "Add" and out in later.input and len(later.input) == 2:
            other = later.input[1] if later.input[0] == out else later.input[0]
            value = c.consts.get(other)
            if isinstance(value, torch.Tensor) and tuple(value.shape) == (width,):
                c.fused.add(later.output[0])  # outputs are unique; names may be empty
                return value
    return None


_SIZE_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
             "div": operator.floordiv}  # on sizes (whole numbers, some read from the input)


def _divide(p, q):
    """ONNX Div: integer inputs divide to an integer (truncated), like the file's runtime."""
    import torch

    if isinstance(p, torch.Tensor) and isinstance(q, torch.Tensor) and not (
            p.is_floating_point() or q.is_floating_point()):
        return torch.div(p, q, rounding_mode="trunc")
    return p / q


def _binary(target, name: str):
    def handler(c, node, ins, a):
        import torch

        x, y = ins
        if node.output[0] in c.fused:  # the bias was folded into the MatMul
            return x if c.is_graph(x) else y
        tensors = [c.is_graph(v) and not c.is_size(v) for v in (x, y)]
        if any(tensors):  # a tensor of the model: sizes join it as numbers or a tensor
            x, y = (c.scalar_or_tensor(v) for v in (x, y))
            if name == "div" and c.integer(node, x, y):  # ONNX divides integers to integers
                return c.fn(torch.div, c.operand(x), c.operand(y), rounding_mode="trunc")
            return c.fn(getattr(torch, name), c.operand(x), c.operand(y))
        size_op = _SIZE_OPS[name]
        if isinstance(x, list) or isinstance(y, list) or c.is_graph(x) or c.is_graph(y):
            xs = x if isinstance(x, list) else [c.operand(x)]
            ys = y if isinstance(y, list) else [c.operand(y)]
            if len(xs) == 1 and len(ys) > 1:
                xs = xs * len(ys)
            if len(ys) == 1 and len(xs) > 1:
                ys = ys * len(xs)
            out = [c.fn(operator.truediv if name == "div" and (
                c.is_float(p) or c.is_float(q)) else size_op, p, q) for p, q in zip(xs, ys)]
            return out if isinstance(x, list) or isinstance(y, list) else out[0]
        return target(x, y)  # two constants of the file: computed now
    return handler


def _module_act(factory):
    def handler(c, node, ins, a):
        return c.call(c.module_name(node), factory(a), ins[0])
    return handler


_MATH = {"sqrt": "sqrt", "exp": "exp", "log": "log", "floor": "floor", "ceil": "ceil",
         "abs": "fabs", "erf": "erf"}


def _size_fn(name: str):
    """The traceable form of ``name`` on a size read from the input, or None."""
    return {"neg": operator.neg, "abs": operator.abs,
            "sqrt": lambda v: operator.pow(v, 0.5)}.get(name)


def _torch_fn(name: str, **fixed):
    def handler(c, node, ins, a):
        import math

        import torch

        x = ins[0]
        if isinstance(x, list) or (c.is_graph(x) and c.is_size(x)):  # on sizes
            values = x if isinstance(x, list) else [x]
            out = []
            for v in values:
                if not c.is_graph(v) and name in _MATH:  # a size the file fixes: a number
                    out.append(getattr(math, _MATH[name])(v))
                elif not c.is_graph(v) and name == "neg":
                    out.append(-v)
                elif _size_fn(name) is not None and c.is_graph(v):
                    out.append(_size_fn(name)(v))  # records operator.pow / neg / abs
                else:
                    raise _Unsupported(f"{name} of a size read from the input is not "
                                       "converted")
            return out if isinstance(x, list) else out[0]
        return c.fn(getattr(torch, name), x, **fixed)
    return handler


def _clip(c, node, ins, a):
    import torch
    import torch.nn as nn

    low = a.get("min") if c.opset < 11 else (
        c.operand(c.const(ins[1], "min")) if len(ins) > 1 and ins[1] is not None else None)
    high = a.get("max") if c.opset < 11 else (
        c.operand(c.const(ins[2], "max")) if len(ins) > 2 and ins[2] is not None else None)
    if low == 0 and high == 6:
        return c.call(c.module_name(node), nn.ReLU6(), ins[0])
    if low == 0 and high is None:
        return c.call(c.module_name(node), nn.ReLU(), ins[0])
    return c.fn(torch.clamp, ins[0], low, high)


def _softmax(name: str):
    def handler(c, node, ins, a):
        import torch.nn as nn

        cls = getattr(nn, name)
        rank = c.rank(node.input[0], ins[0])
        axis = int(a.get("axis", -1 if c.opset >= 13 else 1))
        if c.opset < 13 and rank is not None and (axis % rank) != rank - 1:
            raise _Unsupported("a Softmax of opset < 13 over several axes is not converted")
        return c.call(c.module_name(node), cls(dim=axis), ins[0])
    return handler


def _resize(c, node, ins, a):
    """Resize as torch's nn.Upsample (the catalog's Upsample where it can be one: the same
    factor on every side, nearest or (bi)linear without align_corners)."""
    import torch.nn as nn

    x = ins[0]
    rank = c.rank(node.input[0], x)
    if rank not in (3, 4, 5):
        raise _Unsupported("a Resize of an input whose rank is unknown, or not 3, 4 or 5, is "
                           "not converted")
    mode = _text(a.get("mode", b"nearest"))
    coords = _text(a.get("coordinate_transformation_mode", b"half_pixel"))
    nearest = _text(a.get("nearest_mode", b"round_prefer_floor"))
    if int(a.get("antialias", 0)) or int(a.get("exclude_outside", 0)):
        raise _Unsupported("a Resize with antialias or exclude_outside is not converted")
    linear = {3: "linear", 4: "bilinear", 5: "trilinear"}[rank]
    if mode == "nearest" and coords == "asymmetric" and nearest == "floor":
        torch_mode, corners = "nearest", None
    elif mode == "linear" and coords in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        torch_mode, corners = linear, coords == "align_corners"
    elif mode == "cubic" and rank == 4 and float(a.get("cubic_coeff_a", -0.75)) == -0.75 and \
            coords in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        torch_mode, corners = "bicubic", coords == "align_corners"
    else:
        raise _Unsupported(f"a Resize in mode {mode} with coordinate_transformation_mode "
                           f"{coords} (and nearest_mode {nearest}) has no torch equal")
    scales = ins[2] if len(ins) > 2 and node.input[2] else None
    sizes = ins[3] if len(ins) > 3 and node.input[3] else None
    if scales is not None and c.const(scales, "scales").numel():
        factors = [float(v) for v in c.const(scales, "scales").tolist()]
        if factors[:2] != [1.0, 1.0]:
            raise _Unsupported("a Resize that scales the batch or the channels is not "
                               "converted")
        spatial = factors[2:]
        factor = spatial[0] if len(set(spatial)) == 1 else tuple(spatial)
        module = nn.Upsample(scale_factor=factor, mode=torch_mode, align_corners=corners)
    elif sizes is not None:
        wanted = c.ints(sizes, "sizes")
        module = nn.Upsample(size=tuple(wanted[2:]), mode=torch_mode, align_corners=corners)
    else:
        raise _Unsupported("a Resize with neither scales nor sizes")
    return c.call(c.module_name(node), module, x)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pool(kind):
    def handler(c, node, ins, a):
        import torch.nn as nn

        _auto_pad(a)
        kernel = list(a["kernel_shape"])
        spatial = len(kernel)
        x, padding = ins[0], _pads(a.get("pads"), spatial)
        if padding is None:
            if kind == "max":
                x, padding = _spatial_pad(c, x, a.get("pads"), spatial, float("-inf"))
            else:
                raise _Unsupported("an AveragePool with asymmetric pads is not converted")
        stride = tuple(a.get("strides", [1] * spatial))
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            if len(node.output) > 1 and node.output[1]:
                raise _Unsupported("a MaxPool that returns its indices is not converted")
            cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[spatial]
            pool = cls(tuple(kernel), stride, padding, tuple(a.get("dilations", [1] * spatial)),
                       ceil_mode=ceil)
        else:
            cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[spatial]
            pool = cls(tuple(kernel), stride, padding, ceil_mode=ceil,
                       count_include_pad=bool(a.get("count_include_pad", 0)))
        return c.call(c.module_name(node), pool, x)
    return handler


def _global_pool(kind):
    def handler(c, node, ins, a):
        import torch.nn as nn

        rank = c.rank(node.input[0], ins[0])
        spatial = (rank or 4) - 2
        if kind == "avg":
            cls = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
        else:
            cls = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
        if spatial not in cls:
            raise _Unsupported(f"a global pool over {spatial} dimensions is not converted")
        return c.call(c.module_name(node), cls[spatial](1), ins[0])
    return handler


def _batch_norm(c, node, ins, a):
    import torch.nn as nn

    x = ins[0]
    scale, bias, mean, var = (c.const(v, "statistic") for v in ins[1:5])
    rank = c.rank(node.input[0], x)
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}.get(rank)
    if cls is None:
        raise _Unsupported("the rank of its input is unknown")
    momentum = 1.0 - float(a.get("momentum", 0.9))
    norm = cls(scale.shape[0], eps=float(a.get("epsilon", 1e-5)), momentum=momentum)
    _load(norm, weight=scale, bias=bias, running_mean=mean, running_var=var)
    name = node.input[1][:-len(".weight")] if node.input[1].endswith(".weight") else None
    return c.call(c.module_name(node, f"{name}.weight" if name else None), norm, x)


def _layer_norm(c, node, ins, a):
    import torch.nn as nn

    x, scale = ins[0], c.const(ins[1], "scale")
    bias = c.const(ins[2], "bias") if len(ins) > 2 and ins[2] is not None else None
    rank = c.rank(node.input[0], x)
    axis = int(a.get("axis", -1))
    if rank is not None and (axis % rank) != rank - scale.dim():
        raise _Unsupported("a LayerNormalization whose scale does not cover the axes from "
                           "`axis` on is not converted")
    norm = nn.LayerNorm(tuple(scale.shape), eps=float(a.get("epsilon", 1e-5)),
                        bias=bias is not None)
    _load(norm, weight=scale, bias=bias)
    return c.call(c.module_name(node, node.input[1]), norm, x)


def _flatten(c, node, ins, a):
    import torch
    import torch.nn as nn

    axis = int(a.get("axis", 1))
    if axis < 0:  # counted from the end: ONNX allows -rank..rank
        rank = c.rank(node.input[0], ins[0])
        if rank is None:
            raise _Unsupported("a Flatten with a negative axis of an input of unknown rank")
        axis += rank
    if axis == 1:
        return c.call(c.module_name(node), nn.Flatten(1), ins[0])
    if axis == 0:
        return c.method("reshape", ins[0], 1, -1)
    shape = c.shape_of(node.input[0], ins[0])
    lead = shape[0]
    for d in shape[1:axis]:
        lead = c.fn(operator.mul, lead, d)
    return c.fn(torch.reshape, ins[0], (lead, -1))


def _reshape(c, node, ins, a):
    x, shape = ins[0], ins[1]
    target = list(shape) if isinstance(shape, list) else c.ints(shape, "shape")
    zeros = any(isinstance(d, int) and d == 0 for d in target)
    if zeros and int(a.get("allowzero", 0)):
        raise _Unsupported("a Reshape to an empty dimension (allowzero) is not converted")
    inner = _permuted(c, x)
    keep = len(target) - 1
    if inner is not None and keep >= 1 and \
            inner[1][keep:] == list(range(keep, len(inner[1]))) and \
            all(_same_dim(c, node.input[0], x, i, d) for i, d in enumerate(target[:-1])) and \
            _rest_merged(c, node.input[0], x, keep, target[-1]):
        # the leading dimensions kept, the permute's untouched trailing ones merged
        source, perm = inner
        return _permute(c, _flatten_from(c, source, keep), perm[:keep] + [keep])
    if zeros:
        dims = c.shape_of(node.input[0], x)
        target = [dims[i] if isinstance(d, int) and d == 0 else d for i, d in enumerate(target)]
    if isinstance(x, list):
        return x
    if not c.is_graph(x):
        return x.reshape([int(d) for d in target])
    return c.method("reshape", x, *target) if target else c.method("reshape", x, ())


def _transpose(c, node, ins, a):
    perm = a.get("perm")
    if perm is None:
        rank = c.rank(node.input[0], ins[0])
        if rank is None:
            raise _Unsupported("the rank of its input is unknown")
        perm = list(reversed(range(rank)))
    return _permute(c, ins[0], [int(p) for p in perm])


def _permute(c, x, perm: list[int]):
    """``x.permute(*perm)``; a permute of a permute is one (none when they cancel), so the
    transposes an exporter writes around a recurrent layer leave the batch first."""
    if c.is_graph(x) and x.node.op == "call_method" and x.node.target == "permute" and \
            len(x.node.args) == len(perm) + 1:
        inner = [int(p) for p in x.node.args[1:]]
        perm = [inner[p] for p in perm]
        x = c.proxy(x.node.args[0])
    if perm == list(range(len(perm))):
        return x
    return c.method("permute", x, *perm)


# gate order of torch's weight rows, as chunks of the ONNX rows: LSTM i o f c -> i f g o,
# GRU z r h -> r z n
_GATES = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2)}


def _recurrent(kind: str):
    def handler(c, node, ins, a):
        import torch
        import torch.nn as nn

        an = "an" if kind == "LSTM" else "a"
        hidden = int(a["hidden_size"])
        direction = a.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        if direction not in ("forward", "bidirectional"):
            raise _Unsupported(f"a {direction} {kind} (torch has forward and bidirectional "
                               "ones) is not converted")
        for attr in ("activations", "activation_alpha", "activation_beta", "clip"):
            if attr in a:
                raise _Unsupported(f"{an} {kind} with `{attr}` set is not converted (torch's "
                                   f"{kind} has the default activations and no clip)")
        if int(a.get("input_forget", 0)):
            raise _Unsupported("an LSTM with input_forget is not converted")
        if kind == "GRU" and not int(a.get("linear_before_reset", 0)):
            raise _Unsupported("a GRU with linear_before_reset=0 is not converted (torch's GRU "
                               "applies the reset gate after the recurrent product)")
        layout = int(a.get("layout", 0))
        x = ins[0]
        w, r = c.const(ins[1], "weights"), c.const(ins[2], "weights")
        b = c.const(ins[3], "bias") if len(ins) > 3 and ins[3] is not None else None
        if len(ins) > 4 and node.input[4]:
            raise _Unsupported(f"{an} {kind} with sequence_lens is not converted")
        for i in range(5, min(len(ins), 7 if kind == "LSTM" else 6)):
            if node.input[i] and not c._zeros(node.input[i]):
                raise _Unsupported(f"{an} {kind} whose initial state is not zeros is not "
                                   "converted")
        if kind == "LSTM" and len(ins) > 7 and node.input[7]:
            raise _Unsupported("an LSTM with peepholes is not converted")
        dirs = 2 if direction == "bidirectional" else 1
        gates = _GATES[kind]
        module = getattr(nn, kind)(w.shape[2], hidden, batch_first=True,
                                   bidirectional=dirs == 2, bias=b is not None)

        def rows(t):  # (gates*H, ...) in ONNX's gate order -> torch's
            return torch.cat([t[g * hidden:(g + 1) * hidden] for g in gates])
        for d in range(dirs):
            suffix = "_l0" + ("_reverse" if d else "")
            tensors = {f"weight_ih{suffix}": rows(w[d]), f"weight_hh{suffix}": rows(r[d])}
            if b is not None:
                n = len(gates) * hidden
                tensors[f"bias_ih{suffix}"] = rows(b[d][:n])
                tensors[f"bias_hh{suffix}"] = rows(b[d][n:])
            _load(module, **tensors)
        name = c.module_name(node)
        seq = x if layout else _permute(c, x, [1, 0, 2])  # the batch first
        out = c.call(name, module, seq)
        y = c.method("unflatten", c.fn(operator.getitem, out, 0), 2, (dirs, hidden))
        y.node.meta["splits_last"] = True  # (batch, seq, dirs*H): its last dimension
        state = c.fn(operator.getitem, out, 1)  # (dirs, batch, H); an LSTM's is (h, c)
        states = (c.fn(operator.getitem, state, 0), c.fn(operator.getitem, state, 1)) \
            if kind == "LSTM" else (state,)
        if layout:  # batch, seq, dirs, H and batch, dirs, H
            return (y, *(_permute(c, s_, [1, 0, 2]) for s_ in states))
        return (_permute(c, y, [1, 2, 0, 3]), *states)
    return handler


# ONNX operators whose result is made of their first input's elements: zeros give zeros
_ZERO_KEEPING_OPS = {"Expand", "Slice", "Gather", "Squeeze", "Unsqueeze", "Reshape",
                     "Transpose", "Identity", "Flatten", "Tile"}


def _axes(c, ins, a, index: int = 1):
    if c.opset >= 13 and len(ins) > index and ins[index] is not None:
        return c.ints(ins[index], "axes")
    return [int(v) for v in a.get("axes", [])] or None


def _squeeze(c, node, ins, a):
    axes = _axes(c, ins, a)
    x = ins[0]
    if isinstance(x, list):
        return x[0] if len(x) == 1 else x
    if axes is None:
        return c.method("squeeze", x)
    rank = c.rank(node.input[0], x)
    if rank is None and not all(ax < 0 for ax in axes) and not all(ax >= 0 for ax in axes):
        raise _Unsupported("a Squeeze with axes counted from both ends of an input of unknown "
                           "rank is not converted")
    # the last first, so the others keep their place; axes counted from the end (an input of
    # unknown rank): the farthest from the end first, for the same reason
    order = sorted(ax % rank for ax in axes) if rank else sorted(axes)
    for axis in (order[::-1] if rank or order[0] >= 0 else order):
        inner = _permuted(c, x)
        if inner is not None and axis >= 0:  # squeeze first, then permute: see _permuted
            source, perm = inner
            gone = perm[axis]
            x = _permute(c, _squeeze_dim(c, source, gone),
                         [q - (q > gone) for q in perm if q != gone])
        else:
            x = _squeeze_dim(c, x, axis)
    return x


def _unflattened(c, x):
    """(source, dim, sizes) when ``x`` is ``source.unflatten(dim, sizes)``, else None."""
    if c.is_graph(x) and x.node.op == "call_method" and x.node.target == "unflatten":
        _, dim, sizes = x.node.args
        return c.proxy(x.node.args[0]), int(dim), tuple(sizes)
    return None


def _squeeze_dim(c, x, dim: int):
    """``x.squeeze(dim)``; nothing when ``x`` unflattened that dimension into (1, n) or (n, 1):
    the recurrent layers' (directions, hidden) split of a one-directional layer."""
    split = _unflattened(c, x)
    if split is not None and dim >= 0:
        source, at, sizes = split
        if len(sizes) == 2 and ((dim == at and sizes[0] == 1) or
                                (dim == at + 1 and sizes[1] == 1)):
            return source
    return c.method("squeeze", x, dim)


def _flatten_from(c, x, dim: int):
    """``x.flatten(dim)``; ``x``'s source when ``x`` split that source's last dimension at
    ``dim`` (a bidirectional layer's (directions, hidden) split, merged back)."""
    split = _unflattened(c, x)
    if split is not None and split[1] == dim and x.node.meta.get("splits_last"):
        return split[0]
    return c.method("flatten", x, dim)


def _same_dim(c, name: str, x, i: int, d) -> bool:
    """Whether a Reshape's ``d`` keeps dimension ``i`` of ``x`` as it is: 0, the known size,
    or ``x.shape[i]`` read from ``x``."""
    if isinstance(d, int):
        dims = c.ranks.get(name) or []
        known = dims[i] if i < len(dims) else None
        return d == 0 or (isinstance(known, int) and known == d)
    if not c.is_graph(d):
        return False
    n = d.node
    if n.op == "call_function" and n.target is operator.getitem and n.args[1] == i:
        shape = n.args[0]
        return getattr(shape, "op", None) == "call_function" and shape.target is getattr and \
            shape.args == (x.node, "shape")
    return False


def _rest_merged(c, name: str, x, keep: int, d) -> bool:
    """Whether a Reshape's last ``d`` merges every dimension of ``x`` from ``keep`` on."""
    if isinstance(d, int) and d == -1:
        return True
    dims = c.ranks.get(name) or []
    rest = dims[keep:]
    if not isinstance(d, int) or not rest or not all(isinstance(v, int) and v > 0 for v in rest):
        return False
    product = 1
    for v in rest:
        product *= v
    return product == d


def _permuted(c, x):
    """(source, perm) when ``x`` is ``source.permute(*perm)``, else None. A squeeze or a merge
    of trailing dimensions is moved before such a permute, so the permute meets the next one
    and they cancel: how a recurrent layer's output comes back to batch first."""
    if c.is_graph(x) and x.node.op == "call_method" and x.node.target == "permute":
        return c.proxy(x.node.args[0]), [int(p) for p in x.node.args[1:]]
    return None


def _unsqueeze(c, node, ins, a):
    axes = _axes(c, ins, a)
    x = ins[0]
    if (c.is_graph(x) and c.is_size(x)) or isinstance(x, (int, float)):  # a size: a list
        return [x] if axes in ([0], [-1]) else x
    rank = c.rank(node.input[0], x)
    if rank is None:  # axes counted from the end keep their meaning: nearest the end first
        if not all(ax < 0 for ax in axes) and not all(ax >= 0 for ax in axes):
            raise _Unsupported("an Unsqueeze with axes counted from both ends of an input of "
                               "unknown rank is not converted")
        order = sorted(axes, reverse=True) if axes[0] < 0 else sorted(axes)
    else:
        order = sorted(ax % (rank + len(axes)) for ax in axes)
    for axis in order:
        x = c.method("unsqueeze", x, axis)
    return x


def _concat(c, node, ins, a):
    import torch

    axis = int(a["axis"])
    parts = [v for v in ins if v is not None]
    if any(isinstance(v, list) for v in parts) or all(
            isinstance(v, torch.Tensor) and v.dim() == 1 and not v.is_floating_point()
            for v in parts) and not any(c.is_graph(v) for v in parts):
        values: list = []
        for v in parts:
            values += v if isinstance(v, list) else v.tolist()
        return values
    return c.fn(torch.cat, [v for v in parts if not (hasattr(v, "numel") and not c.is_graph(v)
                                                  and v.numel() == 0)], axis)


def _split(c, node, ins, a):
    import torch

    axis = int(a.get("axis", 0))
    sizes = (c.ints(ins[1], "split") if len(ins) > 1 and ins[1] is not None
             else [int(s) for s in a.get("split", [])])
    if not sizes:
        rank_dims = c.ranks.get(node.input[0])
        if not rank_dims or not isinstance(rank_dims[axis], int) or rank_dims[axis] <= 0:
            raise _Unsupported("an even Split of an axis of unknown size is not converted")
        parts = int(a.get("num_outputs", len(node.output)))
        size = -(-rank_dims[axis] // parts)  # ceil: the last piece may be smaller
        sizes = [size] * (parts - 1) + [rank_dims[axis] - size * (parts - 1)]
    pieces = c.fn(torch.split, ins[0], sizes, axis)
    return tuple(c.fn(operator.getitem, pieces, i) for i in range(len(sizes))) if \
        c.is_graph(pieces) else tuple(pieces)


def _slice(c, node, ins, a):
    if c.opset < 10:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes"), None
    else:
        starts, ends = c.ints(ins[1], "starts"), c.ints(ins[2], "ends")
        axes = c.ints(ins[3], "axes") if len(ins) > 3 and ins[3] is not None else None
        steps = c.ints(ins[4], "steps") if len(ins) > 4 and ins[4] is not None else None
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = list(steps) if steps is not None else [1] * len(starts)
    big = 2 ** 62
    x = ins[0]
    if isinstance(x, list):
        start, end, step = starts[0], ends[0], steps[0]
        return x[slice(start, None if end >= big else end, step)]
    rank = c.rank(node.input[0], x)
    if rank is None:
        raise _Unsupported("the rank of its input is unknown")
    index: list = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step < 0:
            raise _Unsupported("a Slice with a negative step is not converted")
        index[axis % rank] = slice(start, None if end >= big else end, step)
    return c.fn(operator.getitem, x, tuple(index))


def _gather(c, node, ins, a):
    import torch

    x, idx = ins
    axis = int(a.get("axis", 0))
    if isinstance(x, list) and (isinstance(idx, list) or c.is_graph(idx)):  # computed sizes
        picks = idx if isinstance(idx, list) else [idx]
        found = [c.fn(operator.getitem, x, i) for i in picks]
        return found if isinstance(idx, list) else found[0]
    if isinstance(x, list):
        positions = c.const(idx, "indices")
        picked = [x[int(i)] for i in positions.reshape(-1).tolist()]
        return picked[0] if positions.dim() == 0 else picked
    if c.is_graph(idx):
        return _gather_graph(c, x, idx, axis)
    positions = c.const(idx, "indices")
    rank = c.rank(node.input[0], x)
    if positions.dim() > 0 and bool((positions < 0).any()):  # counted from the end
        dims = c.shape_of(node.input[0], x) if rank is not None else []
        size = dims[axis % rank] if rank is not None else None
        if not isinstance(size, int):
            raise _Unsupported("a Gather of indices counted from the end, along a dimension "
                               "of unknown size, is not converted")
        positions = torch.where(positions < 0, positions + size, positions)
    if positions.dim() == 0 and rank is not None:
        if axis % rank == 0 and int(positions) == -1:
            x = _last_of_cat(c, x)  # h_n[-1] of a deep RNN: the last layer's state, [-1]
        index = [slice(None)] * (axis % rank) + [int(positions)]
        return c.fn(operator.getitem, x, tuple(index) if len(index) > 1 else index[0])
    return c.fn(torch.index_select, x, axis, positions.reshape(-1)) if positions.dim() == 1 \
        else _gather_graph(c, x, positions, axis)


def _last_of_cat(c, x):
    """The last part of ``torch.cat(parts, 0)``, whose [-1] is the whole's (the exporter
    concatenates every layer's final state into h_n); ``x`` itself otherwise."""
    import torch

    while c.is_graph(x) and x.node.op == "call_function" and x.node.target is torch.cat and \
            (x.node.args[1] if len(x.node.args) > 1 else x.node.kwargs.get("dim", 0)) == 0:
        x = c.proxy(x.node.args[0][-1])
    return x


def _gather_graph(c, x, idx, axis: int):
    """Gather with computed or many-dimensional indices: an embedding lookup on axis 0."""
    import torch.nn as nn

    if axis != 0 or c.is_graph(x) or x.dim() != 2 or not x.is_floating_point():
        raise _Unsupported("a Gather with computed indices is converted only as a lookup "
                           "into a constant 2-D table on axis 0 (an embedding)")
    embedding = nn.Embedding(x.shape[0], x.shape[1])
    _load(embedding, weight=x)
    return c.call(c._free("embedding"), embedding, idx)


def _shape(c, node, ins, a):
    dims = c.shape_of(node.input[0], ins[0])
    start, end = a.get("start"), a.get("end")
    if start is not None or end is not None:
        dims = dims[slice(start, end)]
    return dims


def _constant(c, node, ins, a):
    from onnx import numpy_helper

    if "value" in a:
        return c._tensor(numpy_helper.to_array(a["value"]))
    for key in ("value_float", "value_int"):
        if key in a:
            return c._tensor(a[key])
    for key in ("value_floats", "value_ints"):
        if key in a:
            return c._tensor(list(a[key]))
    raise _Unsupported("a Constant of this kind is not converted")


def _constant_of_shape(c, node, ins, a):
    import torch
    from onnx import numpy_helper

    value = c._tensor(numpy_helper.to_array(a["value"])) if "value" in a else \
        torch.zeros(1)
    shape = ins[0] if isinstance(ins[0], list) else c.ints(ins[0], "shape")
    fill = value.reshape(()).item()
    if fill == 0:
        c.zeros.update(node.output)  # an RNN's initial state the exporter spells out
    return c.fn(torch.full, list(shape), fill, dtype=value.dtype)


_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
                9: "bool", 10: "float16", 11: "float64", 16: "bfloat16"}


def _cast(c, node, ins, a):
    import torch

    x = ins[0]
    name = _ONNX_DTYPES.get(int(a["to"]))
    if name is None:
        raise _Unsupported(f"a Cast to ONNX type {a['to']} is not converted")
    if isinstance(x, list) or isinstance(x, (int, float)) or (c.is_graph(x) and c.is_size(x)):
        to = float if name.startswith(("float", "bfloat")) else int if name != "bool" else bool
        values = x if isinstance(x, list) else [x]
        # float(size) cannot be traced; size * 1.0 can, and is the same number
        out = [(c.fn(operator.mul, v, 1.0) if to is float else v) if c.is_graph(v) else to(v)
               for v in values]
        return out if isinstance(x, list) else out[0]
    dtype = getattr(torch, "float32" if name == "float64" else name)
    return c.method("to", x, dtype)


def _identity(c, node, ins, a):
    return ins[0]


def _dropout(c, node, ins, a):
    return (ins[0], None)


def _reduce(name: str):
    def handler(c, node, ins, a):
        import torch

        # axes became an input in opset 13 for ReduceSum, in opset 18 for the others
        as_input = c.opset >= (13 if name == "sum" else 18)
        axes = (c.ints(ins[1], "axes") if len(ins) > 1 and ins[1] is not None else None) \
            if as_input else ([int(v) for v in a.get("axes", [])] or None)
        keep = bool(a.get("keepdims", 1))
        x = ins[0]
        if axes is None:
            rank = c.rank(node.input[0], x)
            if rank is None:
                raise _Unsupported("the rank of its input is unknown")
            axes = list(range(rank))
        fn = {"mean": torch.mean, "sum": torch.sum, "max": torch.amax, "min": torch.amin}[name]
        return c.fn(fn, x, tuple(axes), keep)
    return handler


def _pad(c, node, ins, a):
    import torch.nn.functional as F

    mode = _decode(a.get("mode", "constant"))
    pads = c.ints(ins[1], "pads") if c.opset >= 11 else list(a["pads"])
    value = (c.operand(c.const(ins[2], "value")) if len(ins) > 2 and ins[2] is not None
             else 0.0) if c.opset >= 11 else float(a.get("value", 0.0))
    if len(ins) > 3 and ins[3] is not None:
        raise _Unsupported("a Pad over chosen axes is not converted")
    rank = len(pads) // 2
    torch_pads: list[int] = []
    for i in reversed(range(rank)):
        torch_pads += [pads[i], pads[i + rank]]
    while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]
    if mode == "constant":
        return c.fn(F.pad, ins[0], torch_pads, "constant", value)
    if mode in ("reflect", "edge"):
        return c.fn(F.pad, ins[0], torch_pads, "reflect" if mode == "reflect" else "replicate")
    raise _Unsupported(f"a Pad in mode {mode} is not converted")


def _expand(c, node, ins, a):
    """ONNX Expand broadcasts: a 1 in the shape keeps the input's size there."""
    x = ins[0]
    shape = list(ins[1]) if isinstance(ins[1], list) else c.ints(ins[1], "shape")
    rank = c.rank(node.input[0], x)
    if rank is None:
        raise _Unsupported("the rank of its input is unknown")
    lead = len(shape) - rank  # new leading dimensions (negative: the input has more)
    target = [-1] * max(0, -lead) + [
        (-1 if i >= lead else 1) if isinstance(d, int) and d == 1 else d
        for i, d in enumerate(shape)]
    if not c.is_graph(x) and not c._has_graph(target):
        return c.const(x).expand(*target)
    return c.method("expand", x, *target)


def _elementwise(name: str):
    """A torch function of the inputs, as they are (sizes joining as numbers or tensors)."""
    def handler(c, node, ins, a):
        import torch

        values = [c.scalar_or_tensor(v) for v in ins if v is not None]
        values = [c.const(v) if isinstance(v, (int, float)) and not c._has_graph(values)
                  else v for v in values]
        fn = getattr(torch, name)
        out = values[0]
        if name in ("minimum", "maximum") and len(values) > 2:  # variadic Min / Max
            for v in values[1:]:
                out = c.fn(fn, out, v)
            return out
        return c.fn(fn, *values)
    return handler


def _range(c, node, ins, a):
    import torch

    start, limit, delta = (c.scalar_or_tensor(v) for v in ins)
    start, limit, delta = (c.operand(v) if isinstance(v, torch.Tensor) else v
                           for v in (start, limit, delta))
    return c.fn(torch.arange, start, limit, delta)


def _trilu(c, node, ins, a):
    import torch

    k = c.operand(c.const(ins[1], "k")) if len(ins) > 1 and ins[1] is not None else 0
    return c.fn(torch.triu if int(a.get("upper", 1)) else torch.tril, ins[0], k)


def _cumsum(c, node, ins, a):
    import torch

    if int(a.get("exclusive", 0)) or int(a.get("reverse", 0)):
        raise _Unsupported("an exclusive or reversed CumSum is not converted")
    return c.fn(torch.cumsum, ins[0], c.operand(c.const(ins[1], "axis")))


def _argmax(name: str):
    def handler(c, node, ins, a):
        import torch

        if int(a.get("select_last_index", 0)):
            raise _Unsupported("select_last_index is not converted")
        return c.fn(getattr(torch, name), ins[0], int(a.get("axis", 0)),
                    bool(a.get("keepdims", 1)))
    return handler


def _tile(c, node, ins, a):
    repeats = ins[1] if isinstance(ins[1], list) else c.ints(ins[1], "repeats")
    return c.method("repeat", ins[0], *repeats)


def _mod(c, node, ins, a):
    import torch

    x, y = ins
    if int(a.get("fmod", 0)):
        return c.fn(torch.fmod, x, c.operand(y))
    if isinstance(x, list) or isinstance(y, list) or (c.is_graph(x) and c.is_size(x)):
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [c.operand(y)] * len(xs)
        out = [c.fn(operator.mod, p, q) for p, q in zip(xs, ys)]
        return out if isinstance(x, list) else out[0]
    return c.fn(torch.remainder, x, c.operand(y))


def _pow(c, node, ins, a):
    import torch

    x, p = ins[0], c.operand(ins[1])
    return c.fn(torch.pow, x, p)


def _where(c, node, ins, a):
    import torch

    return c.fn(torch.where, *ins)


def _act(factory):
    return _module_act(factory)


def _hard_sigmoid(c, node, ins, a):
    import torch

    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return c.call(c.module_name(node), _nn("Hardsigmoid")(a), ins[0])
    return c.fn(torch.clamp, c.fn(torch.add, c.fn(torch.mul, ins[0], alpha), beta), 0.0, 1.0)


def _nn(name: str, **kw):
    def make(a):
        import torch.nn as nn

        return getattr(nn, name)(**{k: (v(a) if callable(v) else v) for k, v in kw.items()})
    return make


OPS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm,
    "Relu": _act(_nn("ReLU")), "Sigmoid": _act(_nn("Sigmoid")), "Tanh": _act(_nn("Tanh")),
    "LeakyRelu": _act(_nn("LeakyReLU", negative_slope=lambda a: float(a.get("alpha", 0.01)))),
    "Elu": _act(_nn("ELU", alpha=lambda a: float(a.get("alpha", 1.0)))),
    "Selu": _act(_nn("SELU")), "Softplus": _act(_nn("Softplus")),
    "Gelu": _act(_nn("GELU", approximate=lambda a: _decode(a.get("approximate", "none")))),
    "HardSwish": _act(_nn("Hardswish")), "HardSigmoid": _hard_sigmoid,
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"),
    "Clip": _clip, "Erf": _torch_fn("erf"), "Exp": _torch_fn("exp"), "Log": _torch_fn("log"),
    "Sqrt": _torch_fn("sqrt"), "Neg": _torch_fn("neg"), "Abs": _torch_fn("abs"),
    "Reciprocal": _torch_fn("reciprocal"), "Floor": _torch_fn("floor"),
    "Ceil": _torch_fn("ceil"), "Pow": _pow, "Mod": _mod, "Where": _where,
    "Add": _binary(operator.add, "add"), "Sub": _binary(operator.sub, "sub"),
    "Mul": _binary(operator.mul, "mul"), "Div": _binary(_divide, "div"),
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global_pool("avg"), "GlobalMaxPool": _global_pool("max"),
    "LSTM": _recurrent("LSTM"), "GRU": _recurrent("GRU"), "Resize": _resize,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Concat": _concat, "Split": _split, "Slice": _slice,
    "Gather": _gather, "Shape": _shape, "Constant": _constant,
    "ConstantOfShape": _constant_of_shape, "Cast": _cast, "Identity": _identity,
    "Dropout": _dropout, "ReduceMean": _reduce("mean"), "ReduceSum": _reduce("sum"),
    "ReduceMax": _reduce("max"), "ReduceMin": _reduce("min"), "Pad": _pad, "Expand": _expand,
    "Equal": _elementwise("eq"), "Less": _elementwise("lt"), "Greater": _elementwise("gt"),
    "LessOrEqual": _elementwise("le"), "GreaterOrEqual": _elementwise("ge"),
    "And": _elementwise("logical_and"), "Or": _elementwise("logical_or"),
    "Xor": _elementwise("logical_xor"), "Not": _elementwise("logical_not"),
    "IsNaN": _elementwise("isnan"), "IsInf": _elementwise("isinf"),
    "Min": _elementwise("minimum"), "Max": _elementwise("maximum"),
    "Sin": _elementwise("sin"), "Cos": _elementwise("cos"), "Sign": _elementwise("sign"),
    "Range": _range, "Trilu": _trilu, "CumSum": _cumsum, "ArgMax": _argmax("argmax"),
    "ArgMin": _argmax("argmin"), "Tile": _tile,
}


# -- the check ----------------------------------------------------------------------------------
def check_with_onnxruntime(path, module, sample_shapes: dict, batch: int = 2) -> float | None:
    """Largest difference between ``module`` and onnxruntime on the file for one random
    batch; None when onnxruntime is not installed or the input shapes are unknown."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import numpy as np
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds, args = {}, []
    inputs = session.get_inputs()
    if len(inputs) != len(sample_shapes):
        return None
    gen = torch.Generator().manual_seed(0)
    for info, shape in zip(inputs, sample_shapes.values()):
        if "int" in info.type:
            value = torch.randint(0, 2, (batch, *shape), generator=gen)
        else:
            value = torch.randn((batch, *shape), generator=gen)
        feeds[info.name] = value.numpy()
        args.append(value)
    try:
        expected = session.run(None, feeds)
        with torch.no_grad():
            got = module(*args)
    except Exception as exc:  # noqa: BLE001 - onnxruntime or the converted model refusing it
        raise ExportError(f"{Path(path).name}: the model could not be checked at batch "
                          f"{batch} ({_first_line(exc)[:300]})") from None
    got = got if isinstance(got, (tuple, list)) else [got]
    if len(got) != len(expected):
        raise ExportError(f"{Path(path).name}: the converted model returns {len(got)} values, "
                          f"onnxruntime {len(expected)}")
    diff = 0.0
    for g, e in zip(got, expected):
        g = g.detach().numpy()
        if g.shape != e.shape:
            raise ExportError(f"{Path(path).name}: the converted model returns shape "
                              f"{g.shape}, onnxruntime {e.shape}")
        diff = max(diff, float(np.max(np.abs(g.astype(np.float64) - e))) if g.size else 0.0)
    return diff


# -- a model torch.fx cannot trace --------------------------------------------------------------
def via_torch_export(module, label: str, example_input_shape, why: str):
    """``module`` exported with torch.export (through ONNX) and converted back: for a forward
    that torch.fx cannot trace (it branches or loops on sizes; ``why`` is torch.fx's message).
    Returns (GraphModule, largest difference to ``module`` on a random batch); ExportError
    with both reasons otherwise."""
    import inspect
    import io
    import tempfile
    import warnings

    import torch

    if example_input_shape is None:
        raise ExportError(f"{why}; give the shape of one input (--input-shape) and it is "
                          "exported with torch.export instead")
    params = [p for p in inspect.signature(module.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    shapes = _shape_list(example_input_shape, [p.name for p in params])
    names = [p.name for p in params][:len(shapes)]
    problem = "no input"
    for kind in ("float", "int"):  # token ids feed an Embedding: try whole numbers next
        gen = torch.Generator().manual_seed(0)
        args = tuple(torch.randn((2, *s), generator=gen) if kind == "float" else
                     torch.randint(0, 2, (2, *s), generator=gen) for s in shapes)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "exported.onnx"
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                        _quiet_logs():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        module, args, str(path), dynamo=True, input_names=names,
                        dynamic_shapes=tuple({0: torch.export.Dim("batch", min=1)}
                                             for _ in args), verbose=False)
            except Exception as exc:  # noqa: BLE001 - torch.export's reasons are many
                problem = _first_line(exc)
                continue
            converted, _ = onnx_module(path, f"{label} (exported with torch.export)")
        try:
            with torch.no_grad():
                expected, got = _tensors(module(*args)), _tensors(converted(*args))
            diff = max((float((e.double() - g.double()).abs().max()) for e, g in
                        zip(expected, got) if e.is_floating_point() and e.numel()),
                       default=0.0)
        except Exception as exc:  # noqa: BLE001 - outputs that cannot be compared
            raise ExportError(f"{why}; exported with torch.export instead, it could not be "
                              f"compared with the module ({_first_line(exc)[:300]})") from None
        if len(expected) != len(got):
            raise ExportError(f"{why}; exported with torch.export instead, it returns "
                              f"{len(got)} values where the module returns {len(expected)}")
        return converted, diff
    raise ExportError(f"{why}; torch.export cannot export it either ({problem[:300]})")


def _tensors(value) -> list:
    """The tensors of a result: a tensor, tuples and lists of them, a dict, a ModelOutput."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _shape_list(given, names: list[str]) -> list[list[int]]:
    if isinstance(given, dict):
        return [list(given[n]) for n in names if n in given]
    if given and all(isinstance(s, (tuple, list)) for s in given):
        return [list(s) for s in given]
    return [list(given)]


@contextlib.contextmanager
def _quiet_logs():
    import logging

    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                               "torch.fx", "onnxscript")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL)  # a failed first try logs errors that are not the user's
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
