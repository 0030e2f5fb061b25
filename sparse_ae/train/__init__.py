"""The training framework: one generic loop that runs any task.

  task.py           the Task contract (init / train_step / eval_step / images) and get_task
  config_files.py   config files as the entry points read them: every left-out field filled in
  state.py          TrainState (step, params, opt_state, extra), NNX split helpers, norms
  sharding.py       the ("data", "model") mesh and shardings from config.mesh
  loop.py           train_and_evaluate(config, workdir): jit, step, check, log, save, evaluate
  checkpointing.py  orbax checkpoints of state + grain iterator; corrupt ones skipped
  writers.py        clu writers (console + TensorBoard), metrics.json, PNG grids
  tasks/            one module per method, found by name from config.task
"""
