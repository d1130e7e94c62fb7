"""The file formats: state_dict, safetensors, TorchScript and ONNX.

Each writer takes an :class:`ExportJob` (the compiled model in evaluation mode and a way to make
inputs for it), writes through a staged temporary file, checks what it wrote against the model
and returns what it measured. ONNX and TorchScript keep the batch dimension dynamic; both are
checked at batch sizes 1 and 7.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ExportError
from .files import staged_file

OPSET = 17
CHECK_BATCHES = (1, 7)
TOLERANCE = {"torchscript": 1e-5, "python": 1e-5, "onnx": 1e-4}


@dataclass
class ExportJob:
    """What the writers need: the model, its name, inputs on demand, the project around it."""

    name: str
    model: Any  # torch.fx.GraphModule in eval mode, weights loaded
    make_inputs: Callable[[int], tuple]  # batch size -> example inputs
    project: Any = None
    graph: Any = None
    shapes: Any = None
    others: dict = field(default_factory=dict)  # other models of the project (GAN partner)

    def node_of(self, attr: str) -> str:
        """The node id behind a submodule name."""
        return {a: n for n, a in self.model.node_attrs.items()}.get(attr, attr)


def example_inputs(model, graph, shapes, batch: int, seed: int = 0) -> tuple:
    """Seeded random inputs of ``batch`` samples; token ids where an Embedding reads them; for
    a graph model, ``batch`` random small graphs (see :func:`graph_example_inputs`)."""
    import torch

    gen = torch.Generator().manual_seed(seed * 1000 + batch)
    if is_graph_model(model, shapes):
        return graph_example_inputs(model, shapes, batch, gen)
    inputs = []
    for node_id in model.input_names:
        shape = (batch, *shapes.info[node_id].out_shapes["out"])
        vocab = vocabulary(graph, shapes, node_id)
        if vocab:
            inputs.append(torch.randint(0, vocab, shape, generator=gen).float())
        else:
            inputs.append(torch.randn(shape, generator=gen))
    return tuple(inputs)


def _input_level(model, shapes, node_id: str):
    from ..layers.spec import graph_level

    return graph_level(shapes.info[node_id].out_shapes["out"])


def is_graph_model(model, shapes) -> bool:
    """True when an Input reads a graph's fields (node features, edge_index, batch)."""
    return any(_input_level(model, shapes, n) for n in model.input_names)


def graph_example_inputs(model, shapes, graphs: int, gen) -> tuple:
    """``graphs`` random graphs of 3 to 8 nodes in one PyG-style batch: node features
    (N, F) for each node-feature Input, an int64 edge_index (2, E) of both directions of random
    edges within each graph, and the int64 graph id of every node for a per-node scalar Input
    (``batch``)."""
    import torch

    sizes = torch.randint(3, 9, (graphs,), generator=gen)
    starts = torch.cumsum(sizes, 0) - sizes
    edges = []
    for start, size in zip(starts.tolist(), sizes.tolist()):
        ring = torch.arange(size)
        extra = torch.randint(0, size, (2, size), generator=gen)
        pairs = torch.cat([torch.stack([ring, (ring + 1) % size]), extra], dim=1) + start
        edges.append(torch.cat([pairs, pairs.flip(0)], dim=1))
    edge_index = torch.cat(edges, dim=1)
    owner = torch.repeat_interleave(torch.arange(graphs), sizes)
    nodes = int(sizes.sum())
    inputs = []
    for node_id in model.input_names:
        shape = shapes.info[node_id].out_shapes["out"]
        level = _input_level(model, shapes, node_id)
        if level == "edges":
            inputs.append(edge_index)
        elif level == "nodes" and len(shape) == 0:
            inputs.append(owner)
        elif level == "nodes":
            inputs.append(torch.randn((nodes, *shape), generator=gen))
        else:
            inputs.append(torch.randn((graphs, *shape), generator=gen))
    return tuple(inputs)


def dynamic_axes(job) -> dict:
    """ONNX's dynamic axes: the batch of every input and output; for a graph model the node
    count of node features and ``batch``, the edge count of ``edge_index`` and the rows of
    every output (nodes or graphs)."""
    ins, outs = list(job.model.input_names), list(job.model.output_names)
    if job.shapes is None or not is_graph_model(job.model, job.shapes):
        return {n: {0: "batch"} for n in ins + outs}
    axes = {}
    for n in ins:
        level = _input_level(job.model, job.shapes, n)
        axes[n] = {1: "edges"} if level == "edges" else {0: "nodes" if level else "batch"}
    axes.update({n: {0: f"{n}_rows"} for n in outs})
    return axes


def vocabulary(graph, shapes, node_id: str) -> int | None:
    """The vocabulary an input of token ids indexes (the smallest of the embeddings it feeds,
    Embedding layers downstream or embeddings inside an Opaque node it feeds directly, as an
    imported model's lookup with computed positions is captured); None for a float input."""
    sizes = [shapes.info[n].params["num_embeddings"] for n in graph.descendants(node_id)
             if graph.node(n).type == "Embedding" and shapes.info[n].params]
    sizes += _opaque_vocabularies(graph, shapes, node_id)
    return min(sizes) if sizes else None


