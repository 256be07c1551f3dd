"""The steps of one job, each a library function: the experiment notebook calls them one per
notebook cell, and :func:`run_job` composes them for tests and scripts.

A job loads its data, trains (or loads) its target and the evaluator once, then runs every
cell — an attack under the cell's inference defenses — writing each cell's files as soon as
it is done and skipping cells already complete.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from bench.attacker.host import ATTACK_TIMEOUT, run_attack
from bench.attacker.tasks import Inversion, Membership
from bench.attacks.base import Attack, AttackRefused, AttackResult, InversionAttack
from bench.attacks.latent import GenerativePrior
from bench.attacks.membership import MembershipAttack, MembershipResult, Population
from bench.cell_images import reconstruction_grid, sample_sheet
from bench.config import CellSpec, JobSpec, SavedTarget, TrainSpec
from bench.data.base import DataSplits
from bench.defenses.base import TrainingDefense
from bench.errors import ConfigError
from bench.files import atomic_write_bytes, atomic_write_parquet
from bench.judges import JudgePanel, train_evaluator, train_panel
from bench.membership.challenge import challenge_set
from bench.membership.metrics import membership_rows
from bench.membership.shadow import ShadowRecipe
from bench.metrics import Judged, extra_rows, reconstruction_rows, scalar_rows
from bench.metrics.identification import top_k_hits
from bench.models import ArtifactCache, Classifier, TrainedModel, TrainingPlan, accuracy, build, fit
from bench.models.architectures import parameter_count
from bench.models.generative import GanPrior, PriorPlan, train_gan
from bench.models.saved import check_fits, file_digest, load_saved
from bench.models.training import balanced_accuracy, plan_for
from bench.oracle import BaseOracle, Oracle, ThreatModel, defended_probabilities
from bench.provenance import code_fingerprint, code_version, required_fingerprint
from bench.registry import METRICS, load_plugin_files
from bench.results import ResultsDir
from bench.seeds import generator, stream_seed

PRIOR_SEED = 20_000  # one generator prior per dataset, like the judge


class Endpoint(Protocol):
    """A target served elsewhere (``bench attack --url``), in place of a trained one: the cell's
    oracle and what an honest user measures come through it."""

    info: dict[str, Any]  # test_acc and train_acc as an honest user measures them through it

    def oracle(self, cell: CellSpec, attack: Attack) -> BaseOracle:
        """The attacker's oracle for ``cell``, with the attack's budget."""

    def accuracy(self, cell: CellSpec) -> float:
        """Top-1 accuracy on held-out private data through the endpoint, not charged to the attacker."""


@dataclass
class JobContext:
    """What every cell of a job shares: data, target, evaluator and their accuracies."""

    job: JobSpec
    splits: DataSplits
    target: TrainedModel | Endpoint
    evaluator: TrainedModel
    prior: TrainedModel[GanPrior] | None = None  # the generator prior, when a cell of the job searches it
    cache_dir: str | Path = "results/.cache"  # where membership attacks' shadow models are cached
    panel: JudgePanel | None = None  # the open-set and second judges beside the evaluator
    attack_timeout: float = ATTACK_TIMEOUT  # seconds a cell's attacker process may run

    @property
    def utility(self) -> dict[str, float]:
        """The target's accuracies — on its training images, each identity weighing the same (an
        over-represented one would otherwise fill ``train_acc`` and the gap), and on held-out
        images — under DP-SGD the (epsilon, delta) its accountant spent, under Trap-MID how often
        its trapdoor opened."""
        info = self.target.info
        out = {"test_acc": info["test_acc"], "train_acc": info["train_acc"], "gap": info["train_acc"] - info["test_acc"]}
        if info.get("epsilon") is not None:
            out.update(epsilon=float(info["epsilon"]), delta=float(info["delta"]))
        if info.get("trapdoor_acc") is not None:
            out.update(trapdoor_acc=float(info["trapdoor_acc"]))
        return out

    @property
    def judge(self) -> dict[str, Any]:
        """The evaluator's protocol and its accuracy on held-out private photos and on the class means."""
        info = self.evaluator.info
        return {"evaluator_data": info["evaluator_data"], "evaluator_acc": float(info["evaluator_acc"]),
                "evaluator_mean_acc": float(info["evaluator_mean_acc"]),
                **(self.panel.info if self.panel is not None else {})}


@dataclass
class CellOutcome:
    cell: CellSpec
    status: str  # done | refused | failed
    record: dict[str, Any]


