"""Import a PyTorch ``nn.Module``: torch.fx traces it, and its calls become a Layerlab graph.

What maps onto catalog layers (anything else becomes an Opaque node that still compiles and
trains, see :mod:`engine.layers.opaque`):

* modules: Linear, Conv1d, Conv2d, ConvTranspose2d (zero padding), MaxPool2d, AvgPool2d,
  AdaptiveAvgPool2d, Upsample, BatchNorm1d/2d, LayerNorm (one normalized dimension), Dropout,
  Flatten, Embedding, ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Softmax; RNN, LSTM, GRU
  (batch_first; ``out, h = rnn(x)`` with ``out`` -> port ``out``, ``out[:, -1]`` and
  ``h[-1]`` -> port ``last``); MultiheadAttention (batch_first, result ``[0]``);
  TransformerEncoderLayer (batch_first, no masks); nn.Identity is skipped; Layerlab's own
  classes (Step, Reshape, SequencePool, PositionalEncoding, Reservoir, Reparameterize), also
  as copied into an exported model.py;
* operations: ``+``/``torch.add`` -> Add, ``*``/``torch.mul`` -> Multiply, ``torch.cat`` -> Concat,
  ``torch.flatten``/``x.flatten(1)``/``x.view(x.size(0), -1)`` -> Flatten,
  ``x.view(x.size(0), 4, 4)`` -> Reshape, ``F.relu``/``torch.relu``/``x.relu()`` and the other
  activations, ``F.dropout``, ``F.max_pool2d``, ``F.avg_pool2d``, ``F.adaptive_avg_pool2d``;
* placeholders -> Input (with ``shape`` when example shapes are given), the returned tensors ->
  Output.

Node ids come from the module's attribute names (``layer1.0.conv1`` -> ``layer1_0_conv1``) and
from torch.fx's names for operations (``add``, ``relu_1``). The weights come along: the returned
state_dict loads into the compiled graph, and when input shapes are known the compiled model is
checked to give the module's outputs. The module is traced in evaluation mode.
"""
from __future__ import annotations

import copy
import importlib
import operator
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExportError, LayerlabError
from ..errors import first_line as _first_line
from ..graph import Graph
from ..layers import ShapeError, get_spec
from ..project import Project
from .regions import batch_regions, broadcasts, probe

_SIZE_METHODS = {"size", "dim", "numel"}
_SIZE_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda"}
# calls that return a tuple of tensors, each item of which becomes its own Opaque node
_TUPLE_OPS = {"chunk", "split", "unbind", "tensor_split", "split_with_sizes", "hsplit",
              "vsplit", "dsplit", "unsafe_chunk", "unsafe_split", "topk", "sort", "max", "min",
              "median", "mode", "kthvalue", "aminmax", "std_mean", "var_mean", "unique"}
TOLERANCE = 1e-4
MAX_REBUILDS = 20  # builds of one import, each turning more misfit catalog layers opaque


@dataclass(frozen=True)
class _Port:
    """A tensor on the canvas: an output port of a node."""

    node: str
    port: str = "out"


@dataclass(frozen=True)
class _Tuple:
    """A tuple result (recurrent layer, attention); only some of its items can be used."""

    node: str
    kind: str  # recurrent | lstm_state | hidden | attention | pair
    bidirectional: bool = False


def import_module(source, example_input_shape=None, weights=None, blocks: bool = True) \
        -> tuple[Project, dict]:
    """Trace ``source`` and return (a one-model Project, state_dict for the compiled graph).

    ``source``: ``"path/to/file.py:ClassName"``, ``"package.module:ClassName"``, an
    ``nn.Module`` instance or class (built without arguments). ``example_input_shape``: the
    shape of one sample without the batch (``(1, 28, 28)``), a list of them or a dict
    ``{forward argument: shape}``. ``weights``: a state_dict (or a file holding one) of the
    module, loaded before tracing. ``blocks``: submodules holding several layers become nested
    blocks (:mod:`engine.importer.grouping`). Every problem raises :class:`ExportError`.
    """
    from .onnx_convert import is_onnx_source

    module, label = load_source(source)
    onnx_shapes = getattr(module, "onnx_sample_shapes", None) if is_onnx_source(source) \
        else None
    fixed = getattr(module, "onnx_batch", None) if onnx_shapes is not None else None
    if onnx_shapes is not None and example_input_shape is None:
        example_input_shape = onnx_shapes or None  # the file's own sample shapes
    try:
        return _import(source, module, label, example_input_shape, weights, blocks,
                       onnx_shapes, fixed)
    except ExportError as exc:
        if not fixed:
            raise
        raise ExportError(f"{exc}; the file fixes the batch at {fixed}: export it with a "
                          "dynamic batch axis, e.g. torch.onnx.export(..., dynamic_axes="
                          "{'x': {0: 'batch'}})") from None


