"""Convolutional BPDN on CPU, time to a 1e-4 relative objective gap: this project's ADMM and FISTA against SPORCO.

    python -m benchmarks.vs_sporco [--quick] [--cpu_devices N] [--problems P1,P2] [--out DIR | --out FILE.json]
    python -m benchmarks.vs_sporco --quick --out=benchmarks/results   # the committed vs_sporco.json (~4 min)
    python -m benchmarks.vs_sporco --out=benchmarks/results/vs_sporco_full.json   # and vs_sporco_full.json (~33 min)

Problems (circular boundary; objective ½‖Σ_m d_m ∗ x_m − s_k‖² + λ‖x‖₁ summed over the images k):

    P1  1 image 96×96       16 random unit-norm 5×5 filters (seed 0)   λ 0.05
    P2  4 images 64×64      12 random unit-norm 9×9 filters (seed 1)   λ 0.05
    P3  1 image 128×128     SPORCO's learned G:8x8x32 (32 filters 8×8)  λ 0.05
    P4  32 images 128×128   G:8x8x32                                   λ 0.1   (--quick: 2 images; P1–P3 unchanged)

Images: non-overlapping crops of Set12 (files in name order, tiles row by row), scaled to [0, 1] and high-passed as
in SPORCO's examples (``signal.tikhonov_filter``, λ 5). λ 0.05 as SPORCO's CBPDN examples; 0.1 for the batch problem P4.
An iterate is within the gap once F − F* ≤ 1e-4·F*, F* the lowest objective any solver reached (final codes
evaluated in float64, and SPORCO's float64 histories). Time: wall time to the first iterate within the gap, without
objective evaluation or set-up (spectra of dictionary and signals, FFTW planning, JAX compilation).

- SPORCO ``admm.cbpdn.ConvBPDN``, default options (HighMemSolve False, adaptive ρ, relaxation 1.8), float64 and
  float32 (``DataType``), 1 and 2 threads (``sporco.fft.pyfftw_threads``; BLAS by threadpoolctl). Objective read at
  Y, the codes it returns (``AuxVarObj``: changes no iterate); timer ``IterTimer='solve_wo_func'``; a 2-step solve
  first makes the FFTW plans; runs stop just past the gap of a reference F (or at the iteration cap: ">cap"); a
  run shorter than ``SPORCO_REPEAT_UNDER`` = 10 s is run 3 times, its time the median (as this project's).
- SPORCO ``pgm.cbpdn.ConvBPDN`` (FISTA, step 1/L, L the exact circular Lipschitz constant), float64, 1 thread.
- sparse_ae ADMM (``admm.run``: ConvBPDN's iteration) on one device and split over the ``--cpu_devices`` CPU
  devices (default: one per core; by images where they divide the image count, else by atoms; problem and start
  placed on the devices before timing, ``admm.place``, as SPORCO's set-up is outside its timer), and FISTA
  (``solvers.fista``, ``operators.conv_operator``, step 1/L, rolled scan) on one device, float32. JAX starts with
  that many CPU devices (``jax_num_cpu_devices``); XLA:CPU runs one device's FFTs and most passes on one core, so
  the split is what uses them all. n* is read off each one's recorded run (their final codes give the reference
  F); n* steps are then timed after compilation (ADMM with ``record_objective=False``, FISTA without history):
  the median of ≥ 3 runs interleaved with the SPORCO runs, each after untimed calls of the same solve for at
  least ``WARM_UP`` = 0.2 s (``common.time_warm``). "first call" is the median of the first of those calls, right
  after a SPORCO run or another solver. A core left idle can run slowly for tens of ms (in a probe, the split
  ADMM's first call on P2 right after a SPORCO run took 38 ms against 21 ms warm); a timed SPORCO solve follows
  its planning solve and spreads such a cost over tens of iterations. "ADMM speed-up" divides by the split
  ADMM's time.

Per problem, one ADMM step next to the forward + inverse FFT of its codes (XLA in ``admm``'s chunks; FFTW) and to
the step a 5× speed-up over SPORCO ADMM float64 on 1 thread allows. Also the FFT/memory floor of one ADMM step on
the last problem's codes (P4's (B, 32, 128, 128) float32 by default; ``--problems`` picks problems): forward +
inverse real 2-D FFT by XLA (in a jitted loop; in ``admm``'s chunks of images, at once, and channel-last), by
scipy.fft and pyfftw (FFTW_MEASURE) with 1 and 2 threads, and one pass over memory (``0.5 z + 1``), next to the
ADMM's s/iter there.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pyfftw
import scipy.fft
import sporco.fft
from PIL import Image
from sporco import signal, util
from sporco.admm import cbpdn as admm_cbpdn
from sporco.pgm import cbpdn as pgm_cbpdn
from threadpoolctl import threadpool_limits

from benchmarks import common
from sparse_ae import data as data_lib
from sparse_ae.sparse_coding import admm, operators, solvers

GAP = 1e-4
STOP = 0.25        # SPORCO runs stop at F_ref·(1 + STOP·GAP): past the gap even if F* ends a little below F_ref
ADMM_ITERS = 500   # cap of every ADMM run (the reference included)
FISTA_ITERS = 1000  # cap of every FISTA run
REPEATS = 3        # timings at n*: of this project's solvers, and of SPORCO's runs under SPORCO_REPEAT_UNDER
WARM_UP = 0.2      # seconds of untimed calls of the same solve before each JAX timing (common.time_warm)
SPORCO_REPEAT_UNDER = 10.0  # seconds: a SPORCO run shorter than this runs REPEATS times (median time at n*)
QUICK_P4_IMAGES = 2
FLOOR_REPS = 10   # XLA FFTs and memory passes per timed call of the floor


class Spec(NamedTuple):
    """One CBPDN problem."""

    images: int
    size: int
    filters: str | tuple[int, int, int]  # SPORCO dictionary name, or (size, count, seed) of random unit-norm ones
    lam: float


PROBLEMS = {"P1": Spec(1, 96, (5, 16, 0), 0.05), "P2": Spec(4, 64, (9, 12, 1), 0.05),
            "P3": Spec(1, 128, "G:8x8x32", 0.05), "P4": Spec(32, 128, "G:8x8x32", 0.1)}
# (label, SPORCO method, DataType, threads)
SPORCO_RUNS = (("SPORCO ADMM float64, 1 thread", "admm", np.float64, 1),
               ("SPORCO ADMM float64, 2 threads", "admm", np.float64, 2),
               ("SPORCO ADMM float32, 1 thread", "admm", np.float32, 1),
               ("SPORCO ADMM float32, 2 threads", "admm", np.float32, 2),
               ("SPORCO PGM/FISTA float64, 1 thread", "pgm", np.float64, 1))
ADMM_LABEL = "sparse_ae ADMM float32"  # one device


def jax_label(kind: str) -> str:
    """The table label of one of this project's solvers ("admm" | "admm_split" | "fista")."""
    return {"admm": ADMM_LABEL, "admm_split": f"{ADMM_LABEL}, {jax.device_count()} CPU devices",
            "fista": "sparse_ae FISTA float32"}[kind]


