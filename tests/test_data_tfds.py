"""The TFDS source on real array_record files written by a small local TFDS builder."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

from sparse_ae import data
from sparse_ae.utils.tf_cpu import import_tensorflow

NUM_TRAIN, NUM_TEST = 10, 4


def _example(i: int) -> dict:
    """Example i: a 20 x (24 + i) RGB image whose pixels all equal 10 * i (recoverable), label i % 3,
    and a mask that is the top half of the image."""
    mask = np.zeros((20, 24 + i, 1), np.uint8)
    mask[:10] = 1
    return {"image": np.full((20, 24 + i, 3), 10 * i, np.uint8), "label": i % 3, "segmentation_mask": mask}


class SparseAeTinyImages(tfds.core.GeneratorBasedBuilder):
    """A tiny image dataset, registered with TFDS as "sparse_ae_tiny_images"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(num_classes=3),
            "segmentation_mask": tfds.features.Image(shape=(None, None, 1))}))

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples(range(NUM_TRAIN)),
                "test": self._generate_examples(range(NUM_TRAIN, NUM_TRAIN + NUM_TEST))}

    def _generate_examples(self, indices):  # pylint: disable=arguments-differ
        for i in indices:
            yield i, _example(i)


def _prepare(data_dir, file_format: str) -> str:
    import_tensorflow()  # TFDS writers use TensorFlow: import it with GPUs hidden first
    SparseAeTinyImages(data_dir=str(data_dir), file_format=file_format).download_and_prepare()
    return str(data_dir)


@pytest.fixture(name="tfds_dir", scope="module")
def fixture_tfds_dir(tmp_path_factory):
    return _prepare(tmp_path_factory.mktemp("tfds"), "array_record")


def _config(tfds_dir: str, **fields):
    cfg = data.default_config()
    cfg.update({"name": "tfds:sparse_ae_tiny_images", "tfds_data_dir": tfds_dir, "image_size": 16, **fields})
    return cfg


def test_eval_pass_reads_every_example_resized(tfds_dir):
    cfg = _config(tfds_dir, channels=3)
    assert data.num_examples(cfg, "test") == NUM_TEST and data.num_examples(cfg, "train") == NUM_TRAIN
    batches = list(data.build(cfg, "test", seed=0, train=False, per_process_batch=3))
    assert len(batches) == 2 and all(b["image"].shape == (3, 16, 16, 3) for b in batches)
    valid = np.concatenate([b["valid"] for b in batches])
    images = np.concatenate([b["image"] for b in batches])[valid]
    labels = np.concatenate([b["label"] for b in batches])[valid]
    assert labels.dtype == np.int32
    # Each image is constant 10 i / 255 (TFDS's order of examples is its own): recover i.
    ids = np.rint(images.reshape(len(images), -1).mean(axis=1) * 255 / 10).astype(int)
    np.testing.assert_allclose(images, (10 * ids / 255.0)[:, None, None, None] * np.ones_like(images), atol=1e-6)
    assert sorted(ids) == list(range(NUM_TRAIN, NUM_TRAIN + NUM_TEST))
    np.testing.assert_array_equal(labels, ids % 3)


@pytest.mark.parametrize("train", [False, True])
def test_masks_are_fitted_with_their_images(tfds_dir, train):
    cfg = _config(tfds_dir, channels=3, mask_key="segmentation_mask", random_flip=True, random_crop_pad=2)
    batch = next(iter(data.build(cfg, "train" if train else "test", seed=0, train=train, per_process_batch=4)))
    assert batch["mask"].shape == (4, 16, 16) and batch["mask"].dtype == np.bool_
    # resized (and, in training, shifted by up to 2 rows and flipped): the top half stays on top
    expected = np.arange(16)[:, None] < 8
    rows = np.r_[0:6, 10:16] if train else np.arange(16)
    np.testing.assert_array_equal(batch["mask"][:, rows], np.broadcast_to(expected, (4, 16, 16))[:, rows])
    with pytest.raises(ValueError, match=r"config.data.mask_key='seg' is not a feature"):
        data.validate_config(_config(tfds_dir, mask_key="seg"))
    wrong = _config(tfds_dir, channels=3, mask_key="image")  # an RGB image is no (H, W[, 1]) mask
    with pytest.raises(ValueError, match=r"mask_key='image': example \d+ has a mask of shape \(\d+, \d+, 3\)"):
        next(iter(data.build(wrong, "test", seed=0, train=False, per_process_batch=4)))


def test_training_stream_is_shuffled_repeated_and_gray(tfds_dir):
    cfg = _config(tfds_dir, channels=1, random_flip=True)
    it = iter(data.build(cfg, "train", seed=0, train=True, per_process_batch=5))
    batches = [next(it) for _ in range(4)]  # two epochs
    assert batches[0]["image"].shape == (5, 16, 16, 1) and batches[0]["label"].shape == (5,)
    ids = [int(round(float(x.mean()) * 255 / 10)) for b in batches for x in b["image"]]
    assert collections.Counter(ids) == collections.Counter(2 * list(range(NUM_TRAIN)))
    assert ids[:NUM_TRAIN] != ids[NUM_TRAIN:]  # reshuffled every epoch


def test_missing_or_unknown_datasets_explain_what_to_do(tfds_dir, tmp_path):
    with pytest.raises(ValueError, match=r"not prepared.*tfds build mnist --file_format=array_record"
                                         r".*TFDS_DATA_DIR or config.data.tfds_data_dir"):
        data.validate_config(_config(str(tmp_path), name="tfds:mnist"))
    with pytest.raises(ValueError, match="TFDS has no dataset 'no_such_dataset_xyz'"):
        data.validate_config(_config(tfds_dir, name="tfds:no_such_dataset_xyz"))
    with pytest.raises(ValueError, match=r"config.data.label_key='class' is not a feature"):
        data.validate_config(_config(tfds_dir, label_key="class"))
    with pytest.raises(ValueError, match=r"split 'validation'.*splits: \['test', 'train'\]"):
        data.build(_config(tfds_dir), "validation", seed=0, train=False, per_process_batch=2)
    tfrecord_dir = _prepare(tmp_path / "tfrecord", "tfrecord")
    with pytest.raises(ValueError, match=r"prepared as .*tfrecord.*needs array_record.*tfds build"):
        data.validate_config(_config(tfrecord_dir))