def _import(source, module, label: str, example_input_shape, weights, blocks: bool,
            onnx_shapes, fixed) -> tuple[Project, dict]:
    from .onnx_convert import check_with_onnxruntime, via_torch_export
    from .opaque import class_path

    module = _prepared(module, weights, label)
    name = Path(str(source)).name.split(".")[0] if onnx_shapes is not None else \
        type(module).__name__
    exported, original_class = None, class_path(type(module))
    original_params = sum(p.numel() for p in module.parameters())
    # the inputs given a shape, by name or by place: never traced at a default
    named = set(example_input_shape) if isinstance(example_input_shape, dict) else \
        len(example_input_shape) if example_input_shape and isinstance(
            example_input_shape[0], (list, tuple)) else 1
    try:
        traced = trace(module, label, named)
    except ExportError as exc:  # branches or loops on sizes: torch.export follows them
        module, exported = via_torch_export(module, label, example_input_shape, str(exc))
        if exported > TOLERANCE:
            raise ExportError(f"{exc}; exported with torch.export instead, it differs from the "
                              f"module by {exported:.3g}, so it is not imported") from None
        traced = trace(module, label, named)
    _onnx_module_stacks(traced, getattr(module, "onnx_scopes", None) or {})
    input_shapes = _input_shapes(example_input_shape, traced)
    forced: set[str] = set()
    _refuse_inplace(traced.graph)  # before dead code goes: an unused h.mul_(2) is not dead
    traced.graph.eliminate_dead_code()
    traced.recompile()
    probed = probe(traced, input_shapes)
    regions = batch_regions(traced, input_shapes, probed)
    # masks and indices computed in the forward (bool, int) are recomputed inside the
    # operation that uses them: every value on the canvas is a float tensor
    masks = {n for n in (probed[2] if probed else ()) if all(u.op != "output" for u in n.users)
             and not _feeds_embedding(traced, n)}
    # e.g. `h + h.mean(-1, keepdim=True)`: broadcasting, not an Add; the rebuilds below find
    # what one run cannot see
    forced |= broadcasts(traced, input_shapes, probed)
    for _ in range(MAX_REBUILDS):
        builder = _Builder(traced, input_shapes, forced, regions, masks)
        graph = builder.build()
        misfits = builder.misfits() - forced
        if not misfits:
            break
        forced |= misfits  # e.g. `h + h.mean(-1, keepdim=True)`: broadcasting, not an Add
    flat_state = builder.state_dict(module.state_dict())
    flat = graph
    graph, state, library = _with_blocks(flat, flat_state, builder, traced) if blocks else \
        (flat, flat_state, {})
    checked = all(n.params.get("shape") for n in graph.nodes_of_type("Input"))
    diff = None
    if checked and library:
        try:
            diff = check_outputs(graph, state, module, label)
        except ExportError as exc:  # the blocks are a convenience: never the reason to fail
            builder.notes.append(f"kept flat: the nested blocks did not check ({exc})")
            graph, state, library = flat, flat_state, {}
    _layout(graph)
    if exported is not None:
        builder.notes.insert(0, f"torch.fx could not trace the forward; it was exported with "
                             f"torch.export (through ONNX) and converted back (largest "
                             f"difference {exported:.2g})")
        kept = _parameter_count(graph)
        if kept < original_params:
            builder.notes.insert(1, f"{original_params - kept:,} of the module's "
                                 f"{original_params:,} parameters are not in the graph: "
                                 "torch.export keeps what this input shape uses (the position "
                                 "embeddings of its length, say)")
    project = Project(name=name, models={"model": graph},
                      extra={"imported_from": {"source": label,
                                               "class": original_class,
                                               "notes": builder.notes}}, blocks=library)
    graph.blocks = library
    if library:
        builder.notes.append(f"the module hierarchy became {len(library)} block definition(s) "
                             f"({', '.join(library)}); Edit → Expand Block opens one in place")
    if checked:
        if diff is None:  # the flat graph (the blocked one was checked above)
            diff = check_outputs(graph, state, module, label)
        builder.notes.append(f"checked: the compiled graph gives the module's outputs "
                             f"(largest difference {diff:.2g})")
    if onnx_shapes is not None:
        shapes = {n.id: n.params["shape"] for n in graph.nodes_of_type("Input")
                  if n.params.get("shape")}
        runtime = check_with_onnxruntime(source, module, shapes, batch=fixed or 2) \
            if len(shapes) == len(graph.nodes_of_type("Input")) else None
        if runtime is None:
            builder.notes.append("not checked against onnxruntime: the file leaves sizes "
                                 "other than the batch open; give --input-shape to check it")
        if fixed:
            builder.notes.append(f"the file fixes the batch at {fixed}: sizes it computed for "
                                 "that batch may stop other batch sizes (export it with a "
                                 "dynamic batch axis to train at any batch)")
        if runtime is not None and runtime > TOLERANCE:
            raise ExportError(f"{label}: the converted model differs from onnxruntime on the "
                              f"file by {runtime:.3g}; it is not imported")
        if runtime is not None:
            builder.notes.append(f"checked against onnxruntime on the file (largest "
                                 f"difference {runtime:.2g})")
    return project, state


