//! One training phase, in named pieces: the [`Plan`] (batches, length, schedule), [`restore`]
//! (where a killed run stopped), then [`Trainer`]'s loop of [`Trainer::step`],
//! [`Trainer::evaluate_and_select`] every `eval_every` steps and [`Trainer::checkpoint`].
//! An interrupt (Ctrl-C, SIGTERM, SIGHUP, SIGUSR1) is honoured after the step's evaluation, so an
//! evaluation that was due is never lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use dfdx::prelude::*;
use indicatif::MultiProgress;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::compile;
use super::error::{Result, RunError};
use super::eval::{evaluate, Evaluation};
use super::metrics::{MetricsLog, Record};
use super::objective::Objective;
use super::progress::Progress;
use super::rundir::RunDir;
use super::state::{Best, PhaseState};
use crate::data::{Batch, Batcher, Dataset};
use crate::engine::checkpoint::{self, LoadFilter};
use crate::engine::models::Model;
use crate::engine::ops::EngineDevice;
use crate::engine::optim::Optimizer;
use crate::engine::params::ParamStore;
use crate::engine::schedule::Schedule;
use crate::engine::step::optimise;
use crate::engine::EngineError;
use crate::spec::{PhaseSpec, Select, Split};

/// What a phase needs from the run around it.
pub(crate) struct PhaseContext<'a> {
    pub name: &'static str,
    pub spec: &'a PhaseSpec,
    pub seed: u64,
    pub dir: &'a RunDir,
    pub metrics: &'a MetricsLog,
    pub quiet: bool,
    pub resume: bool,
    pub interrupt: &'a AtomicBool,
    /// How the user started the run, for the "resume with" hint.
    pub spec_path: String,
    /// Stop as Ctrl-C would once this many steps are done (to test resumption).
    pub stop_at: Option<u64>,
    /// Bars of other runs in flight, among which this phase draws its own.
    pub bars: Option<&'a MultiProgress>,
    pub experiment: &'a str,
}

pub(crate) struct PhaseOutcome {
    /// The checkpoint `select` chose.
    pub selected: PathBuf,
    pub best: Option<Best>,
    pub steps: u64,
}

/// Trains `model` through the phase `ctx` describes, continuing a killed run's state when
/// resuming, and returns the checkpoint `select` chose.
pub(crate) fn train_phase<D: EngineDevice>(
    ctx: &PhaseContext<'_>,
    objective: &Objective,
    model: &Model,
    store: &mut ParamStore<D>,
    dataset: &Dataset,
) -> Result<PhaseOutcome> {
    let plan = Plan::new(ctx, dataset);
    let mut optimizer = Optimizer::new(compile::optimizer_config(ctx.spec), store)?;
    let mut state = restore(ctx, store, &mut optimizer)?;
    if !state.finished {
        let mut trainer = Trainer::new(ctx, objective, model, dataset, &plan, state.step);
        store.device().enable_cache();
        let trained = trainer.train(&mut state, store, &mut optimizer);
        trainer.progress.finish();
        store.device().disable_cache();
        trained?;
    }
    Ok(PhaseOutcome {
        selected: selected_checkpoint(ctx, state.best),
        best: state.best,
        steps: state.step,
    })
}

/// The phase's fixed shape: its batches, its length in steps, its learning-rate schedule and
/// how often it evaluates.
struct Plan<'d> {
    batcher: Batcher<'d>,
    steps_per_epoch: usize,
    total: u64,
    schedule: Schedule,
    eval_every: u64,
}

impl<'d> Plan<'d> {
    fn new(ctx: &PhaseContext<'_>, dataset: &'d Dataset) -> Self {
        let phase = ctx.spec;
        let batcher = dataset
            .batcher(&dataset.train, phase.batch)
            .shuffled(ctx.seed);
        let steps_per_epoch = batcher.num_batches().max(1);
        let total = compile::total_steps(phase, steps_per_epoch);
        Plan {
            batcher,
            steps_per_epoch,
            total,
            schedule: compile::schedule(phase, total),
            eval_every: phase.eval_every.unwrap_or(steps_per_epoch).max(1) as u64,
        }
    }

