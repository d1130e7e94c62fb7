"""Activation functions, the perceptron's Step among them."""
from __future__ import annotations

from .rules import elementwise_macs, one, same_shape, torch_dim
from .spec import CHOICE, FLOAT, INT, LayerSpec, ModuleCall, Param


_ELEMENTWISE = "any shape → the same shape (applied to every element on its own)."


def _act(type_, doc, cls=None, params=(), kwargs=lambda p: {}, infer=same_shape, keys=(),
         shape_doc=_ELEMENTWISE):
    return LayerSpec(type_, "Activations", doc, params=params, infer=infer,
                     stats=elementwise_macs, key_params=keys, shape_doc=shape_doc,
                     module=lambda p, ins: ModuleCall(cls or f"nn.{type_}", kwargs(p)))


def _softmax_infer(p, ins):
    torch_dim("Softmax", p["dim"], one(ins))
    return same_shape(p, ins)


SPECS = [
    _act("ReLU", "max(0, x): the default hidden activation."),
    _act("LeakyReLU", "x for x > 0, negative_slope·x otherwise; never fully dead.",
         params=(Param("negative_slope", FLOAT, 0.01, "Slope for negative inputs.", min=0.0),),
         kwargs=lambda p: {"negative_slope": p["negative_slope"]}, keys=("negative_slope",)),
    _act("ELU", "x for x > 0, alpha·(eˣ − 1) otherwise; smooth around zero.",
         params=(Param("alpha", FLOAT, 1.0, "Saturation value for negative inputs.", min=0.0),),
         kwargs=lambda p: {"alpha": p["alpha"]}, keys=("alpha",)),
    _act("GELU", "x·Φ(x): the Transformer's smooth ReLU.",
         params=(Param("approximate", CHOICE, "none", "Exact or tanh approximation.",
                       choices=("none", "tanh")),),
         kwargs=lambda p: {"approximate": p["approximate"]}),
    _act("SiLU", "x·sigmoid(x) (swish)."),
    _act("Sigmoid", "1 / (1 + e⁻ˣ): squashes to (0, 1), for probabilities."),
    _act("Tanh", "Hyperbolic tangent: squashes to (−1, 1)."),
    _act("Softmax", "Turns scores into probabilities that sum to 1 along dim.",
         params=(Param("dim", INT, -1, "Dimension that sums to 1 (0 is the batch)."),),
         kwargs=lambda p: {"dim": p["dim"]}, infer=_softmax_infer,
         shape_doc="any shape → the same shape; dim must name one of its axes (torch "
                   "numbering: 0 is the batch, so 1 is the first axis; negative counts from the "
                   "end)."),
    _act("Step", "Heaviside threshold (1 if x > 0 else 0), the perceptron's activation; "
         "its gradient passes straight through.", cls="Step"),
]
