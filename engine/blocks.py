"""Composite blocks: a named sub-graph defined once in a project and used by any number of nodes.

A project's ``"blocks"`` object maps a name to a definition::

    "blocks": {"residual": {
        "description": "two 3×3 convolutions and a skip",
        "params": {"channels": 16},
        "nodes": [{"id": "x", "type": "Input"}, ...,
                  {"id": "conv1", "type": "Conv2d", "params": {"out_channels": "$channels"}},
                  ..., {"id": "y", "type": "Output"}],
        "edges": [...],
        "ports": {"in": ["x"], "out": ["y"]}}}

The definition is an ordinary graph: its ``Input`` nodes are the block's inputs (in the order of
``ports.in``), its ``Output`` nodes its results (in the order of ``ports.out``). A Block node
of a block with one Output has one output port, ``out``; with several, one port per Output,
named by its id (``{"from": "b1", "from_port": "h", ...}`` reads the Output ``h``).
``params`` are the parameters a ``Block``
node exposes, with their defaults; a node parameter written ``"$channels"`` takes the instance's
value. A node of type ``Block`` with ``{"block": "residual", "channels": 32}`` runs the
definition: its inputs are fed, in wire order, to the block's inputs; shapes, parameter counts
and errors come out of the definition's own inference (an error inside names the block and the
inner node); the compiler builds one submodule per instance (``model.b1.conv1``), and the Python
export writes each block as its own ``nn.Module`` class. Blocks may use other blocks; a block
that contains itself is refused.

:func:`make_block` turns a selection of nodes into a block and one Block node in its place;
:func:`expand_block` puts a Block node's layers back in place. Both are plain graph edits, so an
undo command can replay or reverse them.
"""
from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .graph import Graph
from .layers import ShapeError

BLOCKS_DIR = Path(__file__).resolve().parent.parent / "resources" / "blocks"
_REF = "$"


class BlockError(ShapeError):
    """A block definition or a Block node that cannot be used; the message names it."""


@dataclass
class BlockDef:
    """One block definition: its graph, the parameters it exposes, a description."""

    name: str
    graph: Graph
    params: dict = field(default_factory=dict)
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        return self._in_port_order("in", "Input")

    @property
    def outputs(self) -> list[str]:
        return self._in_port_order("out", "Output")

    def _in_port_order(self, side: str, type_name: str) -> list[str]:
        """The ids of the ``type_name`` nodes, in the order ``ports[side]`` gives (ids it does
        not list last, in graph order)."""
        ports = self.extra.get("ports")
        order = ports.get(side) if isinstance(ports, dict) else None
        ids = [n.id for n in self.graph.nodes_of_type(type_name)]
        return [i for i in order if i in ids] + [i for i in ids if i not in order] \
            if isinstance(order, list) else ids

    @property
    def ports(self) -> tuple[str, ...]:
        """A Block node's output ports: ``out`` for a block with one Output node, else the
        Outputs' ids (a port is never bound to an Output by its place, so a renamed or deleted
        Output leaves wires that say so rather than wires that read another Output)."""
        outputs = self.outputs
        return ("out",) if len(outputs) <= 1 else tuple(outputs)

    def fingerprint(self) -> str:
        """Text that changes whenever the definition does (keys the inference cache)."""
        return json.dumps(block_to_dict(self), sort_keys=True, default=str)

    def instance(self, args: dict, in_shapes: list) -> Graph:
        """A copy of the definition with ``$name`` values replaced by ``args`` and each Input's
        shape set from ``in_shapes``."""
        g = Graph(self.name)
        g.blocks = self.graph.blocks
        inputs = self.inputs
        # the Inputs first, in port order: the compiled forward takes its arguments in the
        # order the Input nodes come (engine.compiler), and the wires feed them in port order
        nodes = [self.graph.node(i) for i in inputs] + \
            [n for n in self.graph.nodes() if n.id not in set(inputs)]
        for node in nodes:
            params = {k: _substitute(v, args, self.name, node.id, k)
                      for k, v in node.params.items()}
            if node.type == "Input":
                params["shape"] = list(in_shapes[inputs.index(node.id)])
            g.add_node(node.type, node.id, params, node.pos)
        for edge in self.graph.edges():
            g.connect(edge.src, edge.dst, edge.src_port, edge.dst_port)
        return g