    /// The batch at step `step`, from its epoch's `order`: epochs are shuffled by (seed,
    /// epoch), so a resumed run draws the batches an uninterrupted one would.
    fn batch_at(&self, order: &[usize], step: u64, batch_size: usize) -> Batch {
        let b = (step % self.steps_per_epoch as u64) as usize;
        let end = ((b + 1) * batch_size).min(order.len());
        self.batcher.batch(&order[b * batch_size..end])
    }

    fn epoch_of(&self, step: u64) -> u64 {
        step / self.steps_per_epoch as u64
    }

    fn evaluates_at(&self, step: u64) -> bool {
        step.is_multiple_of(self.eval_every) || step == self.total
    }
}

/// The phase's state where a killed run left it (parameters and optimiser loaded from its
/// checkpoint), or a fresh one; the metrics it logged after that state are dropped.
fn restore<D: EngineDevice>(
    ctx: &PhaseContext<'_>,
    store: &mut ParamStore<D>,
    optimizer: &mut Optimizer<D>,
) -> Result<PhaseState> {
    let state = match (ctx.resume, PhaseState::load(ctx.dir, ctx.name)?) {
        (true, Some(state)) => state,
        _ => PhaseState {
            phase: ctx.name.to_string(),
            ..PhaseState::default()
        },
    };
    if let Some(file) = &state.checkpoint {
        checkpoint::load(
            &ctx.dir.checkpoints().join(file),
            store,
            Some(optimizer),
            LoadFilter::All,
        )?;
    }
    ctx.metrics.truncate_after(ctx.name, state.step)?;
    remove_stale_checkpoints(ctx, &state);
    Ok(state)
}

