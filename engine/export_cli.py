"""``python main.py export PROJECT --weights FILE --format FORMAT --out PATH [--model NAME]``.

Exit codes: 0 written; 1 the project, the weights or the target has a problem (one line each on
stderr, naming the node, parameter or file); 2 a file cannot be read or the command is misused
(no weights and no ``--untrained``).
"""
from __future__ import annotations

import sys


def add_parser(sub, command: str) -> None:
    from .export import DESCRIPTIONS, FORMATS

    p = sub.add_parser(command, help="export a trained model (onnx, torchscript, safetensors, "
                       "state_dict, python)",
                       description="Export one model of a project with its trained weights. "
                       + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()) + ".")
    p.add_argument("project")
    p.add_argument("--weights", help="the weights.pt that `train` wrote ({model: state_dict})")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="file to write (python: a folder)")
    p.add_argument("--model", help="which model of the project (a GAN: generator or "
                   "discriminator; default: the first)")
    p.add_argument("--untrained", action="store_true",
                   help="export freshly initialised weights (no --weights)")


def run(args) -> int:
    from .cli import load_or_exit
    from .export import NO_WEIGHTS, WeightsFileError, export_model

    if not args.weights and not args.untrained:
        print(NO_WEIGHTS, file=sys.stderr)
        return 2
    project, code = load_or_exit(args.project)
    if project is None:
        return code
    try:
        result = export_model(project, args.format, args.out, weights=args.weights,
                              model=args.model, untrained=args.untrained)
    except WeightsFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(result.summary())
    return 0