def named_block(library: dict, params: dict) -> BlockDef | None:
    """The definition a Block node with ``params`` runs; None when there is none by that name
    (or the name is not text)."""
    name = params.get("block")
    return library.get(name) if library and isinstance(name, str) else None


def block_ports(library: dict, params: dict) -> tuple[str, ...] | None:
    """The output ports of a Block node with ``params``; None when its block is not known."""
    block = named_block(library, params)
    return block.ports if block is not None else None


def _substitute(value, args: dict, block: str, node_id: str, key: str):
    if isinstance(value, str) and value.startswith(_REF) and len(value) > 1:
        name = value[1:]
        if name not in args:
            raise BlockError(f"inside block {block}: {node_id}.{key} refers to {value}, which "
                             f"the block does not define (it defines "
                             f"{', '.join(args) or 'no parameters'})")
        return args[name]
    if isinstance(value, list):
        return [_substitute(v, args, block, node_id, key) for v in value]
    return value


# -- the project file ---------------------------------------------------------------------------
def parse_blocks(data, problems: list, library: dict) -> dict[str, BlockDef]:
    """``blocks`` of a project file into ``library`` (shared by every graph that uses it)."""
    from .project import _parse_model

    if data is None:
        return library
    if not isinstance(data, dict):
        problems.append(("blocks", "must be an object mapping block names to definitions"))
        return library
    for name, entry in data.items():
        where = f"blocks.{name}"
        if not isinstance(entry, dict):
            problems.append((where, "must be an object with nodes and edges"))
            continue
        graph = _parse_model(name, {"nodes": entry.get("nodes", []),
                                    "edges": entry.get("edges", [])}, problems, where, library)
        if graph is None:
            continue
        graph.blocks = library
        params = entry.get("params", {})
        if not isinstance(params, dict):
            problems.append((f"{where}.params", "must be an object of parameter defaults"))
            params = {}
        extra = {k: v for k, v in entry.items()
                 if k not in ("nodes", "edges", "params", "description")}
        block = BlockDef(name, graph, dict(params), str(entry.get("description", "")), extra)
        problem = definition_problem(block)
        if problem:
            problems.append((where, problem))
            continue
        library[name] = block
    return library


def definition_problem(block: BlockDef) -> str | None:
    """Why a definition cannot be a block (no input, no output, an Output with nothing wired to
    it), or None."""
    if not block.inputs:
        return "a block needs at least one Input node (its input port)"
    if not block.outputs:
        return "a block needs at least one Output node (its result)"
    for output in block.outputs:
        if not block.graph.in_edges(output):
            return f"nothing is wired to the block's Output ({output})"
    return None


def block_to_dict(block: BlockDef) -> dict:
    from .project import graph_to_dict

    d = {}
    if block.description:
        d["description"] = block.description
    if block.params:
        d["params"] = block.params
    d.update(graph_to_dict(block.graph))
    d.update({k: v for k, v in block.extra.items() if k != "ports"})
    d["ports"] = {"in": block.inputs, "out": block.outputs}
    return d


def blocks_to_dict(library: dict) -> dict:
    return {name: block_to_dict(block) for name, block in library.items()}


# -- bundled blocks -----------------------------------------------------------------------------
def bundled_blocks() -> dict[str, BlockDef]:
    """The blocks that ship with Layerlab (``resources/blocks/*.block.json``)."""
    library: dict[str, BlockDef] = {}
    for path in sorted(BLOCKS_DIR.glob("*.block.json")):
        problems: list = []
        data = json.loads(path.read_text("utf-8"))
        parse_blocks({data["name"]: data["block"]}, problems, library)
        if problems:
            raise BlockError(f"{path.name}: {problems[0][0]}: {problems[0][1]}")
    for block in library.values():
        block.graph.blocks = library
    return library


def add_bundled(library: dict, name: str) -> BlockDef:
    """Copy a bundled block (and the bundled blocks it uses) into a project's ``library``."""
    bundled = bundled_blocks()
    if name not in bundled:
        raise BlockError(f"there is no bundled block named '{name}' (there are "
                         f"{', '.join(sorted(bundled))})")
    for needed in [name, *sorted(used_blocks(bundled[name], bundled))]:
        if needed not in library:
            copied = copy_block(bundled[needed])
            copied.graph.blocks = library
            library[needed] = copied
    return library[name]


