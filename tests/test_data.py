"""Input pipelines: shapes, determinism, exact resume, sharding, evaluation padding, splits, errors."""

from __future__ import annotations

import collections
import json
import textwrap

import numpy as np
import pytest
from PIL import Image

from sparse_ae import data
from sparse_ae.data import config as data_config_lib
from sparse_ae.data import digits, natural_crops, transforms


def make_config(**fields):
    cfg = data.default_config()
    cfg.update(fields)
    return cfg


def take(ds, n: int) -> list[dict]:
    it = iter(ds)
    return [next(it) for _ in range(n)]


def assert_batches_equal(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def batches_differ(a: list[dict], b: list[dict]) -> bool:
    return any(not np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))


def test_default_config_parses_to_defaults():
    assert data_config_lib.parse(data.default_config()) == data.DataConfig()
    assert data.validate_config({"name": "digits"}) == data.DataConfig()


@pytest.mark.parametrize("size,channels", [(16, 1), (32, 3)])
def test_digits_shapes_labels_and_split(size, channels):
    cfg = make_config(name="digits", image_size=size, channels=channels)
    (batch,) = take(data.build(cfg, "train", seed=0, train=True, per_process_batch=8), 1)
    assert batch["image"].shape == (8, size, size, channels) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0 and batch["image"].max() > 0.5
    assert set(batch["label"]) <= set(range(10))
    if channels == 3:
        np.testing.assert_array_equal(batch["image"][..., 0], batch["image"][..., 2])
    spec = data.element_spec(cfg)
    assert {k: (v.shape, v.dtype) for k, v in spec.items()} == {
        k: (v.shape[1:], v.dtype) for k, v in batch.items()}
    assert data.num_examples(cfg, "train") == 1500 and data.num_examples(cfg, "test") == 297
    split = digits._split_indices()  # pylint: disable=protected-access
    assert not set(split["train"]) & set(split["test"])
    assert len(set(split["train"]) | set(split["test"])) == 1797


@pytest.mark.parametrize("fields", [
    dict(name="digits", image_size=16, random_flip=True, random_vflip=True, random_crop_pad=2),
    dict(name="natural_crops", image_size=16, channels=3),
])
def test_same_seed_same_batches_other_seed_other_batches(fields):
    cfg = make_config(**fields)
    first = take(data.build(cfg, "train", seed=3, train=True, per_process_batch=16), 4)
    again = take(data.build(cfg, "train", seed=3, train=True, per_process_batch=16), 4)
    other = take(data.build(cfg, "train", seed=4, train=True, per_process_batch=16), 4)
    assert_batches_equal(first, again)
    assert batches_differ(first, other)


@pytest.mark.parametrize("fields,stop", [
    (dict(name="digits", image_size=8, random_flip=True), 14),  # 15 batches per epoch: resume at the epoch end
    (dict(name="natural_crops", image_size=16), 3),
])
def test_resume_from_state_is_exact(fields, stop):
    cfg = make_config(**fields)

    def build():
        return data.build(cfg, "train", seed=7, train=True, per_process_batch=100)

    straight = take(build(), stop + 3)
    it = iter(build())
    for _ in range(stop):
        next(it)
    state = json.loads(json.dumps(it.get_state()))  # as checkpointed (JSON)
    resumed = iter(build())
    resumed.set_state(state)
    assert_batches_equal([next(resumed) for _ in range(3)], straight[stop:])


def test_digits_epoch_visits_every_example_once_and_epochs_reshuffle():
    cfg = make_config(name="digits", image_size=8)
    images, _ = digits._arrays("train", 8, 1)  # pylint: disable=protected-access
    batches = take(data.build(cfg, "train", seed=0, train=True, per_process_batch=100), 30)
    epochs = [np.concatenate([b["image"] for b in batches[e * 15:(e + 1) * 15]]) for e in range(2)]
    for epoch in epochs:
        assert collections.Counter(x.tobytes() for x in epoch) == collections.Counter(x.tobytes() for x in images)
    assert not np.array_equal(epochs[0], epochs[1])