def _with_blocks(flat, flat_state: dict, builder, traced):
    """(graph, state, blocks): a copy of the flat graph with its submodules made blocks."""
    from ..project import _parse_model, graph_to_dict
    from .grouping import group, module_paths, nested_state

    graph = _parse_model(flat.name, copy.deepcopy(graph_to_dict(flat)), [])
    library: dict = {}
    graph.blocks = library
    instances = group(graph, library, module_paths(traced, builder.env, _Port))
    if not library:
        return flat, flat_state, {}
    for block in library.values():
        _layout(block.graph)
    return graph, nested_state(graph, flat_state, instances), library


def reopen_warnings(project) -> list[str]:
    """What a saved copy of an imported project needs when it is opened again."""
    from ..layers.opaque import FUNCTION_PREFIX

    captured, classes = [], set()
    graphs = [*project.models.values(), *(b.graph for b in project.blocks.values())]
    for graph in graphs:
        for node in graph.nodes_of_type("Opaque"):
            module = node.params.get("module", "")
            if module.startswith(FUNCTION_PREFIX) and not node.params.get("graph"):
                captured.append(node.id)
            elif not module.startswith(("torch.nn.", FUNCTION_PREFIX)):
                classes.add(module)
    lines = []
    if classes:
        lines.append(f"the project names the module classes {', '.join(sorted(classes))}; they "
                     "must be importable when the project is opened again")
    if captured:
        lines.append(f"{', '.join(captured)}: operations captured from the traced forward live "
                     "only in the session that imported them; a saved copy cannot compile them "
                     "when reopened (keep working in this session, or replace them with catalog "
                     "layers)")
    return lines


# -- the source ---------------------------------------------------------------------------------
def load_source(source) -> tuple:
    """(module instance, label) for a module, a class or ``file.py:Class`` / ``pkg.mod:Class``,
    or a factory: ``pkg.mod:factory`` (called without arguments) or with literal arguments,
    ``torchvision.models:resnet18(num_classes=10)``, ``timm:create_model('convnext_atto')``,
    ``file.py:Net(width=32)``."""
    import torch.nn as nn

    from .onnx_convert import is_onnx_source, onnx_module

    if isinstance(source, nn.Module):
        return source, type(source).__name__
    if is_onnx_source(source):
        module, shapes = onnx_module(source)
        module.onnx_sample_shapes = shapes
        return module, Path(str(source)).name
    if isinstance(source, type) and issubclass(source, nn.Module):
        return _instantiate(source, source.__name__), source.__name__
    text = str(source) if isinstance(source, (str, Path)) else ""
    head = text.split("(", 1)[0]
    if ":" not in head:
        raise ExportError(f"give the model as path/to/file.py:ClassName, "
                          f"package.module:ClassName or package.module:factory(args); got "
                          f"{source!r}")
    cut = head.rindex(":")
    where, name = text[:cut], text[cut + 1:]
    name, args, kwargs = _call_text(name, text)
    obj = _lookup(_owner(where), name, where)
    if isinstance(obj, nn.Module) and args is None:
        return obj, text
    if callable(obj):
        built = _instantiate(obj, text, args or (), kwargs or {})
        if isinstance(built, nn.Module):
            return built, text
        raise ExportError(f"{text}: {name}(...) returned a {type(built).__name__}, not a "
                          "torch.nn.Module")
    raise ExportError(f"{source}: {name} is not a torch.nn.Module class or factory")


def _call_text(name: str, source: str):
    """(name, args, kwargs) of ``factory(1, width=8)``; (name, None, None) without brackets.
    Only literal arguments (numbers, texts, lists, True/None...) are read."""
    import ast

    if "(" not in name:
        return name, None, None
    if not name.endswith(")"):
        raise ExportError(f"{source}: the arguments must end with ')'")
    try:
        call = ast.parse(name, mode="eval").body
        if not isinstance(call, ast.Call):
            raise ValueError("not a call")
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError) as exc:
        raise ExportError(f"{source}: the arguments must be literal values such as 10, "
                          f"'convnext_atto' or num_classes=10 ({_first_line(exc)})") from None
    return name.split("(", 1)[0].strip(), args, kwargs


def _owner(where: str):
    from ..layers.opaque import load_file

    try:
        if where.endswith(".py"):
            if not Path(where).expanduser().is_file():
                raise ExportError(f"{where}: no such file")
            return load_file(where)
        return _import_from_cwd(where)
    except LayerlabError:
        raise
    except Exception as exc:  # importing the user's file runs it; any error is theirs
        raise ExportError(f"{where}: cannot be imported ({type(exc).__name__}: "
                          f"{_first_line(exc)})") from None


def _import_from_cwd(name: str):
    """Import ``name`` the way ``python -m`` would: the current folder comes first."""
    import os
    import sys

    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _lookup(owner, name: str, where: str):
    obj = owner
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ExportError(f"{where}: has no {name}")
        obj = getattr(obj, part)
    return obj