def describe(filters: str | tuple[int, int, int]) -> str:
    """A dictionary's name in the tables: "G:8x8x32" or e.g. "16 random 5x5"."""
    if isinstance(filters, str):
        return filters
    size, count, _ = filters
    return f"{count} random {size}x{size}"


def load_problem(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """(filters (k, k, M), high-passed crops (size, size, images)), float64 in SPORCO's layout."""
    crops = []
    set12 = data_lib.shared_path("set12")
    for path in sorted(set12.glob("*.png")):
        image = np.asarray(Image.open(path).convert("L"), np.float64) / 255.0
        crops += [image[i:i + spec.size, j:j + spec.size] for i in range(0, image.shape[0] - spec.size + 1, spec.size)
                  for j in range(0, image.shape[1] - spec.size + 1, spec.size)]
    if len(crops) < spec.images:
        raise ValueError(f"{set12} gives {len(crops)} crops of {spec.size}x{spec.size}, fewer than {spec.images}")
    _, high = signal.tikhonov_filter(np.stack(crops[:spec.images], axis=-1), 5.0, 16)
    if isinstance(spec.filters, str):
        return util.convdicts()[spec.filters], high
    size, count, seed = spec.filters
    filters = np.random.default_rng(seed).standard_normal((size, size, count))
    return filters / np.sqrt(np.sum(filters ** 2, axis=(0, 1))), high


def objective64(filters: np.ndarray, images: np.ndarray, codes: np.ndarray, lam: float) -> float:
    """CBPDN objective in float64 by FFT: filters (k, k, M), images (N, N, B), codes (B, N, N, M)."""
    codes = np.asarray(codes, np.float64)
    spectrum = np.fft.rfft2(filters, s=images.shape[:2], axes=(0, 1))
    recon = np.fft.irfft2(np.einsum("hwm,bhwm->bhw", spectrum, np.fft.rfft2(codes, axes=(1, 2))),
                          s=images.shape[:2], axes=(1, 2))
    return float(0.5 * np.sum((recon - images.transpose(2, 0, 1)) ** 2) + lam * np.sum(np.abs(codes)))


def first_within(history: np.ndarray, optimum: float) -> int | None:
    """1-based first iteration whose objective is within GAP (relative) of ``optimum``."""
    hits = np.flatnonzero((np.asarray(history) - optimum) <= GAP * optimum)
    return int(hits[0]) + 1 if hits.size else None


def run_sporco(method: str, dtype, threads: int, filters: np.ndarray, images: np.ndarray, lam: float,
               lipschitz: float, stop_at: float, max_iters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(objective per iteration, cumulative solve time without objective evaluation, codes (B, N, N, M))."""
    options = {"RelStopTol": 0.0, "IterTimer": "solve_wo_func", "Verbose": False, "DataType": dtype}
    if method == "pgm":
        solver_class = pgm_cbpdn.ConvBPDN
        options.update({"L": lipschitz, "Backtrack": None})
    else:
        solver_class = admm_cbpdn.ConvBPDN
        options.update({"AuxVarObj": True})

    def make(**changes):
        return solver_class(filters, images, lam, solver_class.Options({**options, **changes}), dimK=1)

    sporco.fft.pyfftw_threads = threads
    with threadpool_limits(limits=threads, user_api="blas"):
        make(MaxMainIter=2).solve()  # FFTW plans for these shapes, dtype and threads
        solver = make(MaxMainIter=max_iters, Callback=lambda solver: solver.itstat[-1].ObjFun <= stop_at)
        solver.solve()
    stats = solver.getitstat()
    codes = solver.getmin()[:, :, 0].transpose(2, 0, 1, 3)  # (N, N, 1, B, M) -> (B, N, N, M)
    return np.asarray(stats.ObjFun, np.float64), np.asarray(stats.Time), codes


class JaxSolvers:
    """This project's ADMM (one device; split over every device when there are several) and FISTA on one problem
    (float32): recorded runs, and timed runs of n steps."""

    def __init__(self, filters: np.ndarray, images: np.ndarray, lam: float, lipschitz: float):
        kernel = jnp.asarray(filters[:, :, :, None], jnp.float32)
        self.signal = jnp.asarray(images.transpose(2, 0, 1)[..., None], jnp.float32)
        problem = admm.make_problem(kernel, self.signal, lam)
        start = admm.init_state(problem)
        self.admm = {"admm": (problem, start, None)}  # kind -> (problem, start, mesh)
        if jax.device_count() > 1:
            mesh = admm.device_mesh(jax.devices())
            self.admm["admm_split"] = (*admm.place(problem, start, mesh), mesh)
        op = operators.conv_operator(kernel)
        self.fista = jax.jit(lambda y, n, history: solvers.fista(op, y, lam, 1 / lipschitz, n, unroll=1,
                                                                 return_history=history), static_argnums=(1, 2))
        # kind -> [(steps, seconds after the warm-up, seconds of the warm-up's first call)]
        self.times: dict[str, list[tuple[int, float, float]]] = {kind: [] for kind in (*self.admm, "fista")}

    def recorded(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{"admm" | "admm_split" | "fista": (objective per step (cap,), final codes (B, N, N, M))}."""
        runs = {}
        for kind, (problem, start, mesh) in self.admm.items():
            state, record = admm.run(problem, start, ADMM_ITERS, mesh=mesh)
            runs[kind] = (np.asarray(record.objective), np.moveaxis(np.asarray(state.y), 1, -1))
        codes, history = self.fista(self.signal, FISTA_ITERS, True)
        return {**runs, "fista": (np.asarray(history), np.asarray(codes))}

    def time(self, kind: str, steps: int) -> None:
        """Times ``steps`` steps of ``kind`` once, warm and cold (after a compiling call for a new ``steps``)."""
        if kind in self.admm:
            problem, start, mesh = self.admm[kind]
            fn, args = admm.run, (problem, start, steps, 0.0, False, mesh)
        else:
            fn, args = self.fista, (self.signal, steps, False)
        if not any(n == steps for n, _, _ in self.times[kind]):
            jax.block_until_ready(fn(*args))
        first, warm = common.time_warm(fn, *args, warm_seconds=WARM_UP)
        self.times[kind].append((steps, warm, first))

    def seconds(self, kind: str, steps: int, first_calls: bool = False) -> list[float]:
        """The timings of ``steps`` steps of ``kind``: after the warm-up, or (``first_calls``) its first calls."""
        return [first if first_calls else warm for n, warm, first in self.times[kind] if n == steps]


def bench_problem(name: str, spec: Spec) -> dict:
    """Runs every solver on one problem; returns its record (rows, optimum, timings)."""
    filters, images = load_problem(spec)
    lipschitz = float(operators.circular_lipschitz(jnp.asarray(filters[:, :, :, None]), images.shape[:2]))
    mine = JaxSolvers(filters, images, spec.lam, lipschitz)
    start = time.perf_counter()
    recorded = mine.recorded()
    finals = [objective64(filters, images, codes, spec.lam) for _, codes in recorded.values()]
    reference = min(finals)
    print(f"{name}: recorded runs in {time.perf_counter() - start:.1f} s, reference F {reference:.6f}", flush=True)

    def time_mine(optimum: float) -> None:
        for kind, (history, _) in recorded.items():
            steps = first_within(history, optimum)
            if steps:
                mine.time(kind, steps)

    time_mine(reference)
    sporco_runs = {}
    for label, method, dtype, threads in SPORCO_RUNS:  # each followed by JAX timings (a shared machine)
        cap = FISTA_ITERS if method == "pgm" else ADMM_ITERS
        args = (method, dtype, threads, filters, images, spec.lam, lipschitz, reference * (1 + STOP * GAP), cap)
        history, seconds, codes = run_sporco(*args)
        timings = [seconds]
        while len(timings) < REPEATS and seconds[-1] < SPORCO_REPEAT_UNDER:
            timings.append(run_sporco(*args)[1])
        sporco_runs[label] = (history, timings)
        finals.append(objective64(filters, images, codes, spec.lam))
        if dtype == np.float64:
            finals.append(float(np.min(history)))
        print(f"{name}: {label}: {len(history)} iterations", flush=True)
        time_mine(reference)
    optimum = min(finals)
    steps = {kind: first_within(history, optimum) for kind, (history, _) in recorded.items()}
    for kind, n in steps.items():
        while n and len(mine.seconds(kind, n)) < REPEATS:
            mine.time(kind, n)

    rows = []
    for kind, n in steps.items():
        row = {"problem": name, "solver": jax_label(kind), "iterations": n or f">{len(recorded[kind][0])}"}
        if n:
            seconds = float(np.median(mine.seconds(kind, n)))
            row.update({"seconds": seconds, "s/iter": seconds / n,
                        "first call": float(np.median(mine.seconds(kind, n, first_calls=True)))})
        rows.append(row)
    for label, (history, timings) in sporco_runs.items():
        n = first_within(history, optimum)
        row = {"problem": name, "solver": label, "iterations": n or f">{len(history)}"}
        if n:
            seconds = float(np.median([t[n - 1] for t in timings if len(t) >= n]))
            row.update({"seconds": seconds, "s/iter": seconds / n})
        rows.append(row)
    ours = jax_label("admm_split" if "admm_split" in steps else "admm")
    admm_seconds = next(row.get("seconds") for row in rows if row["solver"] == ours)
    for row in rows:
        if admm_seconds and "seconds" in row:
            row["ADMM speed-up"] = row["seconds"] / admm_seconds
    return {"spec": spec._asdict(), "optimum": optimum, "lipschitz": lipschitz, "rows": rows,
            "jax_times": {kind: mine.seconds(kind, n) for kind, n in steps.items() if n}}


def code_shape(spec: Spec) -> tuple[int, int, int, int]:
    """(images, M, size, size): the ADMM's channel-major codes of a problem."""
    count = util.convdicts()[spec.filters].shape[-1] if isinstance(spec.filters, str) else spec.filters[1]
    return spec.images, count, spec.size, spec.size


def fftw_label(threads: int) -> str:
    return f"pyfftw rfft2 + irfft2, {threads} thread(s)"


def fft_floor(shape: tuple[int, int, int, int]) -> list[dict]:
    """Seconds of forward + inverse real 2-D FFTs and of one memory pass on float32 codes of ``shape`` (B, M, H, W):
    medians of interleaved rounds; XLA's per repetition of a jitted loop of FLOOR_REPS (buffers reused, as in the
    ADMM loop), on the whole array, channel-last, and in the chunks of images ``admm.step`` uses; the host
    libraries' per call on their planned or allocated buffers. The first row is the chunked XLA round trip."""
    codes = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    hw = codes.shape[-2:]
    size = admm.images_per_chunk(codes.shape, codes.dtype)

    def round_trip(a, axes=(-2, -1)):
        return jnp.fft.irfft2(jnp.fft.rfft2(a, axes=axes), s=hw, axes=axes)

    def xla_loop(body):
        return jax.jit(lambda z: jax.lax.fori_loop(0, FLOOR_REPS, lambda _, a: body(a), z))

    cases = {f"XLA rfft2 + irfft2, chunks of {size} image(s) as admm": (
                     xla_loop(lambda a: jax.lax.map(round_trip, a.reshape((-1, size) + a.shape[1:])).reshape(a.shape)),
                     (jnp.asarray(codes),)),
             "XLA rfft2 + irfft2, (B, M, H, W) at once": (xla_loop(round_trip), (jnp.asarray(codes),)),
             "XLA rfft2 + irfft2, (B, H, W, M) axes (1, 2)": (
                     xla_loop(lambda a: round_trip(a, axes=(1, 2))), (jnp.asarray(np.moveaxis(codes, 1, -1)),)),
             "XLA one memory pass (0.5 z + 1)": (xla_loop(lambda a: 0.5 * a + 1), (jnp.asarray(codes),))}
    for workers in (1, 2):
        cases[f"scipy.fft rfft2 + irfft2, {workers} worker(s)"] = (
                lambda z, w=workers: scipy.fft.irfft2(scipy.fft.rfft2(z, workers=w), s=hw, workers=w), (codes,))
    for threads in (1, 2):
        forward = pyfftw.builders.rfft2(pyfftw.empty_aligned(codes.shape, "float32"), threads=threads,
                                        planner_effort="FFTW_MEASURE")
        inverse = pyfftw.builders.irfft2(pyfftw.empty_aligned(forward.output_shape, "complex64"), s=hw,
                                         threads=threads, planner_effort="FFTW_MEASURE")
        cases[fftw_label(threads)] = (lambda z, f=forward, i=inverse: i(f(z)), (codes,))
    times, _ = common.time_interleaved(cases, repeats=5)
    return [{"operation": name, "seconds": float(np.median(t)) / (FLOOR_REPS if name.startswith("XLA") else 1)}
            for name, t in times.items()]


def step_floor_row(name: str, shape: tuple[int, ...], rows: list[dict], floor: list[dict]) -> dict:
    """One problem's ADMM s/iter (one device, and split over all) next to the forward + inverse FFT of its codes
    (XLA as the one-device ADMM runs it, and FFTW) and to the step that 5x SPORCO float64 on 1 thread allows (its
    s/iter / 5)."""
    per_iter = {row["solver"]: row.get("s/iter") for row in rows}
    ffts = {row["operation"]: row["seconds"] for row in floor}
    budget = per_iter["SPORCO ADMM float64, 1 thread"] and per_iter["SPORCO ADMM float64, 1 thread"] / 5
    xla = floor[0]["seconds"]
    return {"problem": name, "codes": "x".join(map(str, shape)), "ADMM step": per_iter[ADMM_LABEL],
            "ADMM step, all devices": per_iter.get(jax_label("admm_split")),
            "XLA FFTs": xla, "FFTW 1 thread": ffts[fftw_label(1)],
            "FFTW 2 threads": ffts[fftw_label(2)], "step at 5x": budget,
            "XLA FFTs / step at 5x": budget and xla / budget}


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--cpu_devices", type=int, default=os.cpu_count() or 1,
                        help="CPU devices JAX starts with, which the split ADMM shares its codes over (default: "
                             "one per core; 1: no split run)")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma list of problems (default: all)")
    args = parser.parse_args()
    names = args.problems.split(",")
    if set(names) - PROBLEMS.keys():
        parser.error(f"--problems: unknown problem(s) in {args.problems!r}; known: {list(PROBLEMS)}")
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)  # before JAX starts its CPU backend
    problems = {name: PROBLEMS[name] for name in names}
    if args.quick and "P4" in problems:
        problems["P4"] = problems["P4"]._replace(images=QUICK_P4_IMAGES)
    results = {name: bench_problem(name, spec) for name, spec in problems.items()}
    rows = [row for result in results.values() for row in result["rows"]]
    common.print_table(f"time to a {GAP:g} relative objective gap (ADMM speed-up: the solver's seconds / "
                       "the split sparse_ae ADMM's)", rows,
                       ["problem", "solver", "iterations", "seconds", "s/iter", "ADMM speed-up", "first call"])
    summary = []
    for name, result in results.items():
        speedup = {row["solver"]: row.get("ADMM speed-up") for row in result["rows"]}  # over the split ADMM
        vs64, vs32 = speedup["SPORCO ADMM float64, 1 thread"], speedup["SPORCO ADMM float32, 2 threads"]
        one_device = speedup[ADMM_LABEL]
        spec = problems[name]
        summary.append({"problem": name, "images": spec.images, "size": spec.size, "filters": describe(spec.filters),
                        "lam": spec.lam, "F*": result["optimum"], "devices": jax.device_count(),
                        "vs SPORCO f64 1 thread": vs64, "target >= 5": bool(vs64 and vs64 >= 5),
                        "vs SPORCO f32 2 threads": vs32, "target > 1": bool(vs32 and vs32 > 1),
                        "one device vs SPORCO f64 1 thread": vs64 and one_device and vs64 / one_device})
    common.print_table("sparse_ae ADMM (split over the devices) speed-up over SPORCO ADMM", summary)
    floors = {name: fft_floor(code_shape(spec)) for name, spec in problems.items()}
    detail = names[-1]  # the floor in detail: of the last problem, P4 by default
    floor = floors[detail]
    for row in results[detail]["rows"]:
        if row["solver"].startswith(ADMM_LABEL) and "s/iter" in row:
            devices = row["solver"].removeprefix(ADMM_LABEL).strip(", ") or "1 device"
            floor.append({"operation": f"sparse_ae ADMM, one step on {detail}, {devices}", "seconds": row["s/iter"]})
    for row in floor:
        row["vs admm's FFTs"] = row["seconds"] / floor[0]["seconds"]
    common.print_table(f"FFT/memory floor of one ADMM step: codes {code_shape(problems[detail])} float32", floor)
    step_floor = [step_floor_row(name, code_shape(problems[name]), results[name]["rows"], floors[name])
                  for name in problems]
    common.print_table("one ADMM step against its FFTs and the step a 5x speed-up allows (seconds)", step_floor)
    if args.out:
        common.write_json(args.out, "vs_sporco", {
                "quick": args.quick, "gap": GAP, "admm_iters": ADMM_ITERS, "fista_iters": FISTA_ITERS,
                "rows": rows, "summary": summary, "fft_floor": floor, "step_floor": step_floor,
                "problems": {name: {k: v for k, v in result.items() if k != "rows"}
                             for name, result in results.items()},
                "note": "machine shared with other jobs; JAX timings are medians of runs interleaved "
                        f"with the SPORCO runs, each after {WARM_UP} s of untimed calls of the same solve"})


if __name__ == "__main__":
    main()