def test_train_fraction_trains_on_one_fixed_subset_and_evaluates_on_all():
    cfg = make_config(name="digits", image_size=8, train_fraction=0.1)
    images, _ = digits._arrays("train", 8, 1)  # pylint: disable=protected-access
    subset = {images[i].tobytes() for i in data.pipeline.training_subset(len(images), 0.1)}
    assert len(subset) == -(-len(images) // 10)
    seen = []
    for seed in (0, 1):
        batches = take(data.build(cfg, "train", seed=seed, train=True, per_process_batch=50), 12)
        seen.append({x.tobytes() for b in batches for x in b["image"]})
    assert seen[0] == seen[1] == subset  # 600 draws cover the subset; every seed the same one
    assert data.num_examples(cfg, "train") == len(images)  # evaluation reads the whole split
    unbounded = make_config(name="natural_crops", image_size=16, train_fraction=0.5)
    with pytest.raises(ValueError, match="train_fraction=0.5 needs a finite source"):
        data.build(unbounded, "train", seed=0, train=True, per_process_batch=4)


def test_two_shards_split_each_global_batch():
    """Process p reads rows [pB, (p+1)B) of every global batch: disjoint, covering, and the same
    global batches as one process."""
    cfg = make_config(name="digits", image_size=8, random_flip=True)
    whole = take(data.build(cfg, "train", seed=1, train=True, per_process_batch=64), 4)
    shards = [take(data.build(cfg, "train", seed=1, train=True, shard_index=i, shard_count=2,
                              per_process_batch=32), 4) for i in range(2)]
    for b, batch in enumerate(whole):
        for key in batch:
            np.testing.assert_array_equal(
                np.concatenate([shards[0][b][key], shards[1][b][key]]), batch[key])


def test_eval_pass_is_padded_with_a_valid_mask_and_sharded_evenly():
    cfg = make_config(name="digits", image_size=8)
    batches = list(data.build(cfg, "test", seed=0, train=False, per_process_batch=64))
    assert len(batches) == 5 and all(b["image"].shape == (64, 8, 8, 1) for b in batches)
    valid = np.concatenate([b["valid"] for b in batches])
    assert valid.dtype == np.bool_ and valid.sum() == 297 and valid[:297].all()
    test_images, _ = digits._arrays("test", 8, 1)  # pylint: disable=protected-access
    np.testing.assert_array_equal(np.concatenate([b["image"] for b in batches])[:297], test_images)
    assert_batches_equal(batches, list(data.build(cfg, "test", seed=99, train=False, per_process_batch=64)))

    shards = [list(data.build(cfg, "test", seed=0, train=False, shard_index=i, shard_count=2,
                              per_process_batch=32)) for i in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5  # 297 padded to 320 = 5 global batches of 64
    seen = [b["image"][b["valid"]] for shard in shards for b in shard]
    assert collections.Counter(x.tobytes() for x in np.concatenate(seen)) == \
        collections.Counter(x.tobytes() for x in test_images)


def _ssd_min(photo: np.ndarray, crop: np.ndarray) -> float:
    """Smallest squared distance between ``crop`` and any window of ``photo`` (gray, 2-D)."""
    from scipy.signal import fftconvolve  # pylint: disable=import-outside-toplevel

    photo, crop = photo.astype(np.float64), crop.astype(np.float64)
    window_energy = fftconvolve(photo ** 2, np.ones_like(crop), mode="valid")
    cross = fftconvolve(photo, crop[::-1, ::-1], mode="valid")
    return float((window_energy - 2 * cross + (crop ** 2).sum()).min())


def test_natural_crops_held_out_by_whole_image():
    assert not set(natural_crops.TRAIN_IMAGES) & set(natural_crops.TEST_IMAGES)
    photos = {name: natural_crops.load_photo(name) for name in natural_crops.TRAIN_IMAGES + natural_crops.TEST_IMAGES}
    assert natural_crops.MAX_CROP == min(min(p.shape[:2]) for p in photos.values())
    gray = {name: natural_crops._photos(split, 1)[0][i][..., 0]  # pylint: disable=protected-access
            for split, names in natural_crops.SPLITS.items() for i, name in enumerate(names)}
    cfg = make_config(name="natural_crops", image_size=12, num_eval_examples=6)

    test = np.concatenate([b["image"] for b in data.build(cfg, "test", seed=0, train=False, per_process_batch=3)])
    assert test.shape == (6, 12, 12, 1)
    for i, crop in enumerate(test[:3, ..., 0]):
        assert _ssd_min(gray[natural_crops.TEST_IMAGES[i % 3]], crop) < 1e-8
    (train,) = take(data.build(cfg, "train", seed=0, train=True, per_process_batch=3), 1)
    for crop in train["image"][..., 0]:
        assert min(_ssd_min(gray[name], crop) for name in natural_crops.TRAIN_IMAGES) < 1e-8
        assert min(_ssd_min(gray[name], crop) for name in natural_crops.TEST_IMAGES) > 1e-4


def test_natural_crops_rgb_range():
    cfg = make_config(name="natural_crops", image_size=64, channels=3, num_eval_examples=4)
    (batch,) = list(data.build(cfg, "test", seed=0, train=False, per_process_batch=4))
    assert batch["image"].shape == (4, 64, 64, 3) and batch["image"].dtype == np.float32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert data.num_examples(cfg, "test") == 4


def test_set12_full_images_and_crops():
    cfg = make_config(name="set12", image_size=0)
    full = list(data.build(cfg, "test", seed=0, train=False, per_process_batch=1))
    assert len(full) == 12 and data.num_examples(cfg, "test") == 12
    assert {b["image"].shape for b in full} == {(1, 256, 256, 1), (1, 512, 512, 1)}
    assert [int(b["index"][0]) for b in full] == list(range(12))
    with pytest.raises(ValueError, match="different sizes"):
        data.build(cfg, "test", seed=0, train=False, per_process_batch=2)
    with pytest.raises(ValueError, match="no fixed element shape"):
        data.element_spec(cfg)
    crops = make_config(name="set12", image_size=40, channels=3)
    (batch,) = take(data.build(crops, "train", seed=0, train=True, per_process_batch=5), 1)
    assert batch["image"].shape == (5, 40, 40, 3) and 0.0 <= batch["image"].min() <= batch["image"].max() <= 1.0


def test_set12_missing_folder_says_where_and_how(tmp_path):
    cfg = make_config(name="set12", path=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="nowhere.*config.data.path"):
        data.validate_config(cfg)


def test_train400_random_crops_and_the_data_root_setting(tmp_path, monkeypatch):
    cfg = make_config(name="train400", image_size=128)
    assert data.num_examples(cfg, "train") == 400
    first, second = take(data.build(cfg, "train", seed=0, train=True, per_process_batch=4), 2)
    assert first["image"].shape == (4, 128, 128, 1) and not np.array_equal(first["image"], second["image"])
    monkeypatch.setenv("SPARSE_AE_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=f"{tmp_path}/train400.*SPARSE_AE_DATA_DIR"):
        data.validate_config(cfg)
    with pytest.raises(ValueError, match="dcea_official.*SPARSE_AE_DATA_DIR"):
        data.shared_path("dcea_official")


@pytest.fixture(name="folder")
def fixture_folder(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(np.full((20, 24, 3), (255, 0, 0), np.uint8)).save(tmp_path / "a_red.png")
    Image.fromarray(rng.integers(0, 256, (30, 20), dtype=np.uint8)).save(tmp_path / "b_gray.jpg")
    Image.fromarray(rng.integers(0, 256, (18, 18, 4), dtype=np.uint8)).save(tmp_path / "c_rgba.png")
    Image.fromarray(np.full((16, 16), 65535, np.uint16)).save(tmp_path / "d_16bit.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_conversions(folder):
    cfg = make_config(name="image_folder", path=str(folder), image_size=16, channels=1)
    assert [p.name for p in data.image_paths(cfg)] == ["a_red.png", "b_gray.jpg", "c_rgba.png", "d_16bit.png"]
    batches = list(data.build(cfg, "test", seed=0, train=False, per_process_batch=2))
    images = np.concatenate([b["image"] for b in batches])
    assert images.shape == (4, 16, 16, 1)
    np.testing.assert_allclose(images[0], 0.299, atol=1e-6)  # pure red -> BT.601 luma
    np.testing.assert_allclose(images[3], 1.0)
    rgb = make_config(name="image_folder", path=str(folder), image_size=8, channels=3, fit="resize")
    (batch,) = take(data.build(rgb, "train", seed=0, train=True, per_process_batch=4), 1)
    assert batch["image"].shape == (4, 8, 8, 3)


def test_image_folder_errors(folder, tmp_path_factory):
    with pytest.raises(ValueError, match="config.data.path is required"):
        data.validate_config(make_config(name="image_folder"))
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="holds no image files"):
        data.validate_config(make_config(name="image_folder", path=str(empty)))
    with pytest.raises(ValueError, match="d_16bit.png.*smaller than config.data.image_size=17"):
        data.validate_config(make_config(name="image_folder", path=str(folder), image_size=17))
    (folder / "e_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="cannot read image file.*e_broken.png"):
        data.build(make_config(name="image_folder", path=str(folder), image_size=8), "test",
                   seed=0, train=False, per_process_batch=1)


@pytest.mark.parametrize("fields,message", [
    (dict(name="mnist"), r"'mnist' is not a known data source; known: digits, natural_crops, .*tfds:<name>"),
    (dict(name="digits", image_size=0), r"config.data.image_size must be >= 1"),
    (dict(name="digits", image_size=-3), r"config.data.image_size must be >= 0"),
    (dict(name="natural_crops", image_size=301), r"config.data.image_size must be <= 300"),
    (dict(name="digits", channels=2), r"config.data.channels must be 1 or 3"),
    (dict(name="digits", image_size=8, random_crop_pad=8), r"config.data.random_crop_pad"),
    (dict(name="digits", fit="stretch"), r"config.data.fit must be one of"),
    (dict(name="synthetic_csc", image_size=10, csc=dict(stride=3)), r"config.data.csc.stride=3"),
    (dict(name="synthetic_csc", csc=dict(density=0.0)), r"config.data.csc.density"),
    (dict(name="synthetic_csc", random_flip=True), r"random_flip"),
    (dict(name="binomial_spikes", image_size=64, random_vflip=True), r"random_vflip would break the spike model"),
    (dict(name="tfds:"), r"needs a dataset name"),
    (dict(name="digits", train_fraction=0.0), r"config.data.train_fraction must be in \(0, 1\], got 0.0"),
    (dict(name="digits", train_fraction=1.5), r"config.data.train_fraction must be in \(0, 1\], got 1.5"),
])
def test_bad_config_values_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        data.validate_config(fields)


def test_unknown_and_ill_typed_fields_are_named():
    with pytest.raises(ValueError, match=r"unknown field config.data.imagesize; did you mean config.data.image_size\? known fields: name"):
        data.validate_config({"imagesize": 16})
    with pytest.raises(TypeError, match=r"config.data.image_size='16' has type str; expected int"):
        data.validate_config({"image_size": "16"})
    with pytest.raises(TypeError, match=r"config.data.csc.num_atoms=2.5 has type float; expected int"):
        data.validate_config({"name": "synthetic_csc", "csc": {"num_atoms": 2.5}})
    with pytest.raises(ValueError, match="split 'validation' is not a split of 'digits'"):
        data.build({"name": "digits"}, "validation", seed=0, train=False, per_process_batch=4)
    with pytest.raises(ValueError, match="shard_index"):
        data.build({"name": "digits"}, "train", seed=0, train=True, shard_index=2, shard_count=2,
                   per_process_batch=4)


def test_synthetic_csc_follows_the_model():
    from sparse_ae.data import synthetic_csc  # pylint: disable=import-outside-toplevel
    from sparse_ae.sparse_coding.operators import conv_synthesis  # pylint: disable=import-outside-toplevel

    cfg = make_config(name="synthetic_csc", image_size=16, channels=1,
                      csc=dict(num_atoms=6, kernel_size=5, stride=2, density=0.2, noise_std=0.1))
    kernel = synthetic_csc.ground_truth_dictionary(cfg)
    assert kernel.shape == (5, 5, 6, 1) and kernel.dtype == np.float32
    np.testing.assert_allclose(np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 3))), 1.0, rtol=1e-5)
    batches = take(data.build(cfg, "train", seed=0, train=True, per_process_batch=32), 2)
    batch = batches[0]
    assert batch["code"].shape == (32, 8, 8, 6) and batch["image"].shape == batch["clean"].shape == (32, 16, 16, 1)
    assert 0.1 < np.mean(batch["code"] != 0) < 0.3
    np.testing.assert_allclose(batch["clean"], conv_synthesis(kernel, batch["code"], stride=2), atol=1e-5)
    assert 0.08 < np.std(batch["image"] - batch["clean"]) < 0.12
    assert batches_differ(batches[:1], batches[1:])
    spec = data.element_spec(cfg)
    assert {k: v.shape for k, v in spec.items()} == {k: v.shape[1:] for k, v in batch.items()}
    test = list(data.build(cfg, "test", seed=5, train=False, per_process_batch=100))
    assert sum(int(b["valid"].sum()) for b in test) == 256 == data.num_examples(cfg, "test")
    assert_batches_equal(test, list(data.build(cfg, "test", seed=6, train=False, per_process_batch=100)))


def test_to_global_batch_on_eight_devices(run_python):
    """Each of 8 (fake CPU) devices holds its rows of the batch; values are unchanged."""
    code = textwrap.dedent("""
        import jax, numpy as np
        from jax.sharding import NamedSharding, PartitionSpec as P
        from sparse_ae import data
        mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
        batch = next(iter(data.build({"name": "digits", "image_size": 8}, "test", seed=0, train=False,
                                     per_process_batch=16)))
        out = data.to_global_batch(batch, NamedSharding(mesh, P("data")))
        assert set(out) == set(batch)
        for key, value in out.items():
            assert value.shape == batch[key].shape and value.dtype == batch[key].dtype
            assert {s.data.shape[0] for s in value.addressable_shards} == {2}
            np.testing.assert_array_equal(np.asarray(value), batch[key])
        print("ok")
    """)
    result = run_python(["-c", code], devices=8, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


@pytest.mark.parametrize("flip, vflip, moves", [(True, False, {"none", "h"}), (False, True, {"none", "v"}),
                                                (True, True, {"none", "h", "v", "hv"})])
def test_augmentation_flips_only_the_enabled_axes(flip, vflip, moves):
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    named = {"none": image, "h": image[:, ::-1], "v": image[::-1], "hv": image[::-1, ::-1]}
    seen = set()
    for seed in range(40):
        out = transforms.augment(image, np.random.default_rng(seed), flip=flip, vflip=vflip, crop_pad=0)
        seen |= {name for name, expected in named.items() if np.array_equal(out, expected)}
    assert seen == moves
