"""The Block layer: a node that runs one of the project's block definitions (:mod:`engine.blocks`).

Shape inference hands a Block node the project's blocks as the private parameter ``_library``;
everything else (instantiating the definition, its shapes, errors, statistics, the submodule)
lives in :mod:`engine.blocks`. Nothing here imports torch at module level.
"""
from __future__ import annotations

from dataclasses import dataclass

from .spec import STR, InPort, LayerSpec, ModuleCall, Param, Stats


def _inner(p, ins):
    from ..blocks import inner

    return inner(p, ins)


def _infer(p, ins):
    return dict(_inner(p, ins).out_shapes)


def _stats(p, ins, outs) -> Stats:
    found = _inner(p, ins)
    params = trainable = macs = 0
    for info in found.shapes.info.values():
        params += info.stats.params
        trainable += info.stats.trainable
        macs += info.stats.macs
    return Stats(params, trainable, macs)


@dataclass(frozen=True)
class BlockCall(ModuleCall):
    """Builds a Block node's submodule: its definition compiled on its own."""

    found: object = None  # engine.blocks.Inner

    def build(self):
        from ..compiler import compile_model

        found = self.found
        module = compile_model(found.graph, found.shapes)
        order = found.block.outputs
        if len(order) > 1 and module.output_names != order:  # return them in port order
            (output,) = [n for n in module.graph.nodes if n.op == "output"]
            by_name = dict(zip(module.output_names, output.args[0]))
            output.args = (tuple(by_name[name] for name in order),)
            module.recompile()
            module.output_names = list(order)
        return module

    def code(self) -> str:  # the Python export writes a class per block (engine.export.pycode)
        raise ValueError(f"block {self.found.block.name} is written as its own class")


def _module(p, ins) -> BlockCall:
    found = _inner(p, ins)
    return BlockCall(f"block:{found.block.name}", dict(found.args), found)


def _emit(g, name, args, p):
    import operator

    from ..blocks import block_ports

    call = g.call_module(name, tuple(args.get("in", ())))
    ports = block_ports(p.get("_library") or {}, p) or ("out",)
    if len(ports) == 1:
        return {ports[0]: call}
    return {port: g.call_function(operator.getitem, (call, i)) for i, port in enumerate(ports)}


SPECS = [
    LayerSpec(
        "Block", "Core", "A composite block: a named group of layers defined once in the "
        "project and used by any number of Block nodes; editing the definition changes every "
        "one of them.",
        params=(Param("block", STR, doc="The name of the block definition this node runs.",
                      starter="residual_basic"),),
        inputs=(InPort("in", multi=True),), infer=_infer, stats=_stats, module=_module,
        emit=_emit, key_params=("block",), in_palette=False,
        extra={"open_params": True},
        shape_doc="inputs, in wire order, → the block's Input nodes; out → what reaches the "
                  "block's Output (a block with several Outputs has one port per Output, "
                  "named by its id), inferred through the block's own layers (an error inside "
                  "names the block and the layer). Parameters other than block set the "
                  "block's exposed parameters (\"$name\" values inside it)."),
]