def setup(threads: int = 1) -> None:
    """One torch thread per process: parallelism comes from processes (see DESIGN.md)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def parse_job(job_json: str, plugins: list[str] | tuple[str, ...] = ()) -> JobSpec:
    load_plugin_files(plugins)
    return JobSpec.from_json(json.loads(job_json))


def load_data(job: JobSpec) -> DataSplits:
    """The dataset's splits with the job's data-stage defenses applied to the target's training copy."""
    cell = job.first
    splits = cell.dataset.build().load()
    g = generator(cell.seed, "defense")
    for d in cell.stack.data:
        splits = splits.with_defended_train(d.transform_data(splits.target_train, g))
    return splits


def training_hooks(job: JobSpec) -> list[TrainingDefense]:
    """The job's training-stage defenses, in stack order: the hooks of its target's training loop."""
    return job.first.stack.training


def train_target(job: JobSpec, splits: DataSplits, cache_dir: str | Path) -> TrainedModel:
    """The job's target: trained with its spec and defenses (cached), or the user's given model."""
    cell = job.first
    if isinstance(cell.target, SavedTarget):
        return given_target(cell.target, cell.target_name, splits)
    hooks = training_hooks(job)
    plan = TrainingPlan.from_spec(cell.target)
    seed = stream_seed(cell.seed, "target")

    def train(model: Classifier) -> dict[str, Any]:
        info = fit(model, splits.target_train, plan, seed=seed, desc=f"target {cell.target_name}", hooks=hooks,
                   public=splits.public)
        return {**info, "arch": cell.target.model, "plan": dataclasses.asdict(plan_for(plan, hooks)),
                "train_acc": balanced_accuracy(model, splits.target_train),
                "test_acc": accuracy(model, splits.private_test)}

    key = {"kind": "target", **{k: v for k, v in cell.job_key().items() if k != "evaluator"}}
    make = lambda: build(cell.target.model, splits.meta.shape, splits.meta.num_classes, seed, hooks,  # noqa: E731
                         cell.target.width)
    return ArtifactCache(cache_dir).get_or_train(key, make, train)


def given_target(target: SavedTarget, label: str, splits: DataSplits) -> TrainedModel:
    """A model the user trained, loaded safely and measured on their data as any target is — the
    very file the grid was configured with (a file changed since is refused, not audited under
    the old one's ids)."""
    if file_digest(target.weights) != target.digest:
        raise ConfigError(f"target '{label}': {target.weights} changed after the grid was configured; run it again")
    model = load_saved(target.factory, target.model, target.weights, splits.meta.shape, splits.meta.num_classes)
    check_fits(model, splits.meta.shape, splits.meta.num_classes, f"target '{label}'")
    info = {"arch": target.model or label, "given": True, "weights": target.weights, "weights_digest": target.digest,
            "history": [],
            "train_acc": balanced_accuracy(model, splits.target_train),
                "test_acc": accuracy(model, splits.private_test)}
    return TrainedModel(model, info, cached=False)


def train_prior(cells: list[CellSpec], splits: DataSplits, cache_dir: str | Path) -> TrainedModel[GanPrior] | None:
    """The attacker's generator prior, if any of ``cells`` searches one: a GAN trained on the
    public split alone (it is never handed private images), once per dataset and cached. A
    generator that failed to train is kept with ``info['failure']``: its cells are refused."""
    users = [c for c in cells if c.attack.build().uses_prior()]
    if not users:
        return None
    cell = users[0]
    spec = cell.prior
    plan = PriorPlan(spec.steps, spec.batch_size, spec.lr)
    public = splits.public.x
    key = {"kind": "prior", "dataset": cell.dataset.to_json(), "prior": dataclasses.asdict(spec), "seed": PRIOR_SEED}
    make = lambda: GanPrior(splits.meta.shape, spec.latent_dim, spec.width)  # noqa: E731
    trained = ArtifactCache(cache_dir).get_or_train(
        key, make, lambda prior: train_gan(prior, public, plan, PRIOR_SEED, desc="generator prior"))
    trained.model.freeze()
    return trained


def prepare(job: JobSpec, cache_dir: str | Path) -> JobContext:
    splits = load_data(job)
    return JobContext(job, splits, train_target(job, splits, cache_dir), train_evaluator(job, splits, cache_dir),
                      train_prior(list(job.cells), splits, cache_dir), cache_dir,
                      train_panel(list(job.cells), splits, cache_dir))


