"""Stretches of a traced model where the batch is not the first dimension, kept as one operation.

Every node of a Layerlab graph keeps the batch first. Real models move it for a while: attention
written out by hand (or as an ONNX file spells it) transposes to (length, batch, features), runs
its matmuls and softmax there and transposes back; a sequence-first LSTM sits between two
``transpose(0, 1)``. :func:`batch_regions` finds each such stretch by running the traced module
on two batch sizes: a value whose size follows the batch somewhere other than its first
dimension is *inside*; the stretch is the connected inside values and the one operation that
brings the batch back to the front. The importer captures each stretch as one Opaque operation
(:func:`engine.importer.opaque.capture`), which keeps the batch first outside.

A stretch that hands more than one value to the rest of the model (or reaches the model's output)
is left alone: its operations import one by one and the check names the first that moves the
batch.
"""
from __future__ import annotations

BATCHES = (2, 3)
MAX_GROWTH = 500  # rounds of taking in a stretch's next operations before giving up


def probe(traced, input_shapes: dict):
    """Run the traced module at two batch sizes: ({node: (shape at batch 2, at batch 3)},
    names of nodes giving tuples, nodes giving tensors that are not floating point), or None
    when the input shapes are unknown or it does not run on random inputs."""
    if not input_shapes or not _worth_probing(traced):
        return None
    return _sizes(traced, input_shapes)


# operations that can move the batch or make a mask: without one, there is nothing to find
# (a ResNet is not run twice for nothing)
_MOVERS = {"transpose", "permute", "view", "reshape", "t", "movedim", "moveaxis", "swapaxes",
           "swapdims", "unsqueeze", "squeeze", "expand", "repeat", "einsum", "matmul", "bmm",
           "unflatten", "eq", "ne", "lt", "gt", "le", "ge", "isnan", "isinf", "logical_not",
           "logical_and", "logical_or", "where", "masked_fill", "arange", "argmax", "argmin",
           "long", "int", "bool", "to", "type", "tril", "triu", "cumsum", "getitem"}


def _worth_probing(traced) -> bool:
    for node in traced.graph.nodes:
        if node.op == "call_method" and node.target in _MOVERS:
            return True
        if node.op == "call_function" and getattr(node.target, "__name__", "") in _MOVERS:
            return True
        if node.op == "call_module" and type(traced.get_submodule(node.target)).__name__ in (
                "GraphModule", "Captured"):
            return True
    return False


def batch_regions(traced, input_shapes: dict, probed=None) -> dict:
    """{exit node: [the stretch's nodes in graph order, the exit last]}; empty when the input
    shapes are unknown or the module does not run on random inputs."""
    found = probed if probed is not None else probe(traced, input_shapes)
    if found is None:
        return {}
    sizes, tupled, _ = found
    # an item of a module's tuple result (an LSTM's (h_n, c_n), then h_n) is the importer's to
    # map: never in a stretch; the items of a tensor operation's tuple (``q, k, v =
    # qkv.unbind(0)``) may be
    excluded: set = set()
    for n in traced.graph.nodes:
        if any(a.name in tupled and (a.op == "call_module" or a in excluded)
               for a in n.all_input_nodes):
            excluded.add(n)
    inside = {n for n, (a, b) in sizes.items() if _moved(a, b)} - excluded
    if not inside:
        return {}
    order = {n: i for i, n in enumerate(traced.graph.nodes)}
    regions, seen = {}, set()
    for start in sorted(inside, key=order.__getitem__):
        if start in seen:
            continue
        members = _component(start, inside)
        exits = _exits(members)
        for _ in range(MAX_GROWTH):  # take in what the stretch hands on until one value leaves
            # (one tensor: a tuple, ``qkv.unbind(0)``, is taken in with the items read of it)
            if (len(exits) <= 1 and not any(e.name in tupled for e in exits)) or \
                    any(e.op == "output" for e in exits):
                break
            # values that are no tensor (sizes, tuples, checks) first: the stretch's way out
            # is a tensor, which is taken in only when no other way is left
            others = [e for e in exits if e not in sizes] or exits
            for node in others:
                members |= _component(node, inside | {node})
            exits = _exits(members)
        seen |= members
        if len(exits) != 1 or (members | exits) & excluded:
            continue
        (exit_node,) = exits
        if exit_node.op not in ("call_function", "call_method", "call_module") or \
                exit_node in inside or exit_node not in sizes:
            continue
        regions[exit_node] = sorted(members | {exit_node}, key=order.__getitem__)
    return regions


