"""Try a trained model on any sample and ask why: what the window's Try panel stands on.

A :class:`Tryout` holds a copy of one model of a :class:`~engine.training.Trainer` on the CPU in
evaluation mode (so trying never disturbs a run that goes on in another thread: call
:meth:`Tryout.refresh` for its latest weights), the trainer's data and task. It answers:

- :meth:`sample` — a validation (or, without one, training) sample and its label;
- :meth:`predict` — the model's answer for any input, in the task's terms: class
  probabilities, a regression value, a reconstruction, a forecast;
- :meth:`review` — every validation sample's prediction at once, for "the ones it gets
  wrong" (most confident first) and the most confused pairs of classes;
- :meth:`embedding` — a 2-D map (PCA or t-SNE, scikit-learn) of any layer's activations over
  the validation set;
- :meth:`explain` — a Captum attribution (:func:`engine.explain.attribute`).

No Qt here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import LayerlabError
from .explain import ATTENTION_TYPES

TRIED_TASKS = ("classification", "regression", "reconstruction", "vae", "forecasting")
REVIEW_CHUNK = 512  # validation samples per forward pass of :meth:`Tryout.review`
EMBED_LIMIT = 2000  # validation samples in an embedding (t-SNE's time grows with their square)


class TryError(LayerlabError):
    """A model or task that the Try panel cannot try; the message says why in plain words."""


@dataclass
class Prediction:
    kind: str  # "classes", "values", "image" (a reconstruction) or "sequence" (a forecast)
    output: np.ndarray  # the raw output of the first Output, batch dimension dropped
    probabilities: np.ndarray | None = None  # classes: one per class, summing to 1
    predicted: int | None = None  # classes: the predicted class
    text: str = ""  # one line for people

    @property
    def confidence(self) -> float | None:
        if self.probabilities is None or self.predicted is None:
            return None
        return float(self.probabilities[self.predicted])


@dataclass
class Review:
    """Every validation sample's prediction (classification only)."""

    labels: np.ndarray  # (N,) the true classes
    predicted: np.ndarray  # (N,)
    confidence: np.ndarray  # (N,) the probability of the predicted class
    class_names: list[str] = field(default_factory=list)

    def wrong(self) -> list[int]:
        """Indices of wrong predictions, the most confident first."""
        idx = np.flatnonzero(self.predicted != self.labels)
        return idx[np.argsort(-self.confidence[idx], kind="stable")].tolist()

    def matrix(self) -> np.ndarray:
        """The confusion matrix: counts of (true row, predicted column)."""
        k = int(max(self.labels.max(initial=0), self.predicted.max(initial=0))) + 1
        k = max(k, len(self.class_names))
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, (self.labels, self.predicted), 1)
        return counts

    def confused_pairs(self, top: int = 10) -> list[tuple[int, int, int]]:
        """(true, predicted, count) of the most frequent mistakes, most frequent first."""
        wrong = self.predicted != self.labels
        pairs: dict[tuple[int, int], int] = {}
        for t, p in zip(self.labels[wrong].tolist(), self.predicted[wrong].tolist()):
            pairs[(t, p)] = pairs.get((t, p), 0) + 1
        ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(t, p, n) for (t, p), n in ranked[:top]]

    def of_pair(self, true: int, predicted: int) -> list[int]:
        """The samples of one confusion, the most confident first."""
        idx = np.flatnonzero((self.labels == true) & (self.predicted == predicted))
        return idx[np.argsort(-self.confidence[idx], kind="stable")].tolist()

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.labels) else 0.0