def _opaque_vocabularies(graph, shapes, node_id: str) -> list[int]:
    import torch.nn as nn

    from ..layers import ShapeError
    from ..layers.opaque import live_module

    found = []
    for edge in graph.out_edges(node_id):
        info = shapes.info.get(edge.dst)
        if graph.node(edge.dst).type != "Opaque" or info is None or not info.params:
            continue
        try:
            live = live_module(info.params)
        except (ShapeError, KeyError):
            continue
        found += [m.num_embeddings for m in live.modules() if isinstance(m, nn.Embedding)]
    return found


def outputs_of(result) -> list:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def max_difference(model_a, model_b, make_inputs, batches=CHECK_BATCHES) -> float:
    """Largest difference between two callables' outputs over the check batches: absolute, or
    relative to the reference's (``model_b``'s) largest finite value where that exceeds 1, so
    that float rounding in a model whose outputs run into the hundreds (a wide ResNet with its
    BatchNorm statistics) is not taken for a wrong result; infinite when an inf or a nan of one
    is not at the same place in the other."""
    import torch

    from ..errors import ExportError, LayerlabError, first_line

    worst = 0.0
    with torch.no_grad():
        for batch in batches:
            xs = make_inputs(batch)
            try:
                worst = max(worst, _diff(outputs_of(model_a(*xs)), outputs_of(model_b(*xs))))
            except LayerlabError:
                raise
            except Exception as exc:  # noqa: BLE001 - a model refusing its example inputs
                raise ExportError(f"the model does not run on example inputs of batch {batch} "
                                  f"({type(exc).__name__}: {first_line(exc)})") from None
    return worst


def _diff(a: list, b: list) -> float:
    import numpy as np

    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b):
        x, y = np.asarray(_numpy(x)), np.asarray(_numpy(y))
        if x.shape != y.shape:
            return float("inf")
        if not x.size:
            continue
        x, y = x.astype("float64"), y.astype("float64")
        finite = np.isfinite(y)
        special_x, special_y = x[~finite], y[~finite]  # inf and nan must sit where they sat
        if not np.array_equal(np.isfinite(x), finite) or not np.all(
                (special_x == special_y) | (np.isnan(special_x) & np.isnan(special_y))):
            return float("inf")
        if finite.any():
            scale = max(1.0, float(np.abs(y[finite]).max()))
            worst = max(worst, float(np.abs(x[finite] - y[finite]).max()) / scale)
    return worst


def _numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else t


def _check_close(fmt: str, diff: float, what: str) -> None:
    if not diff <= TOLERANCE[fmt]:
        raise ExportError(f"{fmt}: {what} does not reproduce the model's outputs (largest "
                          f"difference {diff:.3g}, allowed {TOLERANCE[fmt]:g})")


@contextmanager
def quiet():
    """Silence the deprecation chatter of torch.jit and the TorchScript-based ONNX exporter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def silenced():
    """Keep the ONNX exporters' printing (some of it from C++) off the user's terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    saved = _redirect_fds()
    try:
        with quiet(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            yield
    finally:
        _restore_fds(saved)
        logger.setLevel(level)


def _redirect_fds() -> list:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError, AttributeError):  # no real terminal (a windowed app)
        return []
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    return saved


def _restore_fds(saved: list) -> None:
    for fd, old in zip((1, 2), saved):
        os.dup2(old, fd)
        os.close(old)