def _instantiate(cls, label: str, args: tuple = (), kwargs: dict | None = None):
    kwargs = kwargs or {}
    try:
        return cls(*args, **kwargs)
    except Exception as exc:  # the user's constructor or factory
        name = getattr(cls, "__name__", str(cls))
        if not args and not kwargs:
            raise ExportError(f"{label}: {name}() cannot be built without arguments "
                              f"({_first_line(exc)}); give them, e.g. {name}(10), or import "
                              "an instance instead") from None
        raise ExportError(f"{label}: {name}(...) failed: {_first_line(exc)}") from None


def _prepared(module, weights, label: str):
    """A CPU copy in evaluation mode with ``weights`` loaded (the caller's module is untouched)."""
    try:
        # (a GraphModule's copy drops its own attributes: a converted ONNX file's module
        # hierarchy goes along)
        module = _with_attrs(copy.deepcopy(module), module, ("onnx_scopes",))
    except Exception:  # some modules cannot be copied; use them as they are
        pass
    module = module.cpu().eval()
    if weights is not None:
        from ..export.weights import load_state_dict, read_weights

        source = str(weights) if isinstance(weights, (str, Path)) else "weights"
        state = read_weights(weights) if isinstance(weights, (str, Path)) else weights
        state = _unwrap_checkpoint(state)
        load_state_dict(module, state, model=label, source=source)
    return module


def _onnx_module_stacks(traced, scopes: dict) -> None:
    """An ONNX file's module hierarchy (:func:`engine.importer.onnx_convert.onnx_scope`) as the
    module stack of each traced node, for the blocks. A module no other one sits inside (an
    LSTM, a Linear: a leaf, which a traced module would call as one) is left out, so that its
    operations stay on the level of the module that called it."""
    paths = {p for stack in scopes.values() for p, _ in stack}
    parents = {p.rsplit(".", 1)[0] for p in paths if "." in p}
    for fx_node in traced.graph.nodes:
        if fx_node.name in scopes:  # (in place of the converted module's own flat name)
            fx_node.meta["nn_module_stack"] = {p: (p, c) for p, c in scopes[fx_node.name]
                                               if p in parents}


def _with_attrs(copied, original, names):
    for name in names:
        if hasattr(original, name) and not hasattr(copied, name):
            setattr(copied, name, getattr(original, name))
    return copied


def _unwrap_checkpoint(state: dict) -> dict:
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state.get(key), dict):
            return state[key]
    return state


def trace(module, label: str, named=1):
    """Trace with torch.fx, as ``symbolic_trace`` does; ExportError with fx's reason when the
    forward cannot be traced.

    An argument of ``forward`` with a default of None, a bool or a number (timm's
    ``attn_mask=None, is_causal=False``) is traced at that default and is not an input of the
    graph, unless it is one given a shape: ``named`` holds their names, or is how many of the
    first arguments are (shapes given in order)."""
    import torch.fx as fx

    from .mapping import is_own_module

    class Tracer(fx.Tracer):
        """Layerlab's own layer classes stay whole, like torch.nn's."""

        def is_leaf_module(self, m, qualname: str) -> bool:
            return is_own_module(m) or super().is_leaf_module(m, qualname)

        def call_module(self, m, forward, args, kwargs):
            unrolled = _unroll_transformer(self, m, args, kwargs)
            if unrolled is not None:
                return unrolled
            return super().call_module(m, forward, args, kwargs)

    try:
        tracer = Tracer()
        # a converted ONNX file keeps its constants as buffers, some used as tensors directly
        tracer.proxy_buffer_attributes = bool(getattr(module, "onnx_converted", False))
        defaults = _plain_defaults(module, named)
        graph = tracer.trace(module, concrete_args=defaults or None)
        _drop_specialized(graph, module, defaults)
        return fx.GraphModule(tracer.root, graph, type(module).__name__)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError... for one cause
        reason = _first_line(exc)
        hint = (" (its forward branches or loops on tensor values, which tracing cannot "
                "follow)" if "control flow" in reason or "iterate" in reason else "")
        raise ExportError(f"{label}: torch.fx cannot trace this model{hint}: {reason}") \
            from None


def _plain_defaults(module, named) -> dict:
    import inspect

    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    if isinstance(named, int):  # shapes given in order: the first `named` arguments
        named = {p.name for p in parameters[:named]}
    return {p.name: p.default for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in named
            and (p.default is None or type(p.default) in (bool, int, float))}


def _drop_specialized(graph, module, defaults: dict) -> None:
    """Remove the placeholders fx keeps for arguments traced at their defaults (renamed
    ``attn_mask_1``: matched by position), with the checks it added that they keep those values
    (nothing else reads them)."""
    import inspect

    import torch

    if not defaults:
        return
    names = list(inspect.signature(module.forward).parameters)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(names) != len(placeholders):
        return
    for name, node in zip(names, placeholders):
        if name not in defaults:
            continue
        doomed, frontier = [], list(node.users)
        while frontier:  # the checks: _assert_is_none(ph), torch._assert(ph == value)
            user = frontier.pop()
            if user in doomed:
                continue
            doomed.append(user)
            frontier += list(user.users)
        if not all(u.op == "call_function" and (
                getattr(u.target, "__name__", "") == "_assert_is_none" or
                u.target is torch._assert or
                getattr(u.target, "__module__", "") in ("_operator", "operator"))
                for u in doomed):
            continue
        for user in reversed(_in_graph_order(graph, doomed)):
            graph.erase_node(user)
        graph.erase_node(node)


