"""``python main.py explain PROJECT --weights W (--sample I | --input FILE) --method
ig|saliency|gradcam|occlusion|smoothgrad|shap [--node ID] [--target C] [--baseline
zeros|mean|blurred] [--model NAME] --out PNG|JSON``.

Explains one prediction of a trained model with Captum (see :mod:`engine.explain`). The sample
is validation sample ``I`` of the project's dataset (``--sample``), or a file (``--input``):
``.npy``, ``.json`` (a nested list) of the Input's per-sample shape, or an image (``.png``,
``.jpg``) converted to it (grey or RGB, resized, scaled to 0..1). ``--out`` ending in ``.png``
writes the picture the window draws; ``.json`` the raw attribution: ``{"method", "target",
"node", "output", "prediction", "shape", "attribution"}``. Prints one JSON line with the
target, the prediction and where the file went.
"""
from __future__ import annotations

import json
from pathlib import Path

from .cli import load_or_exit


def add_parser(sub, command: str) -> None:
    from .explain import BASELINES, METHODS

    p = sub.add_parser("explain", help="explain one prediction with Captum attributions")
    p.add_argument("project")
    p.add_argument("--weights", required=True, help="the weights.pt that `train` wrote")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sample", type=int, metavar="I", help="validation sample I")
    src.add_argument("--input", metavar="FILE", help=".npy, .json or an image file")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--node", help="gradcam: the convolutional node (default: the last one)")
    p.add_argument("--target", type=int, help="the class (output) to explain (default: the "
                   "predicted one)")
    p.add_argument("--baseline", choices=BASELINES, default="zeros", help="ig's baseline")
    p.add_argument("--model", help="which model of the project (default: the first)")
    p.add_argument("--out", required=True, help="a .png picture or a .json array")


def run(args) -> int:
    import numpy as np
    import torch

    from .data.dataset import load_project_source
    from .explain import ExplainError, attribute, render, save_png
    from .export.build import build_job
    from .project import atomic_write

    project, code = load_or_exit(args.project)
    if project is None:
        return code
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".json"):
        raise ExplainError(f"--out: {out.name} must end in .png (a picture) or .json (the "
                           "raw attribution)")
    name = args.model or next(iter(project.models))
    if name not in project.models:
        raise ExplainError(f"--model: no model {name!r} (models: {', '.join(project.models)})")
    job = build_job(project, name, args.weights)
    model = job.model
    if len(model.input_names) != 1:
        raise ExplainError(f"explain: model {name!r} has {len(model.input_names)} inputs; "
                           "explain works on models with one Input")
    input_id = model.input_names[0]
    shape = tuple(job.shapes.info[input_id].out_shapes["out"])
    key = project.models[name].node(input_id).params.get("key", "x")
    data = load_project_source(project, seed=project.training.get("seed", 0) or 0)
    try:
        train_inputs = data.head(key, 2000, "train")
        if args.sample is not None:
            if not 0 <= args.sample < data.val_size:
                raise ExplainError(f"--sample: the validation split has {data.val_size} "
                                   f"samples (0..{data.val_size - 1}); got {args.sample}")
            x = data.item(args.sample, "val")[key].float()
        else:
            x = torch.from_numpy(read_input(Path(args.input), shape)).unsqueeze(0)
    finally:
        data.close()
    result = attribute(model, project.models[name], x.cpu(), args.method, target=args.target,
                       node=args.node, baseline=args.baseline,
                       train_inputs=None if train_inputs is None else train_inputs.cpu())
    output = result["output"]
    prediction = int(np.argmax(output)) if output.size > 1 else float(output[0])
    if out.suffix.lower() == ".png":
        save_png(out, render(x[0].cpu().numpy(), result["attribution"]))
    else:
        body = {"method": result["method"], "target": result["target"], "node": result["node"],
                "baseline": result["baseline"], "output": output.tolist(),
                "prediction": prediction, "shape": list(result["attribution"].shape),
                "attribution": result["attribution"].tolist()}
        atomic_write(out, (json.dumps(body) + "\n").encode("utf-8"))
    print(json.dumps({"event": "explained", "method": args.method, "target": result["target"],
                      "prediction": prediction, "node": result["node"], "out": str(out)}))
    return 0


def read_input(path: Path, shape: tuple):
    """A per-sample array of ``shape`` from a .npy, .json or image file (float32)."""
    import numpy as np

    from .explain import ExplainError

    if not path.is_file():
        raise ExplainError(f"--input: {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".json":
            array = np.asarray(json.loads(path.read_text(encoding="utf-8")), dtype=np.float32)
        elif suffix in (".png", ".jpg", ".jpeg", ".bmp"):
            array = _image(path, shape)
        else:
            raise ExplainError(f"--input: {path.name}: use .npy, .json or an image")
    except (ValueError, OSError) as exc:
        raise ExplainError(f"--input: {path.name}: cannot be read ({exc})") from None
    array = np.asarray(array, dtype=np.float32)
    if tuple(array.shape) != tuple(shape):
        raise ExplainError(f"--input: {path.name} holds shape {tuple(array.shape)}; the model's "
                           f"Input takes {tuple(shape)}")
    return array


def _image(path: Path, shape: tuple):
    import numpy as np
    from PIL import Image

    from .explain import ExplainError

    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ExplainError(f"--input: an image needs a model whose Input is (1 or 3, H, W); "
                           f"it takes {tuple(shape)}")
    img = Image.open(path).convert("L" if shape[0] == 1 else "RGB").resize((shape[2], shape[1]))
    array = np.asarray(img, dtype=np.float32) / 255.0
    return array[None] if shape[0] == 1 else array.transpose(2, 0, 1)