def _sizes(traced, input_shapes: dict):
    """({node: (output shape at batch 2, at batch 3)} for the nodes giving one tensor, the
    names of the nodes giving a tuple of tensors), or None when the module does not run."""
    import torch

    names = [n.name for n in traced.graph.nodes if n.op == "placeholder"]
    if any(name not in input_shapes for name in names):
        return None
    shapes, tupled, nonfloat = [], set(), set()
    for batch in BATCHES:
        found: dict = {}
        interpreter = _recorder(traced, found, tupled, nonfloat)  # eval mode, no_grad below
        for kind in ("float", "int"):  # token ids feed an Embedding: whole numbers next
            gen = torch.Generator().manual_seed(0)
            args = [torch.randn((batch, *input_shapes[n]), generator=gen) if kind == "float"
                    else torch.randint(0, 2, (batch, *input_shapes[n]), generator=gen)
                    for n in names]
            try:
                with torch.no_grad():
                    interpreter.run(*args)
                break
            except Exception:  # noqa: BLE001 - data-dependent code, odd inputs: no stretches
                found.clear()
                tupled.clear()
                nonfloat.clear()
        else:
            return None
        shapes.append(found)
    first, second = shapes
    return {n: (first[n.name], second[n.name]) for n in traced.graph.nodes
            if n.name in first and n.name in second}, tupled, \
        {n for n in traced.graph.nodes if n.name in nonfloat}


# elementwise operations that a catalog layer (Add, Multiply, ...) stands for only when their
# operands have one shape
_ELEMENTWISE = {"add", "sub", "mul", "truediv", "div", "maximum", "minimum", "__add__",
                "__sub__", "__mul__", "__truediv__"}


def broadcasts(traced, input_shapes: dict, probed=None) -> set[str]:
    """Names of the elementwise operations whose tensor operands differ in shape when the module
    runs (squeeze-excitation's ``scale * x``: broadcasting, no Add or Multiply layer), found in
    one run; empty when the input shapes are unknown or the module does not run."""
    import torch

    names = [n.name for n in traced.graph.nodes if n.op == "placeholder"]
    if not input_shapes or any(name not in input_shapes for name in names):
        return set()
    if probed is not None:
        shapes = {n.name: a for n, (a, _) in probed[0].items()}
    else:
        shapes = {}
        gen = torch.Generator().manual_seed(0)
        args = [torch.randn((BATCHES[0], *input_shapes[n]), generator=gen) for n in names]
        try:
            with torch.no_grad():
                _recorder(traced, shapes, set(), set()).run(*args)
        except Exception:  # noqa: BLE001 - the rebuilds find what a run cannot
            return set()
    for name in names:
        shapes[name] = (BATCHES[0], *input_shapes[name])
    found = set()
    for node in traced.graph.nodes:
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
        if node.op not in ("call_function", "call_method") or name not in _ELEMENTWISE:
            continue
        operands = {shapes.get(a.name) for a in node.args if hasattr(a, "name")}
        if len(operands) > 1 and None not in operands:
            found.add(node.name)
    return found


def _recorder(module, found: dict, tupled: set, nonfloat: set):
    """An fx Interpreter of ``module`` that notes each node's output shape, the nodes giving
    tuples and those giving tensors that are not floating point."""
    import torch
    import torch.fx as fx

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if isinstance(result, torch.Tensor) and n.op != "placeholder":
                found[n.name] = tuple(result.shape)
                if not result.is_floating_point() and n.op != "get_attr":
                    nonfloat.add(n.name)
            elif isinstance(result, (tuple, list)) and any(
                    isinstance(r, (torch.Tensor, tuple, list)) for r in result):
                tupled.add(n.name)
            return result

    return Recorder(module)


def _moved(a: tuple, b: tuple) -> bool:
    """The batch (2, then 3) shows in the shape, but not as its first dimension alone."""
    if len(a) != len(b) or a == b:
        return False
    differs = [i for i, (p, q) in enumerate(zip(a, b)) if p != q]
    return differs != [0] or (a[0], b[0]) != BATCHES


def _component(start, inside: set) -> set:
    members, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in members:
            continue
        members.add(node)
        todo += [u for u in node.users if u in inside]
        todo += [a for a in node.all_input_nodes if a in inside]
    return members


def _exits(members: set) -> set:
    return {u for m in members for u in m.users if u not in members}