def _in_graph_order(graph, nodes: list) -> list:
    chosen = set(nodes)
    return [n for n in graph.nodes if n in chosen]


def _unroll_transformer(tracer, m, args, kwargs):
    """nn.TransformerEncoder / TransformerDecoder / Transformer called without masks, traced as
    the chain of layers (and final norm) they run, so that each layer becomes a node of its own;
    None for any other module or call."""
    import torch.nn as nn

    extra = list(args[2 if isinstance(m, (nn.TransformerDecoder, nn.Transformer)) else 1:]) + \
        list(kwargs.values())
    if any(v is not None and v is not False for v in extra):
        return None  # masks or is_causal: the module as it is

    def call(module, *inputs):
        return tracer.call_module(module, module.forward, inputs, {})

    if isinstance(m, nn.Transformer) and len(args) >= 2:
        return call(m.decoder, args[1], call(m.encoder, args[0]))
    if isinstance(m, (nn.TransformerEncoder, nn.TransformerDecoder)) and args:
        out, rest = args[0], tuple(args[1:2]) if isinstance(m, nn.TransformerDecoder) else ()
        if isinstance(m, nn.TransformerDecoder) and not rest:
            return None
        for layer in m.layers:
            out = call(layer, out, *rest)
        return call(m.norm, out) if m.norm is not None else out
    return None


def _input_shapes(given, traced) -> dict:
    names = [n.name for n in traced.graph.nodes if n.op == "placeholder"]
    if given is None:
        return {}
    if isinstance(given, dict):
        shapes = dict(given)
    elif given and all(isinstance(s, (tuple, list)) for s in given):
        shapes = dict(zip(names, given))
    else:
        shapes = {names[0]: given} if names else {}
    for name, shape in shapes.items():
        if name not in names:
            raise ExportError(f"example_input_shape names '{name}', which is not an argument "
                              f"of forward ({', '.join(names)})")
        if not (isinstance(shape, (tuple, list)) and shape and all(
                isinstance(s, int) and s >= 1 for s in shape)):
            raise ExportError(f"example_input_shape for '{name}' must be the shape of one "
                              f"sample, e.g. (1, 28, 28); got {shape!r}")
    return {k: list(v) for k, v in shapes.items()}


def _layout(graph: Graph) -> None:
    try:
        from ..layout import layered_layout
    except ImportError:
        return
    for node_id, pos in layered_layout(graph).items():
        graph.set_pos(node_id, pos)


