"""Concept notes: when to use each layer and what its main parameter does, in plain words.

Written once here; the layer reference (``docs/layers``, Help → Layer Reference) prints them
under each layer's description and the inspector shows the first sentence under the layer's doc
line (its Reference button opens the rest). ``NOTES[type] = (when, main parameter or None,
its effect)``.
"""
from __future__ import annotations

NOTES: dict[str, tuple[str, str | None, str]] = {
    "Input": ("Every model starts here: one Input per field of the dataset it reads.", "shape",
              "Leave it empty to take the dataset's shape; set it only when there is no dataset "
              "(an imported model, a layer to try)."),
    "Output": ("Every model ends here: what reaches it is the prediction the loss compares "
               "with the target.", None, "It has no parameters; a model may have several."),
    "Linear": ("The basic learned layer: every output is a weighted sum of all inputs. Use it "
               "for tabular data, at the end of a CNN or RNN (the classifier head), and in "
               "MLPs between activations.", "out_features",
               "How many outputs, so how much the layer can represent; the last Linear's "
               "out_features is the number of classes (or values) to predict."),
    "Flatten": ("Between image-shaped features and a Linear layer: it lays C×H×W out as one "
                "vector.", "start_dim", "Which dimension flattening starts at; 1 keeps the "
                "batch and flattens everything else."),
    "Reshape": ("When data must change shape without changing values: a 784-vector into "
                "1×28×28, a series into steps×1.", "shape",
                "The new per-sample shape; one entry may be -1 to take what is left."),
    "Dropout": ("Against overfitting: during training it zeroes a random part of its input, so "
                "no unit can rely on another; it does nothing at evaluation time.", "p",
                "The fraction dropped: 0.1–0.5 is usual; too high and the model cannot learn."),
    "Embedding": ("For token or category ids: it turns each id into a learned vector.",
                  "embedding_dim", "The vector's length: larger vectors hold more about each "
                  "token but need more data."),
    "ReLU": ("The default activation between layers: it keeps positive values and zeroes the "
             "rest, which trains fast and does not saturate for positive inputs.", None,
             "Without an activation, stacked Linear layers are one Linear layer."),
    "LeakyReLU": ("Like ReLU, when units stop learning (\"dead ReLUs\"): negative inputs keep a "
                  "small slope.", "negative_slope",
                  "The slope for negative inputs; 0.01 is usual, 0 is plain ReLU."),
    "ELU": ("A smooth ReLU whose negative side bends towards -alpha, which keeps mean "
            "activations near zero.", "alpha", "The value negative inputs approach."),
    "GELU": ("The activation of Transformers: a smooth ReLU weighted by how likely the input is "
             "positive.", "approximate", "\"tanh\" computes a faster approximation."),
    "SiLU": ("Swish, x·sigmoid(x): a smooth, non-monotonic activation used in modern CNNs.",
             None, "No parameters."),
    "Sigmoid": ("To squash values into 0..1: a probability for one yes/no output, or a gate. "
                "Avoid it between many layers: its gradient is at most 0.25 and vanishes.",
                None, "No parameters; the binary loss BCEWithLogitsLoss applies it itself."),
    "Tanh": ("To squash values into -1..1: RNN states, outputs that must stay bounded (a "
             "GAN's generated pixels).", None, "No parameters; like Sigmoid it saturates."),
    "Softmax": ("To turn scores into probabilities that sum to 1; not before "
                "CrossEntropyLoss, which applies it itself.", "dim",
                "The dimension that sums to 1: the classes, usually the last."),
    "Step": ("The perceptron's hard threshold (0 or 1): for showing a classic perceptron. It "
             "has no gradient, so nothing before it learns.", None, "No parameters."),
    "Conv1d": ("For sequences and signals: a small filter slides along the steps and finds "
               "local patterns anywhere.", "out_channels",
               "How many filters, each one pattern; kernel_size is how many steps one "
               "filter sees."),
    "Conv2d": ("For images: a small filter slides over the picture, so the same pattern (an "
               "edge, a stroke) is found wherever it is, with far fewer weights than a "
               "Linear layer.", "out_channels",
               "How many filters, each a feature map; kernel_size is the patch one filter "
               "sees, padding keeps the size, stride shrinks it."),
    "ConvTranspose2d": ("To make images larger with learned filters: decoders, GAN "
                        "generators, the upsampling path of a U-Net.", "stride",
                        "2 doubles the height and width (with kernel_size 2 or 4)."),
    "MaxPool2d": ("After convolutions, to halve the image and keep the strongest response "
                  "of each patch, so later layers see larger parts.", "kernel_size",
                  "The patch size; 2 halves height and width."),
    "AvgPool2d": ("Like MaxPool2d but averaging: a smoother downsampling.", "kernel_size",
                  "The patch size; 2 halves height and width."),
    "AdaptiveAvgPool2d": ("Before the classifier head of a CNN: averages each feature map "
                          "to a fixed size, whatever the input image size.", "output_size",
                          "The size of the result; 1 gives one number per channel."),
    "Upsample": ("To make images larger without weights (nearest or bilinear), often before "
                 "a convolution.", "scale_factor", "How much larger; 2 doubles each side."),
    "BatchNorm1d": ("Between a Linear and its activation in deep MLPs: normalises each "
                    "feature over the batch, which allows higher learning rates.", "momentum",
                    "How fast the running mean and variance used at evaluation follow the "
                    "batches."),
    "BatchNorm2d": ("Between a convolution and its activation in deep CNNs (ResNets): "
                    "normalises each channel over the batch.", "momentum",
                    "How fast the running statistics used at evaluation follow the batches."),
    "LayerNorm": ("In Transformers and RNNs: normalises each sample's features on their own, "
                  "so it works with any batch size.", "eps",
                  "A small number that keeps the division stable."),
    "RNN": ("For short sequences, and to see why gated cells exist: the hidden state is "
            "rewritten at every step, so what it saw long ago fades.", "hidden_size",
            "The size of the state it carries from step to step."),
    "LSTM": ("For sequences with long dependencies (text, series): gated memory cells decide "
             "what to keep, so information survives many steps.", "hidden_size",
             "The size of the memory; keep_bias starts the forget gates open, for "
             "dependencies tens of steps long."),
    "GRU": ("Like LSTM with fewer weights (two gates): a good first choice for sequences.",
            "hidden_size", "The size of the state; keep_bias starts the update gates keeping, "
                           "for long dependencies."),
    "Reservoir": ("An echo state network: a fixed random recurrent layer whose rich states a "
                  "trained readout (a Linear) turns into forecasts; trains in seconds.",
                  "spectral_radius", "How long echoes last: near 1 remembers longer, above 1 "
                                     "becomes chaotic."),
    "SequencePool": ("To turn a sequence of steps into one vector (mean, max or last) before "
                     "a classifier head.", "mode", "mean uses every step, last only the "
                                                   "final one."),
    "PerFrame": ("To run image layers on every frame of a video (with MergeFrames after "
                 "them): the hybrid CNN+RNN.", None, "No parameters."),
    "MergeFrames": ("Ends a PerFrame chain: the frames' features become a sequence for an "
                    "RNN, LSTM or GRU.", None, "No parameters."),
    "MultiheadAttention": ("When every step must look at every other step: each position "
                           "takes a weighted mean of all positions' values.", "num_heads",
                           "Parallel attention patterns; the embedding size must divide by "
                           "it."),
    "TransformerEncoderLayer": ("The building block of Transformers: self-attention and a "
                                "feed-forward network, each with a skip and layer norm.",
                                "nhead", "Attention heads; dim_feedforward is the width of "
                                         "its inner MLP."),
    "PositionalEncoding": ("Before attention layers: adds each step's position, since "
                           "attention alone does not know the order.", "max_len",
                           "The longest sequence it can encode."),
    "Add": ("For skip (residual) connections: the sum lets gradients flow straight back, "
            "which is what makes very deep networks train.", None,
            "No parameters; every input must have the same shape."),
    "Multiply": ("For gating: one branch scales another element by element.", None,
                 "No parameters; every input must have the same shape."),
    "Concat": ("To join branches (Inception, U-Net skips): stacks inputs along a "
               "dimension.", "dim", "1 joins channels of images or features of vectors."),
    "Reparameterize": ("The sampling step of a variational autoencoder: z = mu + sigma·noise, "
                       "so the encoder still gets a gradient.", None,
                       "No parameters; it takes the mean and log-variance branches."),
    "GCNConv": ("Graph convolution: each node averages its neighbours' features, then a "
                "learned weight; for node classification on citation or social graphs.",
                "out_channels", "The size of each node's new features."),
    "GATConv": ("Graph attention: each node learns how much each neighbour counts.", "heads",
                "Parallel attention patterns; with concat their results are joined."),
    "SAGEConv": ("GraphSAGE: combines a node's own features with an aggregate of its "
                 "neighbours'; scales to large graphs.", "aggr",
                 "How neighbours are combined: mean, max or sum."),
    "GINConv": ("The graph isomorphism network: sums neighbours and applies an MLP; the most "
                "expressive of these for telling graphs apart (graph classification).",
                "hidden", "The width of its inner MLP."),
    "GraphPool": ("For graph classification: turns every node's features into one vector per "
                  "graph.", "mode", "mean, max or sum over the nodes."),
    "Block": ("For repeated structure (ResNet stages, Transformer layers): one definition, "
              "used by many nodes.", "block", "Which of the project's blocks it runs; its "
                                              "other parameters are the block's own."),
    "Opaque": ("Made by the importer for a module the catalog has no layer for; it runs the "
               "module as it is.", "module", "The module's class path."),
}


def concept_note(layer_type: str) -> str:
    """The note as Markdown: when to use it, and its main parameter's effect."""
    note = NOTES.get(layer_type)
    if note is None:
        return ""
    when, param, effect = note
    main = f"**Main parameter, `{param}`:** {effect}" if param else effect
    return f"**When to use it:** {when} {main}"