def copy_block(block: BlockDef, name: str | None = None) -> BlockDef:
    from .project import _parse_model

    problems: list = []
    graph = _parse_model(name or block.name, copy.deepcopy(
        {k: v for k, v in block_to_dict(block).items() if k in ("nodes", "edges")}),
        problems, "block")
    graph.blocks = block.graph.blocks
    return BlockDef(name or block.name, graph, copy.deepcopy(block.params), block.description,
                    copy.deepcopy(block.extra))


def used_blocks(block: BlockDef, library: dict, seen: set | None = None) -> set[str]:
    """Names of the blocks ``block`` uses, directly or inside them."""
    seen = set() if seen is None else seen
    for node in block.graph.nodes_of_type("Block"):
        name = node.params.get("block")
        if name not in seen and name in library:
            seen.add(name)
            used_blocks(library[name], library, seen)
    return seen


# -- inference ----------------------------------------------------------------------------------
@dataclass
class Inner:
    """A Block node's definition instantiated for its arguments and input shapes."""

    block: BlockDef
    graph: Graph
    shapes: object  # ShapeInference
    out_shapes: dict  # Block node's output port -> shape
    args: dict

    @property
    def out_shape(self) -> tuple:
        return next(iter(self.out_shapes.values()))


_LOCAL = threading.local()  # .active: the blocks being inferred on this thread, outermost first
_CACHE: dict[tuple, Inner] = {}


def _active() -> list[str]:
    if not hasattr(_LOCAL, "active"):
        _LOCAL.active = []
    return _LOCAL.active


def instance_args(block: BlockDef, params: dict) -> dict:
    """The block's parameters for one Block node: its defaults, overridden by the node."""
    given = {k: v for k, v in params.items() if k not in ("block", "_library")}
    unknown = [k for k in given if k not in block.params]
    if unknown:
        has = ", ".join(block.params) or "no parameters"
        raise BlockError(f"block {block.name} has no parameter '{unknown[0]}' (it has {has})")
    return {**block.params, **{k: v for k, v in given.items() if v is not None}}


def inner(params: dict, ins: dict) -> Inner:
    """Instantiate and infer a Block node's definition; BlockError naming what is wrong."""
    from .shapes import infer_shapes

    library = params.get("_library") or {}
    name = params["block"]
    block = library.get(name)
    if block is None:
        known = f"; the project defines {', '.join(sorted(library))}" if library else \
            "; the project defines no blocks"
        raise BlockError(f"there is no block named '{name}'{known}")
    active = _active()
    if name in active:
        raise BlockError(f"block {name} contains itself ({' → '.join(active + [name])})")
    args = instance_args(block, params)
    shapes_in = [tuple(s) for s in ins.get("in", [])]
    if len(shapes_in) != len(block.inputs):
        raise BlockError(f"block {name} takes {len(block.inputs)} input(s) "
                         f"({', '.join(block.inputs)}); {len(shapes_in)} connected")
    # the blocks it uses count too: editing an inner definition changes this one's result
    used = sorted(used_blocks(block, library))
    key = (id(library), block.fingerprint(), *(library[u].fingerprint() for u in used),
           json.dumps(args, sort_keys=True, default=str), tuple(shapes_in))
    found = _CACHE.get(key)
    if found is not None:
        return found
    active.append(name)
    try:
        graph = block.instance(args, shapes_in)
        shapes = infer_shapes(graph)
    finally:
        active.pop()
    errors = shapes.errors()
    if errors:
        node, message = next(iter(errors.items()))
        raise BlockError(f"inside block {name}: {node}: {message}")
    outs = {}
    for port, output in zip(block.ports, block.outputs):
        out = shapes.info[output].out_shape
        if out is None:
            raise BlockError(f"inside block {name}: nothing reaches its Output ({output})")
        outs[port] = tuple(out)
    if len(_CACHE) > 512:
        _CACHE.clear()
    found = _CACHE[key] = Inner(block, graph, shapes, outs, args)
    return found


