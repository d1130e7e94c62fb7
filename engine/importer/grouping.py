"""An imported model's module hierarchy as nested blocks (:mod:`engine.blocks`).

torch.fx records, for every traced call, the stack of submodules it ran in
(``node.meta["nn_module_stack"]``: ``layer1``, ``layer1.0``, ...). Each submodule that holds more
than one layer becomes a block, innermost first, so that resnet18 opens as a stem, four stages
and a head, each stage two BasicBlocks: a readable graph that expands. Identical submodules
(the same layers with the same settings, in the same order) share one definition. Block names
are the module's class (``BasicBlock``), or its attribute name for torch.nn containers
(``layer1`` for an ``nn.Sequential``); inside a block, node ids lose the submodule's prefix
(``layer1_0_conv1`` becomes ``conv1``).

A submodule that hands several results to the rest of the model becomes a block with several
outputs; one whose layers cannot form a block (a path leaves it and comes back) stays flat. The weights are mapped to the nested names through the compiled modules'
``node_attrs``.
"""
from __future__ import annotations

import json

CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}


def module_paths(traced, env: dict, port_type) -> dict[str, list[tuple[str, str]]]:
    """Node id -> the (path, class name) of the submodules its traced call ran inside, outermost
    first, without the called module itself."""
    paths: dict[str, list[tuple[str, str]]] = {}
    for fx_node in traced.graph.nodes:
        port = env.get(fx_node)
        if not isinstance(port, port_type) or port.node in paths:
            continue
        stack = list((fx_node.meta.get("nn_module_stack") or {}).values())
        entries = [(path, _class_name(cls)) for path, cls in stack]
        if fx_node.op == "call_module" and entries and entries[-1][0] == fx_node.target:
            entries = entries[:-1]
        paths[port.node] = entries
    return paths


def _class_name(cls) -> str:
    name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
    return name.rsplit(".", 1)[-1].strip("'>")


def group(graph, library: dict, paths: dict[str, list[tuple[str, str]]]) -> dict:
    """Make blocks of ``graph`` for every submodule path, deepest first. Returns, per Block node
    made (in ``graph`` or inside a definition), {definition's inner id: the node it stands for}
    (a flat node id or another Block node), for :func:`nested_state`."""
    from ..blocks import BlockError, make_block
    from ..compiler import attr_name

    candidates: dict[str, str] = {}
    for entries in paths.values():
        for path, cls in entries:
            candidates.setdefault(path, cls)
    members = {node_id: [p for p, _ in entries] for node_id, entries in paths.items()}
    instances: dict[str, dict[str, str]] = {}
    signatures: dict[str, str] = {}  # definition signature -> block name
    # a Block node's id keys ``instances``, so it must never be given twice: once its node has
    # gone into an outer block, the graph no longer holds the id, but ``instances`` still does
    used = set(graph.node_ids())
    for path in sorted(candidates, key=lambda p: (-p.count("."), p)):
        chosen = [n for n in graph.node_ids() if path in members.get(n, ())]
        if len(chosen) < 2:
            continue
        base = path.rsplit(".", 1)[-1] if candidates[path] in CONTAINERS else candidates[path]
        base = attr_name(base if not base[:1].isdigit() else f"b{base}")
        temp = _free_name(f"{base}__new", library)
        try:
            block, block_id = make_block(graph, chosen, temp, library)
        except BlockError:
            continue
        instance = {n: n for n in _inner_ids(block)}  # make_block keeps the ids
        _strip_prefix(block, attr_name(path) + "_", instance)
        signature = _signature(block)
        shared = signatures.get(signature)
        if shared is not None:  # the same layers as an earlier submodule: one definition
            del library[temp]
            instance = dict(zip(_inner_ids(library[shared]), instance.values()))
            graph.set_param(block_id, "block", shared)
        else:
            name = _free_name(base, library)
            library[name] = library.pop(temp)
            library[name].name = name
            library[name].graph.name = name
            graph.set_param(block_id, "block", name)
            signatures[signature] = name
        last = path.rsplit(".", 1)[-1]
        new_id = _free_name(f"b{last}" if last[:1].isdigit() else attr_name(last), used)
        used.add(new_id)
        graph.rename_node(block_id, new_id)
        instances[new_id] = instance
        parents = [p for p in members.get(chosen[0], ()) if path.startswith(p + ".")]
        members[new_id] = parents
    return instances


def _inner_ids(block) -> list[str]:
    return [n.id for n in block.graph.nodes() if n.type not in ("Input", "Output")]


def _strip_prefix(block, prefix: str, instance: dict) -> None:
    for node_id in list(_inner_ids(block)):
        if not node_id.startswith(prefix) or node_id == prefix:
            continue
        new = node_id[len(prefix):]
        if new[:1].isdigit():
            new = f"b{new}"
        if new in block.graph:
            continue
        block.graph.rename_node(node_id, new)
        instance[new] = instance.pop(node_id)
    ordered = {k: instance[k] for k in _inner_ids(block)}
    instance.clear()
    instance.update(ordered)


def _signature(block) -> str:
    """The definition without its ids and positions: layers, settings and wiring in order."""
    ids = [n.id for n in block.graph.nodes()]
    index = {n: i for i, n in enumerate(ids)}
    nodes = [(n.type, n.params) for n in block.graph.nodes()]
    edges = sorted((index[e.src], e.src_port, index[e.dst], e.dst_port)
                   for e in block.graph.edges())
    return json.dumps([nodes, edges], sort_keys=True, default=str)


def _free_name(base: str, taken) -> str:
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}{i}"
    return name


def nested_state(graph, flat_state: dict, instances: dict) -> dict:
    """The flat graph's weights (``flat_id.param``) under their names in the compiled blocked
    ``graph`` (``layer1.b0.conv1.weight``): each graph's submodule names as the compiler gives
    them, block inside block."""
    from ..compiler import _reserved_names, _unique_attrs

    reserved = _reserved_names()
    where: dict[str, str] = {}
    known: dict[int, tuple] = {}  # id(graph) -> (graph, its attribute names), each made once

    def attrs(g) -> dict[str, str]:
        if id(g) not in known:
            known[id(g)] = (g, _unique_attrs(g.node_ids(), reserved=reserved,
                                             arguments={n.id for n in g.nodes_of_type("Input")}))
        return known[id(g)][1]

    def walk(g, node_id: str, original: str, prefix: str) -> None:
        path = prefix + attrs(g)[node_id]
        if original not in instances:
            where[original] = path
            return
        inner = g.blocks[g.node(node_id).params["block"]].graph
        for inner_id, inner_original in instances[original].items():
            walk(inner, inner_id, inner_original, path + ".")

    for node_id in graph.node_ids():
        walk(graph, node_id, node_id, "")
    state = {}
    for key, value in flat_state.items():
        node_id, rest = key.split(".", 1)
        state[f"{where.get(node_id, node_id)}.{rest}"] = value
    return state