# -- the walk over the traced graph ---------------------------------------------------------------
class _Builder:
    """Walks a traced GraphModule and builds the Layerlab graph, node by node."""

    def __init__(self, traced, input_shapes: dict, forced: frozenset | set = frozenset(),
                 regions: dict | None = None, masks: set | None = None):
        from ..compiler import _reserved_names

        self.masks = masks or set()  # bool / int values: recomputed where used, never nodes

        # stretches where the batch is not first: {exit node: its nodes} (importer.regions)
        self.regions = regions or {}
        self.in_region = {n for nodes in self.regions.values() for n in nodes[:-1]}

        self.forced = forced  # traced operations kept opaque although a layer matches them
        self.mapped_calls: dict[str, str] = {}  # node id -> the traced operation it maps
        self.gm = traced
        self.graph = Graph("model")
        self.input_shapes = input_shapes
        self.env: dict = {}  # traced node -> _Port | _Tuple
        self.size_values: set = set()  # traced nodes that are sizes, shapes, constants
        self.handled: set = set()
        self.taken = set(_reserved_names())
        self.prefixes: list[tuple[str, str]] = []  # (node id, original submodule name)
        self.live: dict[str, object] = {}  # opaque node id -> its live module
        self.recurrent_out: dict[str, bool] = {}  # node id -> bidirectional
        self.notes: list[str] = []

    def build(self) -> Graph:
        graph = self.gm.graph
        _refuse_inplace(graph)
        graph.eliminate_dead_code()
        for node in list(graph.nodes):
            if node in self.regions:
                self._opaque_call(self.regions[node], name=self.regions[node][0].name)
            elif node not in self.handled and node not in self.in_region:
                getattr(self, f"_{node.op}")(node)
        self._note_shared_modules()
        return self.graph

    # -- per kind of traced node
    def _placeholder(self, node) -> None:
        if not node.users:
            return
        params = {"shape": self.input_shapes[node.name]} if node.name in self.input_shapes else {}
        node_id = self._new_id(node.name)
        self.graph.add_node("Input", node_id, params)
        self.env[node] = _Port(node_id)

    def _get_attr(self, node) -> None:
        self.size_values.add(node)  # a parameter used in an operation: captured with it

    def _call_module(self, node) -> None:
        import torch.nn as nn

        from .mapping import map_module

        module = self.gm.get_submodule(node.target)
        if isinstance(module, nn.Identity) and len(node.args) == 1 and self._tensor(node.args[0]):
            self.env[node] = self._tensor(node.args[0])
            return
        mapped = map_module(module, node.args, node.kwargs)
        if mapped is not None and self._add_mapped(node, mapped, node.target):
            return
        self._opaque_module(node, module)

    def _call_function(self, node) -> None:
        from .mapping import map_call

        if node in self.masks:
            self.size_values.add(node)
            return
        if self._is_size(node) or (node.target is operator.getitem and self._getitem(node)):
            return
        if self._split(node):
            return
        mapped = None if node.name in self.forced else map_call(node, self._is_batch)
        if mapped is None or not self._add_mapped(node, mapped):
            self._opaque_call([node])
        elif isinstance(self.env.get(node), _Port):
            self.mapped_calls[self.env[node].node] = node.name

    _call_method = _call_function

    def _output(self, node) -> None:
        value = node.args[0]
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        for i, item in enumerate(values):
            port = self._tensor(item) if hasattr(item, "op") else None
            if port is None:
                raise ExportError(f"the model returns {_describe_value(item)}; Layerlab imports "
                                  "models whose forward returns a tensor or a tuple of tensors")
            node_id = self._new_id("output" if len(values) == 1 else f"output_{i}")
            self.graph.add_node("Output", node_id)
            self.graph.connect(port.node, node_id, port.port)

    # -- catalog layers
    def _add_mapped(self, node, mapped, prefix: str | None = None) -> bool:
        sources = [(self._tensor(v), port) for v, port in mapped.inputs]
        if any(s is None for s, _ in sources) or len(set(sources)) < len(sources):
            return False
        try:
            get_spec(mapped.type).resolve(mapped.params)
        except ShapeError:
            return False
        node_id = self._new_id(node.name)
        self.graph.add_node(mapped.type, node_id, mapped.params)
        for src, port in sources:
            self.graph.connect(src.node, node_id, src.port, port)
        if prefix is not None:
            self.prefixes.append((node_id, prefix))
        bidirectional = bool(mapped.params.get("bidirectional"))
        self.env[node] = _Port(node_id) if mapped.result == "tensor" else \
            _Tuple(node_id, mapped.result, bidirectional)
        return True

    def _getitem(self, node) -> bool:
        """Items of recurrent / attention results, and ``out[:, -1]`` as the ``last`` port."""
        container, index = node.args
        value = self.env.get(container)
        if isinstance(value, _Tuple):
            self.env[node] = self._select(value, index)
            return True
        if isinstance(value, _Port) and value.port == "out" and _is_last_step(index) and \
                self.recurrent_out.get(value.node) is False:
            self.env[node] = _Port(value.node, "last")
            return True
        return False

    def _select(self, value: _Tuple, index):
        node = self.graph.node(value.node)
        if value.kind in ("recurrent", "pair") and index == 0:
            self.recurrent_out[value.node] = value.bidirectional
            return _Port(value.node)
        if value.kind == "pair" and index == 1:
            return _Port(value.node, "last")
        if value.kind == "recurrent" and index == 1:
            kind = "lstm_state" if node.type == "LSTM" else "hidden"
            return _Tuple(value.node, kind, value.bidirectional)
        if value.kind == "lstm_state" and index == 0:
            return _Tuple(value.node, "hidden", value.bidirectional)
        if value.kind == "hidden" and index == -1 and not value.bidirectional:
            return _Port(value.node, "last")
        if value.kind == "attention" and index == 0:
            return _Port(value.node)
        raise ExportError(f"{value.node}: the model uses {_item_text(value, index)}, which a "
                          f"Layerlab {node.type} does not give; it gives "
                          f"{_ports_text(node.type)}")

    # -- sizes and constants (recomputed inside the operations that use them)
    def _is_size(self, node) -> bool:
        args = _nodes_in((node.args, node.kwargs))
        is_size = (node.op == "call_method" and node.target in _SIZE_METHODS) or (
            node.target is getattr and len(node.args) > 1 and node.args[1] in _SIZE_ATTRS) or \
            not any(a in self.env for a in args)
        if is_size:
            if any(isinstance(self.env.get(a), _Tuple) for a in args):
                return False
            self.size_values.add(node)
        return is_size

    def _is_batch(self, value) -> bool:
        """``x.size(0)``, ``x.shape[0]`` or ``x.size()[0]``."""
        if not hasattr(value, "op") or value not in self.size_values:
            return False
        if value.op == "call_method" and value.target == "size":
            dim = value.args[1] if len(value.args) > 1 else value.kwargs.get("dim")
            return dim == 0
        if value.target is operator.getitem and value.args[1] == 0:
            inner = value.args[0]
            return hasattr(inner, "op") and inner in self.size_values and (
                inner.target == "size" and len(inner.args) == 1 or inner.target is getattr)
        return False

    # -- opaque nodes
    def _opaque_module(self, node, module) -> None:
        users = list(node.users)
        if users and all(u.target is operator.getitem and isinstance(u.args[1], int)
                         for u in users):
            indices = {u.args[1] for u in users}
            if len(indices) > 1:
                raise ExportError(f"{node.name}: {type(module).__name__} returns several "
                                  f"results that the model uses separately (items "
                                  f"{sorted(indices)}); an imported layer passes on one tensor")
            self._opaque_call([node, users[0]], module, users[1:])
            return
        args = list(node.args)
        ports = [self._tensor(a) for a in args]
        if node.kwargs or not args or None in ports or len(set(ports)) < len(ports):
            self._opaque_call([node], module)
            return
        self._add_opaque(node, copy.deepcopy(module), ports, module)

    def _split(self, node) -> bool:
        """``a, b = x.chunk(2, 1)`` and the like: one Opaque node per item the model uses, each
        computing the call and taking its item (an Opaque node passes on one tensor)."""
        name = node.target if isinstance(node.target, str) else \
            getattr(node.target, "__name__", "")
        users = list(node.users)
        if name not in _TUPLE_OPS or not users or not all(
                u.target is operator.getitem and isinstance(u.args[1], int) for u in users):
            return False
        by_index: dict[int, list] = {}
        for user in users:
            by_index.setdefault(user.args[1], []).append(user)
        for index, group in sorted(by_index.items()):
            self._opaque_call([node, group[0]], None, group[1:],
                              f"{node.name}_{index}" if index >= 0 else None)
        return True

    def _opaque_call(self, nodes: list, module=None, aliases=(), name: str | None = None) \
            -> None:
        from .opaque import capture

        captured, inputs, _, text = capture(nodes, self.gm, self._tensor_or_fail)
        index = nodes[1].args[1] if len(nodes) == 2 and module is not None else None
        simple = index is not None and len(nodes[0].args) == 1 and not nodes[0].kwargs
        node_id = self._add_opaque(nodes[-1], captured, [self._tensor(v) for v in inputs],
                                   module if simple else None, text, index,
                                   name or nodes[0].name)
        for node in list(nodes[1:]) + list(aliases):
            self.env[node] = _Port(node_id)
            self.handled.add(node)

    def _add_opaque(self, node, live, ports: list, module=None, text: str | None = None,
                    index: int | None = None, name: str | None = None) -> str:
        """An Opaque node computing traced ``node`` with ``live`` from ``ports``."""
        from ..layers.fx_data import encode
        from ..layers.opaque import register_module
        from .opaque import class_path, recover_init

        name = name or node.name
        if not ports:
            raise ExportError(f"{name}: {text or name} reads no tensor of the model; Layerlab "
                              "cannot place it on the canvas")
        params = {"module": class_path(type(module)) if module is not None else text}
        init = recover_init(module) if module is not None else None
        if init is not None:
            params["init"] = init
        if index is not None and module is not None:
            params["output_index"] = index
        if module is None:  # a captured operation: its fx nodes as data, for a saved copy
            graph = encode(live)
            if graph is not None:
                params["graph"] = graph
        params["ref"] = register_module(live)
        node_id = self._new_id(name)
        self.graph.add_node("Opaque", node_id, params)
        for port in ports:
            self.graph.connect(port.node, node_id, port.port)
        self.live[node_id] = live
        self.env[node] = _Port(node_id)
        self.notes.append(f"{node_id}: kept as an Opaque node ({params['module']})")
        return node_id

    # -- helpers
    def _tensor(self, value) -> _Port | None:
        found = self.env.get(value) if hasattr(value, "op") else None
        return found if isinstance(found, _Port) else None

    def _tensor_or_fail(self, value):
        found = self.env.get(value)
        if isinstance(found, _Tuple):
            raise ExportError(f"{found.node}: the model uses its whole result "
                              f"({value.name}) in an operation; only single items of it can "
                              f"be imported: {_ports_text(self.graph.node(found.node).type)}")
        return found

    def _new_id(self, name: str) -> str:
        from ..compiler import attr_name

        node_id = attr_name(name)
        while node_id in self.taken:
            node_id += "_"
        self.taken.add(node_id)
        return node_id

    def _note_shared_modules(self) -> None:
        calls = Counter(prefix for _, prefix in self.prefixes)
        for prefix, n in calls.items():
            if n > 1:
                self.notes.append(f"module {prefix} is called {n} times; each call became its "
                                  "own node, with a copy of its weights (they train separately)")

    def misfits(self) -> set[str]:
        """Traced operations mapped onto a catalog layer that rejects its input shapes (a
        broadcasting ``+`` is no Add layer); empty when the input shapes are unknown."""
        from ..shapes import infer_shapes

        if not self.input_shapes:
            return set()
        errors = infer_shapes(self.graph).errors()
        return {self.mapped_calls[n] for n in errors if n in self.mapped_calls and
                not any(e.src in errors for e in self.graph.in_edges(n))}

    def state_dict(self, original: dict) -> dict:
        """The weights keyed by the compiled graph's parameter names (node id first)."""
        state = {}
        for node_id, prefix in self.prefixes:
            head = prefix + "."
            state.update({f"{node_id}.{k[len(head):]}": v.detach().clone()
                          for k, v in original.items() if k.startswith(head)})
        for node_id, live in self.live.items():
            state.update({f"{node_id}.{k}": v.detach().clone()
                          for k, v in live.state_dict().items()})
        return state


