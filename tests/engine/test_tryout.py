"""engine.tryout: what the Try panel asks of a trained model, checked against the trainer's
own forward pass and Captum run directly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.examples import find_example
from engine.explain import attribute
from engine.project import load_project
from engine.training import Trainer
from engine.tryout import TryError, Tryout


@pytest.fixture(scope="module")
def digits():
    trainer = Trainer(load_project(find_example("cnn_digits")), device="cpu", epochs=2)
    trainer.fit()
    yield trainer
    trainer.close()


def test_predictions_are_the_trainers(digits):
    tryout = Tryout(digits)
    assert tryout.input_kind == "image" and tryout.sample_shape == (1, 8, 8)
    x, label = tryout.sample(5)
    p = tryout.predict(x)
    want = digits.predict(x).softmax(dim=1)[0].cpu().numpy()
    np.testing.assert_allclose(p.probabilities, want, rtol=1e-5, atol=1e-7)
    assert p.predicted == int(want.argmax()) and p.probabilities.sum() == pytest.approx(1.0)
    assert label == int(digits.dataset.item(5, "val")["y"][0])
    with pytest.raises(TryError, match="sample 9999"):
        tryout.sample(9999)


def test_the_review_sorts_the_wrong_ones_and_counts_the_confusions(digits):
    tryout = Tryout(digits)
    review = tryout.review()
    assert len(review.labels) == tryout.size
    wrong = review.wrong()
    assert set(wrong) == set(np.flatnonzero(review.predicted != review.labels).tolist())
    conf = review.confidence[wrong]
    assert (np.diff(conf) <= 1e-12).all()  # the most confident first
    assert review.accuracy == pytest.approx(digits.history[-1]["val_accuracy"], abs=1e-6)
    pairs = review.confused_pairs(100)
    assert sum(n for _, _, n in pairs) == len(wrong)
    assert [n for _, _, n in pairs] == sorted((n for _, _, n in pairs), reverse=True)
    t, p, n = pairs[0]
    assert len(review.of_pair(t, p)) == n
    for i in review.of_pair(t, p):
        assert review.labels[i] == t and review.predicted[i] == p


def test_refresh_copies_the_weights_and_never_touches_the_trainers_model(digits):
    tryout = Tryout(digits)
    net = digits.models["model"]
    assert tryout.model is not net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, _ = tryout.sample(0)
    tryout.explain(x, "ig")
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    with torch.no_grad():
        first = next(tryout.model.parameters())
        first.add_(1.0)  # the copy changes, the trainer's model does not
    assert not torch.equal(first, next(net.parameters()))
    tryout.refresh()
    assert torch.equal(next(tryout.model.parameters()), next(net.parameters()).cpu())


@pytest.mark.parametrize("method", ["saliency", "ig", "occlusion", "gradcam"])
def test_explain_is_captum_on_the_same_model(digits, method):
    tryout = Tryout(digits)
    x, _ = tryout.sample(3)
    got = tryout.explain(x, method, target=2)
    want = attribute(tryout.model, tryout.graph, x, method, target=2)
    np.testing.assert_allclose(got["attribution"], want["attribution"], rtol=1e-5, atol=1e-7)
    assert got["target"] == 2


def test_a_forecaster_and_the_tasks_it_cannot_try():
    trainer = Trainer(load_project(find_example("lstm_sine")), device="cpu", epochs=1)
    try:
        tryout = Tryout(trainer)
        assert tryout.input_kind == "sequence"
        x, label = tryout.sample(0)
        p = tryout.predict(x)
        assert label is None and p.kind in ("sequence", "values")
        np.testing.assert_allclose(p.output, trainer.predict(x)[0].cpu().numpy(), rtol=1e-5)
    finally:
        trainer.close()
    gan = Trainer(load_project(find_example("gan_ring")), device="cpu", epochs=1)
    try:
        with pytest.raises(TryError, match="gan"):
            Tryout(gan)
    finally:
        gan.close()


def test_attention_weights_of_each_head():
    trainer = Trainer(load_project(find_example("transformer_sine")), device="cpu", epochs=1)
    try:
        tryout = Tryout(trainer)
        assert tryout.attention_nodes() == ["encoder"]
        x, _ = tryout.sample(0)
        maps = tryout.attention(x)
        heads = trainer.project.models["model"].node("encoder").params["nhead"]
        steps = tryout.sample_shape[0]
        assert maps["encoder"].shape == (heads, steps, steps)
        np.testing.assert_allclose(maps["encoder"].sum(axis=-1), 1.0, rtol=1e-5)
        # the same weights as the layer's own attention module asked directly
        encoder = tryout.model.get_submodule(tryout.model.node_attrs["encoder"])
        h = tryout.model.get_submodule(tryout.model.node_attrs["pos"])(
            tryout.model.get_submodule(tryout.model.node_attrs["embed"])(x))
        with torch.no_grad():
            _, want = encoder.self_attn(h, h, h, need_weights=True, average_attn_weights=False)
        np.testing.assert_allclose(maps["encoder"], want[0].numpy(), rtol=1e-4, atol=1e-6)
        assert Tryout(trainer).attention_nodes() and not Tryout(trainer).model.training
    finally:
        trainer.close()
    digits = Trainer(load_project(find_example("cnn_digits")), device="cpu", epochs=1)
    try:
        assert Tryout(digits).attention_nodes() == []
        assert Tryout(digits).attention(Tryout(digits).sample(0)[0]) == {}
    finally:
        digits.close()


def test_the_live_attention_probe_is_the_layers_own_attention_averaged():
    """gui.training.bridge's probe (the Activations view's attention map) against
    nn.MultiheadAttention asked directly on the same probe batch."""
    from engine.training.tasks import evaluating
    from gui.training.bridge import attention_weights

    trainer = Trainer(load_project(find_example("transformer_sine")), device="cpu", epochs=1)
    try:
        live = attention_weights(trainer, ["encoder"], 8)
        model = trainer.models["model"]
        x = trainer.task.probe_inputs(8)["model"][0]
        with torch.no_grad(), evaluating(model):
            h = model.get_submodule(model.node_attrs["pos"])(
                model.get_submodule(model.node_attrs["embed"])(x))
            attn = model.get_submodule(model.node_attrs["encoder"]).self_attn
            _, want = attn(h, h, h, need_weights=True, average_attn_weights=True)
        assert live["node"] == "encoder" and live["weights"].shape == (8, 20, 20)
        np.testing.assert_allclose(live["weights"], want.numpy(), rtol=1e-4, atol=1e-6)
        assert attention_weights(trainer, ["embed"], 8) == {}  # not an attention layer
    finally:
        trainer.close()
