"""Tests of reidnb.viz.maps: activation maps of a model (hand-worked) and the overlay figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from reidnb import viz  # noqa: E402
from reidnb.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


class _Maps(torch.nn.Module):
    """Returns its input as the feature map; records the mode and keyword inputs seen."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, x, return_featuremaps=False, scale=1.0):
        self.seen.append((self.training, return_featuremaps, scale))
        return x * scale if return_featuremaps else x.flatten(1)


def test_activation_maps_hand_worked():
    # one image, 2 channels, a 1 x 2 grid: channel 0 = [3, 0], channel 1 = [1, 2]
    # mean over channels of F^2: [(9 + 1) / 2, (0 + 4) / 2] = [5, 2]; L2 norm sqrt(29)
    x = torch.tensor([[[[3.0, 0.0]], [[1.0, 2.0]]]])
    model = _Maps().train()
    a = viz.activation_maps(model, x)
    assert a.dtype == np.float32 and a.shape == (1, 1, 2)
    np.testing.assert_allclose(a[0, 0], [5 / 29 ** 0.5, 2 / 29 ** 0.5], rtol=1e-6)
    assert model.seen == [(False, True, 1.0)] and model.training     # eval inside, restored
    # keyword inputs reach the model; the map is L2-normalised, so scaling F changes nothing
    np.testing.assert_allclose(viz.activation_maps(model, x, scale=torch.tensor(3.0)), a,
                               rtol=1e-6)
    # an all-zero map stays zero
    assert not viz.activation_maps(model, torch.zeros(2, 3, 2, 2)).any()


def test_activation_maps_rejects_a_model_without_feature_maps():
    class Flat(torch.nn.Module):
        def forward(self, x, return_featuremaps=False):
            return x.flatten(1)

    with pytest.raises(TypeError, match="return_featuremaps"):
        viz.activation_maps(Flat(), torch.zeros(1, 3, 2, 2))


def test_plot_overlays_draws_maps_upsampled_and_rescaled():
    rgb = np.zeros((2, 4, 2, 3), dtype=np.uint8)
    m = np.array([[[0.0, 2.0]], [[1.0, 1.0]]])                  # [N=2, h=1, w=2]
    fig = viz.plot_overlays(rgb, {"run (x)": [m, m]}, map_names=["s4"], row_labels=["a", "b"])
    assert len(fig.axes) == 2 * 3
    assert fig.axes[1].get_title() == "(b) s4\nrun\n(x)"
    assert fig.axes[2].get_title() == "(c) map 2\nrun\n(x)"
    drawn = fig.axes[1].images[1].get_array()                   # image 0, first map
    assert drawn.shape == (4, 2)
    np.testing.assert_allclose(drawn[:, 0], 0.0)                # 0 / max 2
    np.testing.assert_allclose(drawn[:, 1], 1.0)                # 2 / max 2
    fig = viz.plot_overlays(rgb, {"G": m * 0.25}, rescale=False, lettered=False)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["image", "G"]
    np.testing.assert_allclose(fig.axes[1].images[1].get_array()[:, 1], 0.5)   # as given
    with pytest.raises(ValueError, match="same number"):
        viz.plot_overlays(rgb, {"a": [m], "b": [m, m]})
    with pytest.raises(ValueError, match="row_labels"):
        viz.plot_overlays(rgb, {"a": m}, row_labels=["only one"])
    plt.close("all")


def test_overlay_images_are_denormalised_with_the_imagenet_statistics():
    rgb = np.array([0.2, 0.5, 0.9])
    x = ((rgb - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)).astype(np.float32)
    img = torch.from_numpy(x)[None, :, None, None].expand(1, 3, 2, 2)
    fig = viz.plot_overlays(img, {"a": np.ones((1, 1, 1))})
    np.testing.assert_allclose(fig.axes[0].images[0].get_array()[0, 0], rgb, atol=1e-6)
    plt.close("all")