# -- editing ------------------------------------------------------------------------------------
def make_block(graph: Graph, node_ids, name: str, library: dict) -> tuple[BlockDef, str]:
    """Turn ``node_ids`` of ``graph`` into the block ``name`` and one Block node in their place.

    Every wire coming into the selection becomes an Input of the block (one per distinct source
    port), each source port the rest of the graph reads an Output (``y``; ``y1``, ``y2``... when
    there are several, in the order the wires were made, which are the Block node's ports).
    Returns the new
    definition and the Block node's id. BlockError (and no change) when the selection cannot be
    a block.
    """
    chosen = [n for n in graph.node_ids() if n in set(node_ids)]
    if not chosen:
        raise BlockError("select the layers that make up the block first")
    if name in library:
        raise BlockError(f"there is already a block named '{name}'")
    if not name.isidentifier():
        raise BlockError(f"'{name}' cannot be a block name: use letters, digits and _")
    for node_id in chosen:
        if graph.node(node_id).type in ("Input", "Output"):
            raise BlockError(f"{node_id}: an {graph.node(node_id).type} node cannot go into a "
                             "block; select only the layers between them")
    inside = set(chosen)
    incoming = [e for e in graph.edges() if e.dst in inside and e.src not in inside]
    outgoing = [e for e in graph.edges() if e.src in inside and e.dst not in inside]
    sources = list(dict.fromkeys((e.src, e.src_port) for e in incoming))
    results = list(dict.fromkeys((e.src, e.src_port) for e in outgoing))
    if not sources:
        raise BlockError("nothing flows into the selection; a block needs an input")
    if not results:
        raise BlockError("the rest of the model reads nothing of the selection; a block needs "
                         "a result")
    for e in outgoing:  # a path that leaves the selection and comes back: not one block
        back = ({e.dst} | graph.descendants(e.dst)) & inside
        if back:
            raise BlockError(f"the selection is not one piece: {e.src} → {e.dst} leaves it and "
                             f"comes back into {sorted(back)[0]}; add {e.dst} to the selection "
                             "or leave out what follows it")
    body = Graph(name)
    body.blocks = library
    xs = [n.pos[0] for n in map(graph.node, chosen) if n.pos]
    ys = [n.pos[1] for n in map(graph.node, chosen) if n.pos]
    left, top = (min(xs), min(ys)) if xs else (0.0, 0.0)
    input_ids = {}
    for i, source in enumerate(sources):
        input_ids[source] = "x" if len(sources) == 1 else f"x{i + 1}"
        body.add_node("Input", input_ids[source], None, (left - 200.0, top + 165.0 * i))
    for node_id in chosen:
        node = graph.node(node_id)
        body.add_node(node.type, node.id, copy.deepcopy(node.params), node.pos)
    # in the graph's order, wires from inside and from outside alike: a layer that takes
    # several inputs on one port (a Concat) reads them in that order
    for e in graph.edges():
        if e.dst in inside and e.src in inside:
            body.connect(e.src, e.dst, e.src_port, e.dst_port)
        elif e.dst in inside:
            body.connect(input_ids[(e.src, e.src_port)], e.dst, "out", e.dst_port)
    output_ids = {}  # (node, port) read outside -> the Output node giving it
    for i, (result_node, result_port) in enumerate(results):
        output_ids[(result_node, result_port)] = "y" if len(results) == 1 else f"y{i + 1}"
        out_pos = graph.node(result_node).pos
        body.add_node("Output", output_ids[(result_node, result_port)], None,
                      (out_pos[0] + 200.0, out_pos[1]) if out_pos else None)
        body.connect(result_node, output_ids[(result_node, result_port)], result_port, "in")
    block = BlockDef(name, body, extra={"ports": {"in": list(input_ids.values()),
                                                  "out": list(output_ids.values())}})
    # the Block node replaces the selection
    first = graph.node(chosen[0])
    block_id = graph.new_id("Block")
    orders = {e: graph.edge_order(e) for e in outgoing}
    for node_id in chosen:
        graph.remove_node(node_id)
    library[name] = block
    graph.add_node("Block", block_id, {"block": name}, first.pos)
    for source in sources:
        graph.connect(source[0], block_id, source[1], "in")
    ports = dict(zip(output_ids, block.ports))
    for e in outgoing:  # each in its old place among the inputs of the layer it feeds
        graph.connect(block_id, e.dst, ports[(e.src, e.src_port)], e.dst_port, order=orders[e])
    return block, block_id


