"""Project files: the public JSON format, loaded and saved without losing unknown keys.

Every malformed file raises :class:`ProjectError`, whose problems name the file and the field or
node at fault. Saving is atomic: a temporary file in the same folder, then a rename.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LayerlabError
from .graph import Edge, Graph

FORMAT = "layerlab-project"
VERSION = 1
SUFFIX = ".layerlab.json"
_NODE_KEYS = ("id", "type", "params", "pos")
_EDGE_KEYS = ("from", "to", "from_port", "to_port")


class ProjectError(LayerlabError):
    """A project file that cannot be used. ``problems`` is a list of ``(where, message)``:
    ``where`` is a node id or a field path such as ``models.model.edges[2]``.
    ``unreadable`` is true when the file is not a project at all (bad JSON, wrong format)."""

    def __init__(self, source: str, problems: list[tuple[str, str]], unreadable: bool = False):
        self.source = source
        self.problems = problems
        self.unreadable = unreadable
        super().__init__("\n".join(f"{source}: {w}: {m}" if w else f"{source}: {m}"
                                   for w, m in problems))


@dataclass
class Project:
    """A project: named models (graphs), the dataset block, the training block, unknown keys."""

    name: str = "Untitled"
    models: dict[str, Graph] = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    path: Path | None = None
    # composite block definitions (engine.blocks.BlockDef by name), shared by every model
    blocks: dict = field(default_factory=dict)
    # the run history's name when it is not the file's (a lesson's projects share one;
    # engine.runs), not saved in the file
    runs_stem: str | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def environment(self) -> dict | None:
        """The ``environment`` block of a reinforcement-learning project (kept in ``extra``)."""
        return self.extra.get("environment") or None

    def input_shapes(self) -> dict:
        """Per-sample shapes of the dataset's fields (``{}`` if there is no usable dataset);
        for a project with an ``environment``, ``{"x": observation shape}``."""
        from .data import dataset_shapes

        if self.environment:
            from .data.environment import block_params, environment_shapes

            return environment_shapes(block_params(self.environment), self.base_dir)
        if not self.dataset:
            return {}
        return dataset_shapes(self.dataset, base_dir=self.base_dir)


# -- loading -------------------------------------------------------------------------------
def load_project(path: str | os.PathLike) -> Project:
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(source, [("", "no such file")], unreadable=True) from None
    except IsADirectoryError:
        raise ProjectError(source, [("", "is a folder, not a project file")], True) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(source, [("", f"cannot be read ({exc})")], unreadable=True) from None
    project = loads_project(text, source)
    project.path = path
    return project


def loads_project(text: str, source: str = "<project>") -> Project:
    if not text.strip():
        raise ProjectError(source, [("", "the file is empty")], unreadable=True)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(source, [("", f"not valid JSON: {exc.msg} at line {exc.lineno}, "
                                     f"column {exc.colno}")], unreadable=True) from None
    except RecursionError:
        raise ProjectError(source, [("", "not valid JSON: nested too deeply")], True) from None
    return parse_project(data, source)


def parse_project(data, source: str = "<project>") -> Project:
    """Build a :class:`Project` from already-decoded JSON data."""
    if not isinstance(data, dict):
        raise ProjectError(source, [("", f"a project is a JSON object; got {_kind(data)}")], True)
    if data.get("format") != FORMAT:
        raise ProjectError(source, [("format", f"must be \"{FORMAT}\"; got "
                                     f"{json.dumps(data.get('format'))[:60]}")], True)
    version = data.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(source, [("version", f"must be a whole number; got {version!r}")],
                           True)
    if version > VERSION:
        raise ProjectError(source, [("version", f"the file is version {version}, made by a "
                                     f"newer Layerlab; this one reads version {VERSION}")], True)
    problems: list[tuple[str, str]] = []
    project = Project(extra={k: v for k, v in data.items() if k not in
                             ("format", "version", "name", "models", "dataset", "training",
                              "blocks")})
    project.name = _get(data, "name", str, "Untitled", "name", problems)
    project.dataset = _get(data, "dataset", dict, {}, "dataset", problems)
    project.training = _get(data, "training", dict, {}, "training", problems)
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        problems.append(("models", "must be an object with at least one model"))
        raise ProjectError(source, problems)
    if "blocks" in data:
        from .blocks import parse_blocks

        parse_blocks(data["blocks"], problems, project.blocks)
    for name, model in models.items():
        graph = _parse_model(name, model, problems, library=project.blocks)
        if graph is not None:
            graph.blocks = project.blocks
            project.models[name] = graph
    if problems:
        raise ProjectError(source, problems)
    return project


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a text", bool: "true/false",
            type(None): "null"}.get(type(value), "a number")


def _get(obj: dict, key: str, typ, default, where: str, problems: list):
    value = obj.get(key, default)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        problems.append((where, f"must be {_kind(typ())}; got {_kind(value)}"))
        return default
    return value


def _parse_model(name: str, model, problems: list, where: str | None = None,
                 library: dict | None = None) -> Graph | None:
    """``library``: the project's blocks read so far (a Block node's output ports come from its
    definition)."""
    where = where or f"models.{name}"
    if not isinstance(model, dict):
        problems.append((where, f"must be an object; got {_kind(model)}"))
        return None
    nodes = _get(model, "nodes", list, None, f"{where}.nodes", problems)
    edges = _get(model, "edges", list, [], f"{where}.edges", problems)
    if nodes is None:
        return None
    graph = Graph(name)
    if library is not None:
        graph.blocks = library
    graph.extra = {k: v for k, v in model.items() if k not in ("nodes", "edges")}
    for i, node in enumerate(nodes):
        _parse_node(graph, node, f"{where}.nodes[{i}]", problems)
    for i, edge in enumerate(edges):
        _parse_edge(graph, edge, f"{where}.edges[{i}]", problems)
    return graph


def _parse_node(graph: Graph, node, where: str, problems: list) -> None:
    if not isinstance(node, dict):
        problems.append((where, f"a node must be an object; got {_kind(node)}"))
        return
    node_id, type_name = node.get("id"), node.get("type")
    if not isinstance(node_id, str) or not node_id.strip():
        problems.append((where, f"a node needs an \"id\" text; got {json.dumps(node_id)}"))
        return
    if not isinstance(type_name, str):
        problems.append((node_id, f"needs a \"type\" text; got {json.dumps(type_name)}"))
        return
    params = node.get("params", {})
    if not isinstance(params, dict):
        problems.append((node_id, f"\"params\" must be an object; got {_kind(params)}"))
        return
    pos = node.get("pos")
    if pos is not None and not (isinstance(pos, list) and len(pos) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos)):
        problems.append((node_id, f"\"pos\" must be two numbers [x, y]; got {json.dumps(pos)}"))
        pos = None
    extra = {k: v for k, v in node.items() if k not in _NODE_KEYS}
    try:
        graph.add_node(type_name, node_id, params, pos, extra)
    except LayerlabError as exc:
        problems.append((node_id, str(exc)))


def _parse_edge(graph: Graph, edge, where: str, problems: list) -> None:
    if not isinstance(edge, dict):
        problems.append((where, f"an edge must be an object; got {_kind(edge)}"))
        return
    ends = [edge.get(k) for k in _EDGE_KEYS]
    src, dst = ends[0], ends[1]
    ports = [edge.get("from_port", "out"), edge.get("to_port", "in")]
    if not all(isinstance(v, str) for v in [src, dst] + ports):
        problems.append((where, "an edge needs \"from\" and \"to\" node ids (and text ports); "
                         f"got {json.dumps(edge)[:80]}"))
        return
    for end in (src, dst):
        if end not in graph:
            if not any(w == end for w, _ in problems):  # the node's own problem says it all
                problems.append((end, f"{where} ({src} -> {dst}) refers to '{end}', which is "
                                 f"not a node of model '{graph.name}'"))
            return
    extra = {k: v for k, v in edge.items() if k not in _EDGE_KEYS}
    try:
        graph.connect(src, dst, ports[0], ports[1], extra=extra)
    except LayerlabError as exc:
        problems.append((dst, str(exc)))


# -- saving --------------------------------------------------------------------------------
def graph_to_dict(graph: Graph) -> dict:
    nodes = []
    for node in graph.nodes():
        d = {"id": node.id, "type": node.type}
        if node.params:
            d["params"] = node.params
        if node.pos is not None:
            d["pos"] = list(node.pos)
        d.update(node.extra)
        nodes.append(d)
    edges = [_edge_to_dict(graph, e) for e in graph.edges()]
    return {"nodes": nodes, "edges": edges, **graph.extra}


def _edge_to_dict(graph: Graph, edge: Edge) -> dict:
    d = {"from": edge.src}
    if edge.src_port != "out":
        d["from_port"] = edge.src_port
    d["to"] = edge.dst
    if edge.dst_port != "in":
        d["to_port"] = edge.dst_port
    d.update(graph.edge_extra(edge))
    return d


def project_to_dict(project: Project) -> dict:
    d = {"format": FORMAT, "version": VERSION, "name": project.name,
         "models": {name: graph_to_dict(g) for name, g in project.models.items()}}
    if project.blocks:
        from .blocks import blocks_to_dict

        d["blocks"] = blocks_to_dict(project.blocks)
    if project.dataset:
        d["dataset"] = project.dataset
    if project.training:
        d["training"] = project.training
    d.update(project.extra)
    return d


def dumps_project(project: Project) -> str:
    """The file's text: readable and diff-friendly (a node or an edge per line)."""
    return _dumps(project_to_dict(project), 0) + "\n"


def _dumps(value, depth: int, width: int = 100) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + 2 * depth <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, depth + 1, width)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [inner + _dumps(v, depth + 1, width) for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


def save_project(project: Project, path: str | os.PathLike | None = None) -> Path:
    """Write the project atomically; the project's path becomes ``path``."""
    path = Path(path) if path is not None else project.path
    if path is None:
        raise ValueError("save_project needs a path for a project that was never saved")
    atomic_write(path, dumps_project(project).encode("utf-8"))
    project.path = path
    return path


def atomic_write(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.
    ``fsync=False`` skips waiting for the disk (safe against a crashed process, not against a
    lost disk)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ProjectError(str(path), [("", f"cannot be written ({exc.strerror or exc})")]) \
            from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ProjectError(str(path), [("", f"cannot be written ({exc.strerror or exc})")]) \
                from None
        raise