# -- state_dict and safetensors ---------------------------------------------------------------
def plain_state_dict(model) -> dict:
    """Detached, contiguous CPU copies (frozen weights such as a Reservoir's included)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def write_state_dict(job: ExportJob, path) -> dict:
    import torch

    state = plain_state_dict(job.model)
    with staged_file(path) as tmp:
        torch.save(state, tmp)
        _same_tensors(state, torch.load(tmp, weights_only=True), "state_dict")
    return {"tensors": len(state)}


def write_safetensors(job: ExportJob, path) -> dict:
    from safetensors.torch import load_file, save_file

    state = plain_state_dict(job.model)
    with staged_file(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "model": job.name})
        _same_tensors(state, load_file(str(tmp)), "safetensors")
    return {"tensors": len(state)}


def _same_tensors(a: dict, b: dict, fmt: str) -> None:
    import torch

    if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
        raise ExportError(f"{fmt}: the written file does not read back equal")


# -- TorchScript --------------------------------------------------------------------------------
def write_torchscript(job: ExportJob, path) -> dict:
    import torch

    module, how = _script_or_trace(job)
    with staged_file(path) as tmp:
        with quiet():
            torch.jit.save(module, str(tmp))
            loaded = torch.jit.load(str(tmp))
        diff = max_difference(loaded, job.model, job.make_inputs)
        _check_close("torchscript", diff, "the saved TorchScript module")
    return {"method": how, "max_abs_diff": diff}


def _reloaded(module):
    """``module`` saved and loaded again: some scripted modules save but do not load (PyG's
    GCNConv: a type that differs between branches), and those must be traced instead."""
    import torch

    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def _script_or_trace(job: ExportJob):
    """``torch.jit.script`` when it reproduces the model; otherwise a checked trace."""
    import torch

    with quiet():
        try:
            scripted = _reloaded(torch.jit.script(job.model))
            if max_difference(scripted, job.model, job.make_inputs) <= TOLERANCE["torchscript"]:
                return scripted, "script"
            reason = "the scripted module gives other outputs"
        except Exception as exc:  # scripting fails on Python it cannot compile
            reason = _first_line(exc)
        try:
            traced = torch.jit.trace(job.model, job.make_inputs(2), check_trace=False)
        except Exception as exc:
            raise ExportError(f"torchscript: the model can be neither scripted ({reason}) nor "
                              f"traced ({_first_line(exc)})") from None
    try:
        diff = max_difference(traced, job.model, job.make_inputs)
    except Exception as exc:  # a trace that fixed the batch size fails on another one
        diff, reason = float("inf"), f"{reason}; the trace fails: {_first_line(exc)}"
    if not diff <= TOLERANCE["torchscript"]:
        raise ExportError(f"torchscript: the model cannot be scripted ({reason}), and its trace "
                          f"does not work for batch sizes {' and '.join(map(str, CHECK_BATCHES))} "
                          "(the trace fixed the batch size); make the layer scriptable or "
                          "batch-size independent")
    return traced, "trace"


# -- ONNX ---------------------------------------------------------------------------------------
def write_onnx(job: ExportJob, path) -> dict:
    import onnx

    with staged_file(path) as tmp:
        exporter = _export_onnx(job, tmp)
        try:
            onnx.checker.check_model(str(tmp))
        except Exception as exc:
            raise ExportError(f"onnx: the exported file fails onnx.checker: "
                              f"{_first_line(exc)}") from None
        diff = _onnxruntime_difference(job, tmp)
        _check_close("onnx", diff, "onnxruntime running the exported file")
    return {"opset": OPSET, "exporter": exporter, "max_abs_diff": diff}


def _onnx_names(job: ExportJob) -> tuple[list[str], list[str]]:
    return list(job.model.input_names), list(job.model.output_names)


def _export_onnx(job: ExportJob, tmp) -> str:
    """Export with the TorchScript-based exporter (fast and reliable here), dynamo as fallback."""
    import torch

    ins, outs = _onnx_names(job)
    example = job.make_inputs(2)
    with silenced():
        try:
            torch.onnx.export(job.model, example, str(tmp), input_names=ins, output_names=outs,
                              opset_version=OPSET, dynamo=False, dynamic_axes=dynamic_axes(job))
            return "torchscript"
        except Exception as exc:
            first = exc
        try:
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(job.model, example, str(tmp), input_names=ins, output_names=outs,
                              opset_version=max(OPSET, 18), dynamo=True, external_data=False,
                              dynamic_shapes=tuple({0: batch} for _ in ins), verbose=False)
            return "dynamo"
        except Exception:
            pass
        raise _onnx_failure(job, example, first)


def _onnx_failure(job: ExportJob, example, exc: Exception) -> ExportError:
    node, reason = _onnx_culprit(job, example)
    if node is None:
        return ExportError(f"onnx: the model cannot be exported: {_first_line(exc)}")
    return ExportError(f"{node}: ONNX cannot express this layer ({reason})")


def _onnx_culprit(job: ExportJob, example) -> tuple[str | None, str]:
    """Export each submodule alone with the inputs it saw; the first that fails is named."""
    import torch

    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_pre_hook(_recorder(seen, name))
             for name, m in job.model.named_children()]
    try:
        with torch.no_grad():
            job.model(*example)
    finally:
        for h in hooks:
            h.remove()
    for name, args in seen.items():
        try:
            torch.onnx.export(job.model.get_submodule(name), args, io.BytesIO(),
                              opset_version=OPSET, dynamo=False)
        except Exception as exc:
            return job.node_of(name), _first_line(exc)
    return None, ""


def _recorder(seen: dict, name: str):
    def hook(module, args):
        seen.setdefault(name, args)
    return hook


def _onnxruntime_difference(job: ExportJob, path) -> float:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("onnx: onnxruntime, which checks the exported file, is not installed "
                          "(pip install onnxruntime)") from None

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnx: onnxruntime cannot load the exported file: "
                          f"{_first_line(exc)}") from None
    names = [i.name for i in session.get_inputs()]

    def run(*xs):
        return session.run(None, {n: x.numpy() for n, x in zip(names, xs)})

    return max_difference(run, job.model, job.make_inputs)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