def expand_block(graph: Graph, node_id: str) -> list[str]:
    """Put the layers of Block node ``node_id`` back in its place (its parameters filled in);
    returns the new node ids. The definition stays in the project. BlockError (and no change)
    when the layers cannot stand in the node's place."""
    node = graph.node(node_id)
    if node.type != "Block":
        raise BlockError(f"{node_id} is a {node.type}, not a Block")
    library = graph.blocks
    block = named_block(library, node.params)
    if block is None:
        raise BlockError(f"{node_id}: there is no block named '{node.params.get('block')}'")
    args = instance_args(block, node.params)
    incoming = list(graph.in_edges(node_id))
    outgoing = list(graph.out_edges(node_id))
    base = node.pos or (0.0, 0.0)
    positions = [n.pos for n in block.graph.nodes() if n.pos]
    left = min((p[0] for p in positions), default=0.0)
    top = min((p[1] for p in positions), default=0.0)
    # the plan first (new ids, wires), so that nothing changes when it cannot be done
    mapping: dict[str, str] = {}
    taken = set(graph.node_ids()) - {node_id}
    layers = []
    for inner_node in block.graph.nodes():
        if inner_node.type in ("Input", "Output"):
            continue
        new_id = f"{node_id}_{inner_node.id}"
        while new_id in taken:
            new_id += "_"
        taken.add(new_id)
        mapping[inner_node.id] = new_id
        params = {k: _substitute(v, args, block.name, inner_node.id, k)
                  for k, v in inner_node.params.items()}
        pos = (base[0] + inner_node.pos[0] - left, base[1] + inner_node.pos[1] - top) \
            if inner_node.pos else None
        layers.append((inner_node.type, new_id, params, pos))
    feeds = dict(zip(block.inputs, [(e.src, e.src_port) for e in incoming]))
    wires = []  # (src, dst, src_port, dst_port, order or None)
    for e in block.graph.edges():  # in the definition's order (see make_block)
        if e.src in mapping and e.dst in mapping:
            wires.append((mapping[e.src], mapping[e.dst], e.src_port, e.dst_port, None))
        elif e.dst in mapping:
            if e.src not in feeds:
                raise BlockError(f"{node_id}: the block's input {e.src} is not wired, so its "
                                 "layers cannot take its place")
            wires.append((*feeds[e.src][:1], mapping[e.dst], feeds[e.src][1], e.dst_port, None))
    orders = {e: graph.edge_order(e) for e in outgoing}
    results = dict(zip(block.ports, block.outputs))
    for e in outgoing:
        output = results.get(e.src_port)
        if output is None:
            raise BlockError(f"{node_id}: the wire to {e.dst} reads port '{e.src_port}', which "
                             f"block {block.name} does not have; wire it from one of "
                             f"{', '.join(block.ports)} first")
        result = next((r for r in block.graph.edges() if r.dst == output), None)
        if result is None:
            raise BlockError(f"{node_id}: nothing is wired to the block's Output ({output})")
        if result.src in feeds:
            src, port = feeds[result.src]
        elif result.src in mapping:
            src, port = mapping[result.src], result.src_port
        else:
            raise BlockError(f"{node_id}: the block's input {result.src} is not wired")
        wires.append((src, e.dst, port, e.dst_port, orders[e]))
    kept = {(e.src, e.dst, e.src_port, e.dst_port) for e in graph.edges()
            if node_id not in (e.src, e.dst)}
    for wire in wires:
        if wire[:4] in kept:
            raise BlockError(f"{node_id}: expanded, it would wire {wire[0]} to {wire[1]} twice "
                             "(two of the block's results are one value read on one port); "
                             "rewire one of them first")
        kept.add(wire[:4])
    graph.remove_node(node_id)
    for layer in layers:
        graph.add_node(*layer)
    for src, dst, src_port, dst_port, order in wires:
        graph.connect(src, dst, src_port, dst_port, order=order)
    return list(mapping.values())


