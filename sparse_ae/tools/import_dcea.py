"""Import an official DCEA network into a workdir:
``python -m sparse_ae.tools.import_dcea NETWORK.npz --workdir DIR [--config configs/dcea_poisson_denoise.py]``.

Reads the authors' tensors and hyper-parameters (:mod:`sparse_ae.models.dcea_official`), builds
the Poisson config for that network (``tied`` or ``untied``, its ``peak``) and writes a workdir
as training would: ``config.json`` and an orbax checkpoint at step 0 holding the imported
parameters (and a fresh optimizer state). Then
``python -m sparse_ae.evaluate --workdir DIR --images ../shared/data/set12`` runs the paper's
protocol (on any folder of images), and ``python -m sparse_ae.main`` with the same config and
``--workdir DIR`` fine-tunes from the imported weights. A workdir that already holds a
checkpoint is refused and left as it is.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp

from sparse_ae.models import dcea_official
from sparse_ae.train import checkpointing, config_files, loop, validation
from sparse_ae.utils import cli

DEFAULT_CONFIG = "configs/dcea_poisson_denoise.py"


def imported_config(npz_path: str, config_file: str = DEFAULT_CONFIG):
    """``(config, params)``: ``config_file`` for the network's variant and peak, its model fields
    replaced by the network's (validated), and the network's parameters."""
    fields, params = dcea_official.load(npz_path)
    variant = "tied" if fields["tied"] else "untied"
    config = config_files.load(f"{config_file}:{variant},peak={fields['peak']:g}")
    config.model.update(fields)
    validation.validate_run(config, num_devices=jax.device_count(), process_count=jax.process_count())
    return config, params


def import_network(npz_path: str, workdir: str, config_file: str = DEFAULT_CONFIG) -> int:
    """Writes the workdir (see the module docstring); returns the number of imported scalars."""
    config, params = imported_config(npz_path, config_file)
    path = loop.check_workdir(workdir)
    checkpointer = checkpointing.Checkpointer(path, config.train.keep_checkpoints)
    try:
        if checkpointer.latest_step() is not None:
            raise ValueError(f"--workdir={workdir!r} already holds checkpoints; import into a new workdir")
        dataset = loop.build_dataset(config, config.train.split, train=True, batch_size=config.data.batch_size)
        example = {k: v for k, v in next(iter(dataset)).items() if k != "valid"}
        run = loop.build_run(config, example)
        with jax.set_mesh(run.mesh):
            state = run.init(jax.random.key(config.seed), run.global_batch(example))
            shardings = jax.tree.map(lambda a: a.sharding, state.params)
            state = state.replace(params=jax.tree.map(
                    lambda value, sharding: jax.device_put(jnp.asarray(value), sharding), params, shardings))
            checkpointer.save(0, state, iter(dataset))
    finally:
        checkpointer.close()
    config_files.save(config, path)
    return sum(v.size for v in params.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("network", help="an official network, e.g. ../shared/data/dcea_official/untied_peak1.npz "
                                        "(its .json beside it)")
    parser.add_argument("--workdir", required=True, help="new workdir to write")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file whose data, optimizer and evaluators "
                                                                  "the workdir uses")
    args = parser.parse_args(argv)
    with cli.mistakes_in_one_line():
        count = import_network(args.network, args.workdir, args.config)
    print(f"imported {count} parameters of {args.network} into {args.workdir} (checkpoint at step 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