def prior_for(ctx: JobContext, attack: InversionAttack) -> GenerativePrior | None:
    """The generator prior for ``attack``, None if it searches none; refuses if the prior failed."""
    if not attack.uses_prior():
        return None
    if ctx.prior is None:
        raise AttackRefused(f"attack '{attack.name}' searches a generator prior and the job trained none")
    if ctx.prior.info.get("failure"):
        raise AttackRefused(f"the generator prior failed to train: {ctx.prior.info['failure']}")
    return ctx.prior.model


def output_transforms(cell: CellSpec, g: torch.Generator | None = None) -> list[Callable[[Tensor], Tensor]]:
    """The cell's inference-stage defenses as functions of the probability vectors, drawing from
    ``g`` (default: seeded from the cell, as a grid reproduces them)."""
    g = generator(cell.seed, "defense") if g is None else g
    return [partial(d.transform_outputs, generator=g) for d in cell.stack.outputs]


def access_left(cell: CellSpec, attack: Attack) -> ThreatModel:
    """A white-box attacker holds the model; others get what the output defenses leave."""
    if attack.threat_model == ThreatModel.WHITE_BOX:
        return ThreatModel.WHITE_BOX
    if cell.stack.label_only:
        return ThreatModel.LABEL_ONLY
    return ThreatModel.BLACK_BOX


def build_oracle(ctx: JobContext, cell: CellSpec, attack: Attack) -> BaseOracle:
    """The oracle this cell's attacker gets: threat model, output defenses, endpoint guards, budget.
    A white-box attacker holds the model: neither output defenses nor guards stand between it
    and the model's own probabilities. A served target's oracle is its endpoint's."""
    if not isinstance(ctx.target, TrainedModel):
        return ctx.target.oracle(cell, attack)
    k = ctx.splits.meta.num_classes
    access = access_left(cell, attack)
    white_box = access == ThreatModel.WHITE_BOX
    g = generator(cell.seed, "guard")
    guards = [] if white_box else [
        d.guard(ctx.splits.private_train.x, ctx.splits.private_test.x, g) for d in cell.stack.guards]
    return Oracle(
        ctx.target.model,
        access,
        num_classes=k,
        input_shape=ctx.splits.meta.shape,
        budget=attack.budget_for(k),
        output_transforms=[] if white_box else output_transforms(cell),
        guards=guards,
    )


@torch.no_grad()
def oracle_accuracy(ctx: JobContext, cell: CellSpec) -> float:
    """Top-1 accuracy on held-out private data as an honest user sees it through the defended outputs."""
    if not isinstance(ctx.target, TrainedModel):
        return ctx.target.accuracy(cell)
    probs = defended_probabilities(ctx.target.model.eval(), ctx.splits.private_test.x, output_transforms(cell))
    y = ctx.splits.private_test.y
    return int((probs.argmax(dim=1) == y).sum()) / len(y)


def defense_notes(cell: CellSpec) -> dict[str, Any]:
    """Which stages the cell's defenses act at, and whether the attacker sees defended outputs."""
    stages = cell.stack.stages
    output_defended = cell.stack.at_endpoint
    white_box = cell.attack.cls.threat_model == ThreatModel.WHITE_BOX
    note = ("white-box attacker holds the model: output and access defenses do not apply"
            if white_box and output_defended else None)
    return {"defense_stages": "+".join(stages) or "none", "outputs_defended": output_defended and not white_box,
            "note": note}


def pending_cells(job: JobSpec, results_dir: str | Path, keep_stale: bool = False) -> list[CellSpec]:
    """Cells not yet complete, or written by another code version (unless ``keep_stale``)."""
    results = ResultsDir(results_dir)
    current = required_fingerprint(keep_stale)
    return [c for c in job.cells if not results.is_complete(c.cell_id, current)]


def write_references(ctx: JobContext, results_dir: str | Path) -> None:
    """The gallery's top row — the first private training image (as collected) per identity —
    written once per dataset, so the report reads only the grid's results."""
    path = ResultsDir(results_dir).references(ctx.job.first.dataset.label)
    if not path.exists():
        train = ctx.splits.private_train
        images = np.stack([train.of_class(k)[0].numpy() for k in range(ctx.splits.meta.num_classes)])
        buf = io.BytesIO()
        np.savez_compressed(buf, images=images, names=np.array(ctx.splits.meta.identity_names))
        atomic_write_bytes(path, buf.getvalue())