def _refuse_inplace(graph) -> None:
    for node in graph.nodes:
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__",
                                                                         "")
        if node.op in ("call_method", "call_function") and name.endswith("_") and \
                not name.startswith("_") and not node.users:
            raise ExportError(f"{node.name}: the in-place operation {name} cannot be imported; "
                              "write it as a new tensor (x = x + y rather than x.add_(y))")


def _nodes_in(args) -> list:
    from torch.fx.node import map_aggregate

    found = []
    map_aggregate(args, lambda a: found.append(a) if hasattr(a, "op") else None)
    return found


def _is_last_step(index) -> bool:
    full = slice(None)
    return isinstance(index, tuple) and index[:2] == (full, -1) and all(
        i == full for i in index[2:])


def _item_text(value: _Tuple, index) -> str:
    return {"recurrent": f"item {index} of its result", "lstm_state": f"item {index} of (h_n, c_n)",
            "hidden": f"h_n[{index}]" + (" of a bidirectional layer" if value.bidirectional
                                         else ""),
            "attention": f"item {index} of its result (the attention weights)",
            "pair": f"item {index} of its result"}[value.kind]


def _ports_text(type_: str) -> str:
    if type_ in ("RNN", "LSTM", "GRU", "Reservoir"):
        return ("the output sequence (result[0]) and the last step (result[0][:, -1], or h_n[-1] "
                "of a one-directional layer)")
    if type_ == "MultiheadAttention":
        return "the attention output (result[0])"
    return "one tensor"