class Tryout:
    """One model of a trainer, copied to the CPU, with the trainer's data and task."""

    def __init__(self, trainer, model: str | None = None):
        self.trainer = trainer
        self.task = trainer.task
        if self.task.name not in TRIED_TASKS:
            raise TryError(f"Try works on classification, regression, reconstruction and "
                           f"forecasting models; this project trains a {self.task.name} task")
        self.name = model or getattr(self.task, "model_name", None) or next(iter(trainer.models))
        self.graph = trainer.project.models[self.name]
        self.dataset = trainer.dataset
        self.keys = tuple(self.task.keys)
        if len(self.keys) != 1:
            raise TryError(f"Try works on models with one Input; {self.name!r} has "
                           f"{len(self.keys)} ({', '.join(self.keys)})")
        self.key = self.keys[0]
        self.split = "val" if self.task.has_val else "train"
        self.size = self.task.val_size if self.task.has_val else self.task.train_size
        self.class_names = [str(c) for c in (getattr(self.dataset, "class_names", None) or [])]
        self.model = None
        self.epoch = None
        self._review: Review | None = None
        self._train_inputs = None
        self.refresh()

    # -- the weights ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Copy the trainer's latest weights (it may be training in another thread: a copy is
        read, never the live module put in eval mode)."""
        from .export.build import build_job
        from .training.checkpoints import cpu_state

        state = cpu_state(self.trainer.models[self.name])
        self.model = build_job(self.trainer.project, self.name, {self.name: state}).model
        self.epoch = getattr(self.trainer, "epoch", None)
        self._review = None

    # -- samples ----------------------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.dataset.shapes[self.key])

    @property
    def input_kind(self) -> str:
        """"image" (C, H, W), "sequence" (T, F), or "vector" (F,)."""
        shape = self.sample_shape
        if len(shape) == 3:
            return "image"
        if len(shape) == 2:
            return "sequence"
        return "vector"

    def sample(self, i: int):
        """(x with its batch dimension (1, ...) on the CPU, label or None) of sample ``i``."""
        if not 0 <= i < self.size:
            raise TryError(f"sample {i}: the split has {self.size} samples (0..{self.size - 1})")
        fields = self.dataset.item(int(i), self.split)
        x = fields[self.key].detach().float().cpu()
        y = fields.get("y")
        label = None
        if self.task.name == "classification" and y is not None:
            label = int(y.reshape(-1)[0])
        return x, label

    def train_inputs(self):
        """Up to 2,000 training inputs (the mean baseline of Integrated Gradients, SHAP's
        background), read once."""
        if self._train_inputs is None:
            head = self.dataset.head(self.key, 2000, "train")
            self._train_inputs = None if head is None else head.detach().float().cpu()
        return self._train_inputs

    def input_range(self) -> tuple[float, float]:
        """The training inputs' smallest and largest value: what a drawn stroke maps to."""
        xs = self.train_inputs()
        if xs is None or xs.numel() == 0:
            return 0.0, 1.0
        return float(xs.min()), float(xs.max())

    # -- answers ----------------------------------------------------------------------------------
    def _forward(self, x):
        import torch

        with torch.no_grad():
            out = self.model(x.float())
        return out[0] if isinstance(out, tuple) else out

    def predict(self, x) -> Prediction:
        """The model's answer for ``x`` (1, ...) in the task's terms."""
        out = self._forward(x)
        raw = out[0].cpu().numpy()
        task = self.task
        if task.name == "classification":
            if task.binary:
                import torch

                p1 = float(torch.sigmoid(out[0, 0]) if task.threshold == 0.0 else out[0, 0])
                p1 = min(max(p1, 0.0), 1.0)
                probs = np.array([1.0 - p1, p1])
            else:
                probs = out.softmax(dim=1)[0].cpu().numpy()
            k = int(task.predict(out)[0])
            name = self.class_name(k)
            return Prediction("classes", raw, probs, k, f"predicted {name} ({probs[k]:.0%})")
        if task.name in ("reconstruction", "vae"):
            return Prediction("image" if len(raw.shape) == 3 else "values", raw,
                              text="the reconstruction")
        if task.name == "forecasting":
            return Prediction("sequence", raw, text="the forecast: " + _numbers(raw))
        return Prediction("values", raw, text="predicted " + _numbers(raw))

    def class_name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)

    def review(self) -> Review:
        """Every validation sample's prediction (classification only), computed once per set of
        weights."""
        import torch

        if self.task.name != "classification":
            raise TryError("the ones it gets wrong: for classification models")
        if self._review is None:
            labels, predicted, confidence = [], [], []
            for start in range(0, self.size, REVIEW_CHUNK):
                idx = list(range(start, min(self.size, start + REVIEW_CHUNK)))
                xs, ys = [], []
                for i in idx:
                    x, y = self.sample(i)
                    xs.append(x)
                    ys.append(-1 if y is None else y)
                out = self._forward(torch.cat(xs))
                k = self.task.predict(out).cpu()
                if self.task.binary:
                    p1 = torch.sigmoid(out[:, 0]) if self.task.threshold == 0.0 else out[:, 0]
                    conf = torch.where(k == 1, p1, 1 - p1).clamp(0, 1)
                else:
                    conf = out.softmax(dim=1).max(dim=1).values
                labels += ys
                predicted += k.tolist()
                confidence += conf.cpu().tolist()
            self._review = Review(np.array(labels), np.array(predicted),
                                  np.array(confidence, dtype=np.float64), self.class_names)
        return self._review

    def embedding_nodes(self) -> list[str]:
        """Nodes whose activations can be embedded: every node with a module, in graph order,
        the Input and Output aside."""
        return [n for n in self.graph.topological_order() if n in self.model.node_attrs
                and self.graph.node(n).type not in ("Input", "Output")]

    def activations(self, node: str, limit: int = EMBED_LIMIT):
        """The activations of ``node`` over the first ``limit`` validation samples, flattened
        per sample: (N, features) as a numpy array, and the sample indices."""
        import torch

        if node not in self.model.node_attrs:
            raise TryError(f"{node}: not a layer of {self.name!r} with activations "
                           f"(choose one of {', '.join(self.embedding_nodes())})")
        module = self.model.get_submodule(self.model.node_attrs[node])
        seen = []

        def hook(_module, _args, out):
            out = out[0] if isinstance(out, tuple) else out
            seen.append(out.detach().reshape(out.shape[0], -1).float().cpu())

        handle = module.register_forward_hook(hook)
        n = min(self.size, limit)
        try:
            for start in range(0, n, REVIEW_CHUNK):
                xs = [self.sample(i)[0] for i in range(start, min(n, start + REVIEW_CHUNK))]
                with torch.no_grad():
                    self.model(torch.cat(xs))
        finally:
            handle.remove()
        return torch.cat(seen).numpy(), list(range(n))

    def embedding(self, node: str, method: str = "pca", limit: int = EMBED_LIMIT):
        """A 2-D map of ``node``'s activations (scikit-learn's PCA, or t-SNE): (N, 2) points
        and the sample index of each."""
        from sklearn.decomposition import PCA

        values, index = self.activations(node, limit)
        if values.shape[1] < 2 or len(values) < 3:
            raise TryError(f"{node}: {values.shape[1]} value(s) per sample over "
                           f"{len(values)} samples: nothing to map in 2-D")
        if method == "pca":
            points = PCA(n_components=2, random_state=0).fit_transform(values)
        elif method == "tsne":
            from sklearn.manifold import TSNE

            reduced = PCA(n_components=min(50, values.shape[1], len(values)),
                          random_state=0).fit_transform(values)
            points = TSNE(n_components=2, init="pca", random_state=0,
                          perplexity=min(30.0, max(5.0, (len(values) - 1) / 3))
                          ).fit_transform(reduced)
        else:
            raise TryError(f"embedding method: pca or tsne; got {method!r}")
        return np.asarray(points, dtype=np.float64), index

    def attention_nodes(self) -> list[str]:
        """The model's attention layers (MultiheadAttention, TransformerEncoderLayer)."""
        return [n for n in self.graph.topological_order() if n in self.model.node_attrs
                and self.graph.node(n).type in ATTENTION_TYPES]

    def attention(self, x) -> dict[str, np.ndarray]:
        """Each attention layer's weights for ``x`` (1, ...): ``{node: (heads, T, S)}``, every
        row (a query step) summing to 1 over the key steps."""
        from .explain import attention_maps

        maps = attention_maps(self.model, (x.float(),), self.attention_nodes())
        return {node: m[0] for node, m in maps.items()}

    def explain(self, x, method: str, *, target: int | None = None, node: str | None = None,
                baseline: str = "zeros") -> dict:
        """Captum's attribution of ``x`` (see :func:`engine.explain.attribute`)."""
        from .explain import attribute

        needs = method in ("shap",) or (method == "ig" and baseline == "mean")
        return attribute(self.model, self.graph, x, method, target=target, node=node,
                         baseline=baseline, train_inputs=self.train_inputs() if needs else None)

    def conv_nodes(self) -> list[str]:
        from .explain import conv_nodes

        return conv_nodes(self.model, self.graph)


def _numbers(values: np.ndarray, most: int = 6) -> str:
    flat = np.asarray(values).reshape(-1)
    text = ", ".join(f"{v:.4g}" for v in flat[:most].tolist())
    return text + (f" … ({flat.size} values)" if flat.size > most else "")