def run_cell(ctx: JobContext, cell: CellSpec, results_dir: str | Path) -> CellOutcome:
    """Run one attack cell and write its files (record.json last); never raises for the cell's own errors."""
    write_references(ctx, results_dir)
    results = ResultsDir(results_dir)
    out = results.cell_dir(cell.cell_id)
    started = datetime.now(timezone.utc)
    judge = ctx.judge
    utility = {**{k: v for k, v in judge.items() if k != "evaluator_data"}, **ctx.utility,
               "oracle_acc": oracle_accuracy(ctx, cell)}
    record: dict[str, Any] = {
        **cell.labels(), **defense_notes(cell), "spec": cell.to_json(), "code_version": code_version(),
        "code_fingerprint": code_fingerprint(), "evaluator_data": judge["evaluator_data"],
        "baseline": cell.attack.cls.baseline, "kind": cell.attack.cls.kind,
        "target_params": parameter_count(ctx.target.model) if isinstance(ctx.target, TrainedModel) else None,
        "overrepresented_identity": ctx.splits.meta.extra.get("overrepresented_identity"),
        "overrepresent": ctx.splits.meta.extra.get("overrepresent"),
        "started": started.isoformat(), **utility,
    }
    labels = cell.labels()
    try:
        attack = cell.attack.build()
        oracle = build_oracle(ctx, cell, attack)
        rows, fields = FAMILIES[attack.kind](ctx, cell, attack, oracle, out)
        guarded = {k: v for guard in oracle.guards for k, v in guard.report().items()}
        rows += scalar_rows({"queries": fields["queries"], "attack_seconds": fields["attack_seconds"], **utility,
                             **guarded})
        atomic_write_parquet(_frame(labels, rows), out / "metrics.parquet")
        record.update(status="done", error=None, **guarded, **fields)
    except AttackRefused as exc:
        atomic_write_parquet(_frame(labels, scalar_rows(utility)), out / "metrics.parquet")
        record.update(status="refused", error=str(exc))
    except Exception as exc:  # one failing cell never sinks the job
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finished = datetime.now(timezone.utc)
    record.update(finished=finished.isoformat(), seconds=(finished - started).total_seconds())
    results.write_record(cell.cell_id, record)
    return CellOutcome(cell, record["status"], record)