def _describe_value(value) -> str:
    if hasattr(value, "op"):
        return f"a non-tensor value ({value.name})"
    return f"a {type(value).__name__}"


# -- checking the import ------------------------------------------------------------------------
def check_outputs(graph: Graph, state: dict, module, label: str) -> float:
    """Compile the imported graph, load ``state`` and compare with ``module`` on random input."""
    import torch

    from ..compiler import compile_model
    from ..export.formats import max_difference
    from ..shapes import infer_shapes

    shapes = infer_shapes(graph)
    problems = sorted(shapes.errors().items())
    if problems:
        node, msg = problems[0]
        raise ExportError(f"{label}: the imported graph does not check: {node}: {msg}")
    model = compile_model(graph, shapes)
    mismatch = _first_mismatch(model.state_dict(), state)
    if mismatch:
        raise ExportError(f"{label}: {mismatch}; is the example input shape right?")
    model.load_state_dict(state)
    model.eval()

    def inputs(batch):
        gen = torch.Generator().manual_seed(batch)
        return tuple(_random_input(graph, shapes, name, batch, gen)
                     for name in model.input_names)

    try:
        diff = max_difference(model, module, inputs, batches=(2,))
    except Exception as exc:  # noqa: BLE001 - the user's module (or a capture) refusing them
        raise ExportError(f"{label}: the imported graph could not be checked against the "
                          f"module on random inputs ({_first_line(exc)})") from None
    if not diff <= TOLERANCE:
        raise ExportError(f"{label}: the imported graph does not reproduce the module's outputs "
                          f"(largest difference {diff:.3g}); please report this model")
    return diff


def _feeds_embedding(traced, node) -> bool:
    """``x.long()`` read by an nn.Embedding: a node of its own, so that the Embedding maps onto
    the catalog layer (which takes token ids as floats, as every value on the canvas is)."""
    import torch.nn as nn

    return any(u.op == "call_module" and isinstance(traced.get_submodule(u.target), nn.Embedding)
               for u in node.users)


def _parameter_count(graph: Graph) -> int:
    from ..compiler import compile_model
    from ..shapes import infer_shapes

    try:
        return sum(p.numel() for p in compile_model(graph, infer_shapes(graph)).parameters())
    except LayerlabError:
        return 0


def _first_mismatch(expected: dict, given: dict) -> str | None:
    """The first parameter whose shape differs between the graph built from the example input
    and the module's own weights, in words; None when every shape agrees."""
    for key, tensor in expected.items():
        if key in given and tuple(given[key].shape) != tuple(tensor.shape):
            node = key.split(".", 1)[0]
            return (f"{node}: the module's {key} has shape {tuple(given[key].shape)}, but the "
                    f"graph built for this input needs {tuple(tensor.shape)}")
    return None


def _random_input(graph: Graph, shapes, name: str, batch: int, gen):
    import torch

    from ..export.formats import vocabulary

    shape = (batch, *shapes.info[name].out_shapes["out"])
    vocab = vocabulary(graph, shapes, name)
    if vocab:
        return torch.randint(0, vocab, shape, generator=gen)
    return torch.randn(shape, generator=gen)