def repeat_block(graph: Graph, node_id: str, times: int) -> list[str]:
    """Stack Block node ``node_id`` ``times`` times in a chain (it must have one input and feed
    its own kind of input); returns the ids of the added copies."""
    node = graph.node(node_id)
    if node.type != "Block":
        raise BlockError(f"{node_id} is a {node.type}, not a Block")
    if times < 2:
        raise BlockError("repeat needs at least 2")
    if len(graph.in_edges(node_id)) != 1 or len(graph.output_ports(node_id)) != 1:
        raise BlockError(f"{node_id}: only a block with one input and one output can be "
                         "repeated")
    stale = [e for e in graph.out_edges(node_id) if e.src_port != "out"]
    if stale:
        raise BlockError(f"{node_id}: the wire to {stale[0].dst} reads port "
                         f"'{stale[0].src_port}', which the block does not have; rewire it "
                         "first")
    outgoing = list(graph.out_edges(node_id))
    orders = {e: graph.edge_order(e) for e in outgoing}
    for e in outgoing:
        graph.disconnect(e)
    added, last = [], node_id
    x, y = node.pos or (0.0, 0.0)
    for i in range(1, times):
        new = graph.add_node("Block", graph.new_id("Block"), copy.deepcopy(node.params),
                             (x + 200.0 * i, y)).id
        graph.connect(last, new)
        added.append(new)
        last = new
    for e in outgoing:
        graph.connect(last, e.dst, "out", e.dst_port, order=orders[e])
    return added


def exposed_params(library: dict, params: dict) -> tuple:
    """The :class:`~engine.layers.spec.Param` of each parameter a Block node's block exposes
    (kind from its default), for the inspector."""
    from .layers.spec import BOOL, FLOAT, INT, STR, Param

    block = named_block(library, params)
    if block is None:
        return ()
    found = []
    for name, default in block.params.items():
        kind = BOOL if isinstance(default, bool) else INT if isinstance(default, int) else \
            FLOAT if isinstance(default, float) else STR
        found.append(Param(name, kind, default, f"Exposed by block {block.name}: the value of "
                           f"${name} inside it (default {default!r}).", optional=True))
    return tuple(found)


def instance_params(block: BlockDef, args: dict, in_shapes: list):
    """``params_of`` for inferring ``block``'s own graph as one instance sees it: ``$name``
    values replaced by ``args`` (the unknown left as they are, for the node to report) and
    each Input given its instance's shape."""
    inputs = block.inputs

    def params_of(node) -> dict:
        params = {}
        for key, value in node.params.items():
            try:
                params[key] = _substitute(value, args, block.name, node.id, key)
            except BlockError:
                params[key] = value
        if node.type == "Input" and node.id in inputs and inputs.index(node.id) < len(in_shapes):
            params["shape"] = list(in_shapes[inputs.index(node.id)])
        return params

    return params_of


def first_instance(library: dict, graphs, name: str, seen: frozenset = frozenset()) \
        -> tuple[dict, list]:
    """(arguments, input shapes) of the first Block node using block ``name``: in the models
    (``graphs``: {model: (graph, shape inference)}), else inside another block as that block's
    own first instance sees it; the block's defaults and no shapes when none is found."""
    block = library[name]
    for graph, shapes in graphs.values():
        for node in graph.nodes_of_type("Block"):
            if node.params.get("block") != name:
                continue
            info = shapes.info.get(node.id)
            ins = [tuple(s) for s in (info.in_shapes.get("in", []) if info else [])]
            try:
                return instance_args(block, node.params), ins
            except BlockError:
                continue
    for outer_name, outer in library.items():
        if outer_name == name or outer_name in seen or not any(
                n.params.get("block") == name for n in outer.graph.nodes_of_type("Block")):
            continue
        args, ins = first_instance(library, graphs, outer_name, seen | {name})
        if not ins:
            continue
        try:
            found = inner({"block": outer_name, "_library": library, **args}, {"in": ins})
        except BlockError:
            continue
        return first_instance(library, {outer_name: (found.graph, found.shapes)}, name,
                              seen | {name, outer_name})
    return dict(block.params), []