/// Removes the phase's step checkpoints that its state does not name: a run killed between
/// saving a state and removing the checkpoint that state replaced leaves one behind.
fn remove_stale_checkpoints(ctx: &PhaseContext<'_>, state: &PhaseState) {
    let Ok(entries) = std::fs::read_dir(ctx.dir.checkpoints()) else {
        return;
    };
    let prefix = format!("{}-step", ctx.name);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && Some(&name) != state.checkpoint.as_ref() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The checkpoint `select` picks: the best one when it selects by a metric and one was
/// taken, the last one otherwise.
fn selected_checkpoint(ctx: &PhaseContext<'_>, best: Option<Best>) -> PathBuf {
    match (&ctx.spec.select, best) {
        (Select::Best { .. }, Some(_)) => ctx.dir.checkpoint(ctx.name, "best"),
        _ => ctx.dir.checkpoint(ctx.name, "last"),
    }
}

fn metric_value(select: &Select, val: &Evaluation, train: &Evaluation) -> Option<f64> {
    let Select::Best { split, metric } = select else {
        return None;
    };
    let e = match split {
        Split::Val => val,
        Split::Train => train,
    };
    Some(e.metric(*metric))
}

fn improves(select: &Select, value: f64, best: Option<Best>) -> bool {
    let Select::Best { metric, .. } = select else {
        return true;
    };
    match best {
        None => true,
        Some(b) if metric.higher_is_better() => value > b.value,
        Some(b) => value < b.value,
    }
}

/// `loss 1.2345 acc 56.78%`, or MAE and R² for regression.
fn describe(e: &Evaluation) -> String {
    match (e.mae, e.r2) {
        (Some(mae), Some(r2)) => format!("loss {:.4} mae {mae:.4} r2 {r2:.3}", e.loss),
        _ => format!("loss {:.4} acc {:.2}%", e.loss, e.accuracy * 100.0),
    }
}

fn tokens(batch: &Batch) -> usize {
    batch.documents.iter().flat_map(|d| &d.lengths).sum()
}

/// What stopped being finite in an optimiser step.
fn divergence_cause(loss: f32, grad_norm: f32) -> String {
    if loss.is_finite() {
        format!("the gradient overflowed (its norm is {grad_norm}) at a finite loss of {loss}")
    } else {
        format!("the loss became {loss}")
    }
}

/// The loop of one phase and what it carries from step to step besides [`PhaseState`].
struct Trainer<'a, 'd> {
    ctx: &'a PhaseContext<'a>,
    objective: &'a Objective,
    model: &'a Model,
    dataset: &'d Dataset,
    plan: &'a Plan<'d>,
    /// The phase's name, or beside other runs in flight its experiment and name.
    label: String,
    progress: Progress,
    /// Running mean of the training throughput.
    tokens_per_s: f64,
    /// The batch shape dfdx's allocation cache holds buffers for.
    cached_shape: Option<(usize, usize)>,
}

impl<'a, 'd> Trainer<'a, 'd> {
    fn new(
        ctx: &'a PhaseContext<'a>,
        objective: &'a Objective,
        model: &'a Model,
        dataset: &'d Dataset,
        plan: &'a Plan<'d>,
        step: u64,
    ) -> Self {
        let label = match ctx.bars {
            None => ctx.name.to_string(),
            Some(_) => format!("{} {}", ctx.experiment, ctx.name),
        };
        let progress = Progress::new(&label, plan.total, step, ctx.quiet, ctx.bars);
        Trainer {
            ctx,
            objective,
            model,
            dataset,
            plan,
            label,
            progress,
            tokens_per_s: 0.0,
            cached_shape: None,
        }
    }

    /// Steps until the phase's budget or patience is spent, or an interrupt stops it.
    fn train<D: EngineDevice>(
        &mut self,
        state: &mut PhaseState,
        store: &mut ParamStore<D>,
        optimizer: &mut Optimizer<D>,
    ) -> Result<()> {
        let mut epoch = self.plan.epoch_of(state.step);
        let mut order = self.plan.batcher.order(epoch);
        while !state.finished && state.step < self.plan.total {
            if self.plan.epoch_of(state.step) != epoch {
                epoch = self.plan.epoch_of(state.step);
                order = self.plan.batcher.order(epoch);
            }
            let batch = self.plan.batch_at(&order, state.step, self.ctx.spec.batch);
            self.step(state, store, optimizer, &batch)?;
            let evaluates = self.plan.evaluates_at(state.step);
            if evaluates {
                self.evaluate_and_select(state, store, optimizer.config.lr)?;
                self.checkpoint(state, store, optimizer)?;
            }
            if self.ctx.interrupt.load(Ordering::SeqCst) || self.ctx.stop_at == Some(state.step) {
                if !evaluates {
                    self.checkpoint(state, store, optimizer)?;
                }
                return Err(RunError::Interrupted {
                    phase: self.ctx.name.into(),
                    step: state.step,
                    spec: self.ctx.spec_path.clone(),
                });
            }
        }
        Ok(())
    }

    /// One optimiser step on `batch`.
    fn step<D: EngineDevice>(
        &mut self,
        state: &mut PhaseState,
        store: &mut ParamStore<D>,
        optimizer: &mut Optimizer<D>,
        batch: &Batch,
    ) -> Result<()> {
        // dfdx's allocation cache is worth ~1.2× per step, but it keeps every buffer size it
        // has seen: it is emptied whenever the batch shape changes, so variable-length
        // batches cannot grow it without bound.
        let shape = (batch.batch_size, batch.seq_len);
        if self.cached_shape.replace(shape) != Some(shape) {
            store.device().empty_cache();
        }
        let started = Instant::now();
        // Masks are drawn from (seed, step), so a resumed run draws the same ones.
        let mut rng = ChaCha8Rng::seed_from_u64(self.ctx.seed);
        rng.set_stream(state.step);
        let (loss, stats) = self
            .objective
            .loss::<D, OwnedTape<f32, D>>(self.model, store, batch, true, &mut rng)?;
        let lr_factor = self.plan.schedule.factor_at(state.step, 1.0);
        let clip = self.ctx.spec.clip.map(|c| c as f32);
        match optimise(loss, store, optimizer, lr_factor, clip) {
            Ok(_) => {}
            Err(EngineError::Diverged { loss, grad_norm }) => {
                state.step += 1;
                return Err(self.diverged(state, divergence_cause(loss, grad_norm)));
            }
            Err(e) => return Err(e.into()),
        }
        state.step += 1;
        state.sums.add(&stats);
        let running = state.sums.evaluation(self.objective.is_regression());
        let rate = tokens(batch) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        self.tokens_per_s = if self.tokens_per_s == 0.0 {
            rate
        } else {
            0.9 * self.tokens_per_s + 0.1 * rate
        };
        self.progress
            .step(running.loss, running.accuracy, self.tokens_per_s);
        Ok(())
    }

    /// Evaluates on the validation split, logs both splits, keeps the best checkpoint and
    /// decides whether the phase is over (budget spent or patience run out).
    fn evaluate_and_select<D: EngineDevice>(
        &mut self,
        state: &mut PhaseState,
        store: &mut ParamStore<D>,
        peak_lr: f32,
    ) -> Result<()> {
        let (ctx, plan) = (self.ctx, self.plan);
        let train = state.sums.evaluation(self.objective.is_regression());
        // Evaluation batches vary in shape: run them without the cache.
        store.device().disable_cache();
        self.cached_shape = None;
        let val = evaluate(
            self.objective,
            self.model,
            store,
            self.dataset,
            &self.dataset.val,
            ctx.spec.batch,
        )?;
        store.device().enable_cache();
        if !val.loss.is_finite() {
            // The last update broke the parameters: never checkpoint them.
            return Err(self.diverged(state, format!("the validation loss became {}", val.loss)));
        }
        let lr = plan.schedule.lr_at(state.step.saturating_sub(1), peak_lr) as f64;
        self.log(state.step, &train, &val, lr)?;
        state.sums = Default::default();
        match metric_value(&ctx.spec.select, &val, &train) {
            Some(value) if improves(&ctx.spec.select, value, state.best) => {
                checkpoint::save(&ctx.dir.checkpoint(ctx.name, "best"), store, None)?;
                state.best = Some(Best {
                    step: state.step,
                    value,
                });
                state.evals_since_best = 0;
            }
            Some(_) => state.evals_since_best += 1,
            None => {}
        }
        let patience_over = ctx
            .spec
            .patience
            .is_some_and(|p| state.evals_since_best >= p);
        if state.step == plan.total || patience_over {
            checkpoint::save(&ctx.dir.checkpoint(ctx.name, "last"), store, None)?;
            state.finished = true;
        }
        Ok(())
    }

    /// The train and validation records of an evaluation, in the metrics and on screen.
    fn log(&self, step: u64, train: &Evaluation, val: &Evaluation, lr: f64) -> Result<()> {
        let epoch = step as f64 / self.plan.steps_per_epoch as f64;
        for (split, e, lr, tps) in [
            ("train", train, Some(lr), Some(self.tokens_per_s)),
            ("val", val, None, None),
        ] {
            self.ctx.metrics.append(&Record {
                phase: self.ctx.name.into(),
                split: split.into(),
                step,
                epoch,
                loss: e.loss,
                accuracy: e.accuracy,
                mae: e.mae,
                r2: e.r2,
                lr,
                tokens_per_s: tps,
            })?;
        }
        self.progress.println(
            &format!(
                "{} step {step:>6} epoch {epoch:>6.2}  train {}  val {}",
                self.label,
                describe(train),
                describe(val)
            ),
            self.ctx.quiet,
        );
        Ok(())
    }

    /// Saves parameters and optimiser at `state.step`, then the state naming them, then
    /// removes the checkpoint the state named before: a kill at any point leaves a state
    /// whose checkpoint exists.
    fn checkpoint<D: EngineDevice>(
        &self,
        state: &mut PhaseState,
        store: &ParamStore<D>,
        optimizer: &Optimizer<D>,
    ) -> Result<()> {
        let ctx = self.ctx;
        let file = format!("{}-step{}.safetensors", ctx.name, state.step);
        checkpoint::save(&ctx.dir.checkpoints().join(&file), store, Some(optimizer))?;
        let previous = state.checkpoint.replace(file);
        state.save(ctx.dir)?;
        if let Some(old) = previous.filter(|old| Some(old) != state.checkpoint.as_ref()) {
            let _ = std::fs::remove_file(ctx.dir.checkpoints().join(old));
        }
        Ok(())
    }

    /// The divergence error at `state.step`, naming the last good checkpoint.
    fn diverged(&self, state: &PhaseState, cause: String) -> RunError {
        RunError::Diverged {
            phase: self.ctx.name.into(),
            step: state.step,
            cause,
            checkpoint: state
                .checkpoint
                .as_ref()
                .map_or("(none yet: no evaluation had run)".into(), |c| {
                    self.ctx.dir.checkpoints().join(c).display().to_string()
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::divergence_cause;

    #[test]
    fn an_overflowing_gradient_at_a_finite_loss_is_called_an_overflow() {
        let cause = divergence_cause(8.841_85e17, f32::INFINITY);
        assert!(cause.starts_with("the gradient overflowed"), "{cause}");
        assert!(cause.contains("inf"), "{cause}");
        assert_eq!(divergence_cause(f32::NAN, f32::NAN), "the loss became NaN");
    }
}
