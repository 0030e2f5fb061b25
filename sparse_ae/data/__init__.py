"""Input pipelines (grain) for every data source; see :mod:`sparse_ae.data.pipeline`.

Sources (``config.data.name``): "digits", "natural_crops", "set12", "train400",
"image_folder", "synthetic_csc", "binomial_spikes", "tfds:<name>". Fields of ``config.data``: :func:`default_config`.
"""

from sparse_ae.data.config import SOURCE_SECTIONS, DataConfig, default_config
from sparse_ae.data.image_files import image_paths, shared_data_dir, shared_path
from sparse_ae.data.pipeline import KNOWN_SOURCES, build, element_spec, num_examples, validate_config
from sparse_ae.data.sharding import to_global_batch

__all__ = [
    "KNOWN_SOURCES", "SOURCE_SECTIONS", "DataConfig", "build", "default_config", "element_spec", "image_paths",
    "num_examples", "shared_data_dir", "shared_path", "to_global_batch", "validate_config",
]
