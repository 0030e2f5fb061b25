"""Segmentation pipeline: spectral groups, border rule, IoU/DICE, the evaluator with noise."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest

from sparse_ae.evaluators import segmentation


def object_image(size: int = 32, seed: int = 0, two_tone: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A noisy grey background with an obvious off-centre coloured square; (image (H, W, 3), mask (H, W))."""
    rng = np.random.default_rng(seed)
    image = 0.5 + 0.05 * rng.standard_normal((size, size, 3))
    mask = np.zeros((size, size), bool)
    mask[8:24, 12:28] = True
    image[mask] = [0.9, 0.2, 0.1]
    if two_tone:
        image[8:16, 12:28] = [0.1, 0.3, 0.9]
    return image.astype(np.float32), mask


@pytest.mark.parametrize("num_groups,two_tone", [(2, False), (3, True)])
def test_segment_finds_obvious_object(num_groups, two_tone):
    image, mask = object_image(two_tone=two_tone)
    features = segmentation.pooled_colours(image[None], (8, 8))[0]
    pred = segmentation.segment(features, num_groups, mask.shape)
    assert pred.shape == mask.shape
    assert segmentation.iou(pred, mask) == 1.0  # cells align with the square's 4-pixel grid


def test_border_rule_picks_the_group_touching_the_border():
    labels = np.zeros((6, 6), int)
    labels[2:4, 2:4] = 1
    np.testing.assert_array_equal(segmentation.border_foreground(labels), labels == 1)
    np.testing.assert_array_equal(segmentation.border_foreground(1 - labels), labels == 1)  # label values do not matter


def test_iou_dice_against_counts():
    pred = np.zeros((4, 4), bool)
    truth = np.zeros((4, 4), bool)
    pred[:2, :] = True          # 8 pixels
    truth[1:3, :] = True        # 8 pixels, 4 shared
    assert segmentation.iou(pred, truth) == pytest.approx(4 / 12)
    assert segmentation.dice(pred, truth) == pytest.approx(2 * 4 / 16)
    empty = np.zeros((4, 4), bool)
    assert segmentation.iou(empty, empty) == 1.0 and segmentation.dice(empty, empty) == 1.0
    assert segmentation.iou(pred, empty) == 0.0


def test_affinity_and_pooling():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((10, 3))
    a = segmentation.median_affinity(features)
    np.testing.assert_allclose(a, a.T)
    np.testing.assert_allclose(np.diag(a), 1.0)
    d2 = np.sum((features[:, None] - features[None]) ** 2, -1)
    scale = np.median(d2[~np.eye(10, dtype=bool)])
    np.testing.assert_allclose(a, np.exp(-d2 / scale), rtol=1e-6, atol=1e-12)
    images = rng.random((2, 8, 8, 3))
    pooled = segmentation.pooled_colours(images, (2, 2))
    np.testing.assert_allclose(pooled[1, 0, 1], images[1, :4, 4:].mean(axis=(0, 1)))
    with pytest.raises(ValueError, match="does not divide"):
        segmentation.upsample(np.ones((3, 3), bool), (8, 8))
    with pytest.raises(ValueError, match="num_groups"):
        segmentation.spectral_groups(np.ones((4, 4, 2)), 4)


class ColourTask:
    """A stand-in task whose "code" is the image's mean colour per 4×4 cell (what is tested is the evaluator)."""

    @staticmethod
    def eval_step(state, batch):
        del state
        return {"code": segmentation.pooled_colours(np.asarray(batch["image"]), (8, 8))}


def test_evaluator_scores_noise_levels_and_checks_masks():
    pairs = [object_image(seed=s) for s in range(3)]
    batch = {"image": np.stack([p[0] for p in pairs]), "mask": np.stack([p[1] for p in pairs]),
             "valid": np.array([True, True, False])}
    config = ml_collections.ConfigDict(dict(
            segmentation=segmentation.default_config(), eval=dict(num_images=2), task="stand_in"))
    config.segmentation.noise_levels = (0.0, 2.0)
    segmentation.validate_config(config)
    scalars, images = segmentation.evaluate(ColourTask(), None, {"test": lambda: iter([batch])}, config)
    assert scalars["test/seg_iou"] == 1.0 and scalars["test/seg_iou_colour"] == 1.0
    assert scalars["test/seg_dice"] == 1.0
    assert scalars["test/seg_iou_sigma2"] < 0.9  # σ = 2 noise survives 4×4 pooling
    assert images["test/segmentation"].shape[0] == 1
    with pytest.raises(ValueError, match="'mask'"):
        segmentation.evaluate(ColourTask(), None, {"test": lambda: iter([{"image": batch["image"]}])}, config)
    config.segmentation.num_groups = 4
    with pytest.raises(ValueError, match="config.segmentation.num_groups"):
        segmentation.validate_config(config)
