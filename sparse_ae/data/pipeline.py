"""The generic grain pipeline shared by every source.

Order of operations (one dataset of *global* element positions, sharded last):

  train:  range(maxsize).map(position -> permutation of its epoch)   (unbounded sources: identity)
          .random_map(read + augment, seed)  per-example generator = f(seed, position)
  eval:   range(N padded up to a multiple of the global batch)
          .random_map(read + "valid", fixed seed)
  both:   .batch(per_process_batch) [.map(finish_batch)] .slice(shard_index::shard_count)
          .to_iter_dataset(ReadOptions)

Process p takes local batches p, p + P, p + 2P, ...; local batch b of every process together
form global batch b. So the global batches (process-major concatenation of local batches, as
``jax.make_array_from_process_local_data`` builds them) do not depend on the number of
processes, processes read disjoint examples, and every process gets the same number of eval
batches. The iterator state is a single position: ``get_state()`` / ``set_state()`` resume
exactly. Epoch e of a finite source is ``default_rng([seed, e]).permutation(N)``: grain's
``MapDataset.shuffle`` (index_shuffle) costs ~2 ms per element for N = 12 and ~26 us for N = 1500
(grain 0.2.18), too slow for small folders; a cached permutation is O(1) per element.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
from types import ModuleType

import grain
import jax
import numpy as np

from sparse_ae.data import transforms
from sparse_ae.data.config import DataConfig, check_common, parse
from sparse_ae.data.source import Source
from sparse_ae.data.tfds_source import PREFIX as TFDS_PREFIX

_MODULES = {
    "digits": "sparse_ae.data.digits",
    "natural_crops": "sparse_ae.data.natural_crops",
    "set12": "sparse_ae.data.image_files",
    "train400": "sparse_ae.data.image_files",
    "image_folder": "sparse_ae.data.image_files",
    "synthetic_csc": "sparse_ae.data.synthetic_csc",
    "binomial_spikes": "sparse_ae.data.binomial_spikes",
}
KNOWN_SOURCES = (*_MODULES, TFDS_PREFIX + "<name>")
# Seeds of the evaluation reads (fixed crops / synthetic examples) and the training streams.
EVAL_SEED = 20_250_101
_TRAIN_STREAM = 1
SUBSET_SEED = 20_251_205  # the permutation whose head is the train_fraction subset


def _module(cfg: DataConfig) -> ModuleType:
    if cfg.name.startswith(TFDS_PREFIX):
        return importlib.import_module("sparse_ae.data.tfds_source")
    if cfg.name not in _MODULES:
        raise ValueError(f"config.data.name={cfg.name!r} is not a known data source; known: "
                         f"{', '.join(KNOWN_SOURCES)}")
    return importlib.import_module(_MODULES[cfg.name])


def validate_config(data_config) -> DataConfig:
    """Checks ``config.data`` (fields, types, values, the source's files) without building a
    pipeline; raises ValueError/TypeError naming the field. Returns the parsed config."""
    cfg = parse(data_config)
    module = _module(cfg)
    check_common(cfg)
    module.validate(cfg)
    return cfg


def num_examples(data_config, split: str) -> int:
    """Examples in one evaluation pass over ``split`` (for natural_crops / synthetic_csc: the
    fixed evaluation set, ``num_eval_examples``; their training streams are unbounded)."""
    cfg = parse(data_config)
    return _module(cfg).make_source(cfg, split, train=False).length


def element_spec(data_config, *, train: bool = True) -> dict[str, jax.ShapeDtypeStruct]:
    """Shape/dtype of one example (no batch axis); evaluation examples add "valid" () bool."""
    cfg = parse(data_config)
    spec = dict(_module(cfg).element_spec(cfg))
    if not train:
        spec["valid"] = jax.ShapeDtypeStruct((), np.bool_)
    return spec


@functools.lru_cache(maxsize=16)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


@functools.lru_cache(maxsize=16)
def training_subset(n: int, fraction: float) -> np.ndarray:
    """Indices (sorted) of the ⌈fraction·n⌉ examples of an n-example split that training reads."""
    if fraction >= 1:
        return np.arange(n)
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[:math.ceil(fraction * n)])


def _train_examples(cfg: DataConfig, source: Source, seed: int) -> grain.MapDataset:
    shuffle_seed, map_seed = (int(s) for s in np.random.SeedSequence([seed, _TRAIN_STREAM]).generate_state(2))
    positions = grain.MapDataset.range(sys.maxsize)
    if source.length is not None:
        subset = training_subset(source.length, cfg.train_fraction)
        n = len(subset)
        positions = positions.map(lambda p: int(subset[_permutation(shuffle_seed, p // n, n)[p % n]]))
    elif cfg.train_fraction < 1:
        raise ValueError(f"config.data.train_fraction={cfg.train_fraction} needs a finite source; "
                         f"{cfg.name!r} draws fresh examples for every step")
    augment = source.augment and (cfg.random_flip or cfg.random_vflip or cfg.random_crop_pad)

    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        example = source.read(index, rng)
        if augment:
            move = functools.partial(transforms.augment, rng=rng, flip=cfg.random_flip, vflip=cfg.random_vflip,
                                     crop_pad=cfg.random_crop_pad)
            if "mask" in example:  # a mask moves with its image
                image, mask = transforms.with_mask(move, example["image"], example["mask"])
                example = {**example, "image": image, "mask": mask}
            else:
                example = {**example, "image": move(example["image"])}
        return example

    return positions.random_map(read, seed=map_seed)


def _eval_examples(source: Source, global_batch: int) -> grain.MapDataset:
    n = source.length
    padded = -(-n // global_batch) * global_batch

    def read(position: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        # Padding repeats real examples (finite values) flagged invalid.
        return {**source.read(position % n, rng), "valid": np.bool_(position < n)}

    return grain.MapDataset.range(padded).random_map(read, seed=EVAL_SEED)


def build(data_config, split: str, *, seed: int, train: bool, shard_index: int = 0,
          shard_count: int = 1, per_process_batch: int) -> grain.IterDataset:
    """A grain pipeline of this process's batches: dicts of numpy arrays with leading axis
    ``per_process_batch`` ("image" (B, H, W, C) float32, "label" (B,) int32 where the source has
    labels, source-specific keys; evaluation adds "valid" (B,) bool).

    train=True: shuffled with ``seed``, repeated forever, random crops/augmentation per example.
    train=False: one pass in order, the last global batch padded (valid=False) to full size;
    independent of ``seed``. ``iter(ds)`` is a ``grain.DatasetIterator`` whose
    ``get_state()``/``set_state()`` make resumption exact.
    """
    cfg = validate_config(data_config)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"need 0 <= shard_index < shard_count, got shard_index={shard_index}, "
                         f"shard_count={shard_count}")
    if per_process_batch < 1:
        raise ValueError(f"per_process_batch must be >= 1, got {per_process_batch}")
    source = _module(cfg).make_source(cfg, split, train)
    global_batch = per_process_batch * shard_count
    if len(source.sizes) > 1 and global_batch > 1:
        raise ValueError(f"{cfg.name!r} images have different sizes {list(source.sizes)} and "
                         "config.data.image_size=0 keeps them whole: use a global batch size of 1 "
                         "or set config.data.image_size")
    examples = _train_examples(cfg, source, int(seed)) if train else _eval_examples(source, global_batch)
    batches = examples.batch(per_process_batch, drop_remainder=True)
    if source.finish_batch is not None:
        batches = batches.map(source.finish_batch)
    batches = batches.slice(slice(shard_index, None, shard_count))
    return batches.to_iter_dataset(grain.ReadOptions(num_threads=cfg.num_threads,
                                                     prefetch_buffer_size=cfg.prefetch))