def invert(ctx: JobContext, cell: CellSpec, attack: InversionAttack, oracle: BaseOracle, out: Path
           ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """An inversion cell: one reconstruction per identity, judged; its files, rows and record fields."""
    identities = torch.arange(ctx.splits.meta.num_classes)
    prior = prior_for(ctx, attack)
    public = ctx.splits.public.x
    attack.refuse(oracle, public, prior)  # before a process is started for it
    task = Inversion(identities, public, prior, stream_seed(cell.seed, "attack"))
    result = run_attack(attack, task, oracle, *white_box_grant(ctx, cell), timeout=ctx.attack_timeout)
    assert isinstance(result, AttackResult)
    open_judge, second = ctx.panel.models if ctx.panel is not None else (None, None)
    rows = reconstruction_rows(Judged(result.reconstructions, identities, ctx.splits, ctx.evaluator.model,
                                      open_judge, second))
    rows += extra_rows(result.extras, identities, ctx.evaluator.model)
    trace = trace_table(result, identities, ctx.evaluator.model)
    _write_cell_files(out, cell.labels(), result, trace, identities, ctx.splits)
    if prior is not None:
        atomic_write_bytes(out / "prior_samples.png", sample_sheet(prior.generate(
            torch.randn(32, prior.latent_dim, generator=torch.Generator().manual_seed(PRIOR_SEED)))))
    return rows, {"queries": result.queries, "attack_seconds": result.seconds, "blocked": result.blocked,
                  **{r["metric"]: r["value"] for r in rows if r["target_class"] == "all"}}


def white_box_grant(ctx: JobContext, cell: CellSpec) -> tuple[Classifier | None, tuple[str, ...]]:
    """What a white-box attacker's process is handed: the target model (it crosses as a copy) and
    the factory that defines a given model's class; nothing for an endpoint's target."""
    if not isinstance(ctx.target, TrainedModel):
        return None, ()
    return ctx.target.model, (cell.target.factory,) if isinstance(cell.target, SavedTarget) and cell.target.factory else ()


def shadows_for(cell: CellSpec, splits: DataSplits, cache_dir: str | Path) -> ShadowRecipe:
    """The cell's shadow-model recipe: the target's architecture and plan (not its defenses) —
    for a given model, whose recipe Sieve does not know, the default target recipe — wide enough
    for the public classes and the private identities, cached under ``cache_dir``."""
    recipe = cell.target if isinstance(cell.target, TrainSpec) else TrainSpec()
    return ShadowRecipe(recipe.model, splits.meta.shape, splits.meta.num_classes, TrainingPlan.from_spec(recipe),
                        cache_dir, recipe.width)


def population_of(splits: DataSplits) -> Population:
    """The membership attacker's population and the target's training-set size (its copy's, with
    any repeats); an empty population where the dataset spares none (shadow attacks then refuse)."""
    held = splits.membership_population
    size = len(splits.target_train)
    if held is None:
        empty = splits.private_train.x[:0]
        return Population(empty, splits.private_train.y[:0], size)
    return Population(held.x, held.y, size)


def infer_membership(ctx: JobContext, cell: CellSpec, attack: MembershipAttack, oracle: BaseOracle, out: Path
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A membership cell: the seed's stratified challenge set scored through the oracle, with the
    attacker's population and shadow models trained with the target's recipe (its architecture
    and plan, not its defenses) and cached; the per-image scores go to ``membership.parquet``."""
    splits = ctx.splits
    challenge = challenge_set(splits, generator(cell.seed, "challenge"))
    attack.refuse_weaker(oracle)  # before a process is started for it
    population = population_of(splits)
    task = Membership(challenge.x, challenge.y, population, shadows_for(cell, splits, ctx.cache_dir),
                      stream_seed(cell.seed, "attack"))
    result = run_attack(attack, task, oracle, timeout=ctx.attack_timeout)
    assert isinstance(result, MembershipResult)
    scores = pd.DataFrame({"score": result.scores.numpy(), "member": challenge.member.numpy(),
                           "source": list(challenge.source), "target_class": challenge.y.numpy().astype(str)})
    atomic_write_parquet(scores.assign(**cell.labels()), out / "membership.parquet")
    rows = membership_rows(result.scores, challenge.member, result.queries)
    return [r for r in rows if r["metric"] != "queries"], {
        "queries": result.queries, "attack_seconds": result.seconds, "blocked": result.blocked,
        "members": challenge.members,
        "non_members": challenge.non_members, "population": len(population),
        **{f"challenge_{source}": n for source, n in challenge.source_counts().items()},
        **{r["metric"]: r["value"] for r in rows if r["metric"] != "queries"}}


FAMILIES: dict[str, Callable[..., tuple[list[dict[str, Any]], dict[str, Any]]]] = {
    "inversion": invert, "membership": infer_membership}  # an attack family's cell, by its kind


def run_job(job: JobSpec, results_dir: str | Path, cache_dir: str | Path, keep_stale: bool = False) -> list[CellOutcome]:
    """The whole job in this process (what the notebook does, without the notebook)."""
    todo = pending_cells(job, results_dir, keep_stale)
    if not todo:
        return []
    ctx = prepare(job, cache_dir)
    return [run_cell(ctx, cell, results_dir) for cell in todo]


def trace_table(result: AttackResult, identities: Tensor, evaluator: Classifier) -> pd.DataFrame:
    """Query efficiency: at each checkpoint, the queries spent and the evaluator's acc@1 of the
    reconstructions then (plus what the attacker saw, e.g. its mean target confidence)."""
    rows = [{"queries": c.queries, "acc@1": float(top_k_hits(evaluator, c.reconstructions, identities, 1).sum()) / len(identities),
             **c.info} for c in result.checkpoints]
    return pd.DataFrame(rows)


def _write_cell_files(out: Path, labels: dict[str, Any], result: AttackResult, trace: pd.DataFrame,
                      identities: torch.Tensor, splits: DataSplits) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, reconstructions=result.reconstructions.numpy(), targets=identities.numpy())
    atomic_write_bytes(out / "reconstructions.npz", buf.getvalue())
    atomic_write_bytes(out / "grid.png", reconstruction_grid(result.reconstructions, identities, splits))
    if not trace.empty:
        atomic_write_parquet(trace.assign(**labels), out / "trace.parquet")


def _frame(labels: dict[str, Any], rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([{**labels, **r} for r in rows])
    df["error"] = df["error"].astype("string")
    return df


def summary_line(outcome: CellOutcome) -> str:
    """One line per cell for the notebook and logs."""
    r = outcome.record
    head = f"{r['attack']} under {r['defense']}: {outcome.status}"
    if outcome.status != "done":
        return f"{head} — {r.get('error')}"
    kind = "membership" if r.get("kind") == "membership" else "inversion"
    readings = ", ".join(f"{m.name} {r[m.name]:.{m.digits}f}" for m in METRICS.values()
                         if m.kind == kind and m.summary and m.name in r)
    if kind == "membership":
        readings += f", {r['members']}+{r['non_members']} challenge images (target gap {r['gap']:.2f})"
    return f"{head} — {readings}, {r['queries']} queries in {r['attack_seconds']:.1f} s"
