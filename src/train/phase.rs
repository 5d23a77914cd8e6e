//! One training phase: batches, optimiser steps, evaluation every `eval_every`, best-checkpoint
//! selection, patience, resumable state, divergence and interruption handling.

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
use crate::data::{Batch, Dataset};
use crate::engine::checkpoint::{self, LoadFilter};
use crate::engine::models::Model;
use crate::engine::ops::EngineDevice;
use crate::engine::optim::Optimizer;
use crate::engine::params::ParamStore;
use crate::engine::step::optimise;
use crate::engine::EngineError;
use crate::spec::{PhaseSpec, Select, Split};

/// What a phase needs from the run around it.
pub struct PhaseContext<'a> {
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

pub struct PhaseOutcome {
    /// The checkpoint `select` chose.
    pub selected: PathBuf,
    pub best: Option<Best>,
    pub steps: u64,
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

/// The divergence error at `state.step`, naming the last good checkpoint.
fn diverged(ctx: &PhaseContext<'_>, state: &PhaseState, loss: f32) -> RunError {
    RunError::Diverged {
        phase: ctx.name.into(),
        step: state.step,
        loss,
        checkpoint: state
            .checkpoint
            .as_ref()
            .map_or("(none yet: no evaluation had run)".into(), |c| {
                ctx.dir.checkpoints().join(c).display().to_string()
            }),
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

pub fn train_phase<D: EngineDevice>(
    ctx: &PhaseContext<'_>,
    objective: &Objective,
    model: &Model,
    store: &mut ParamStore<D>,
    dataset: &Dataset,
) -> Result<PhaseOutcome> {
    let phase = ctx.spec;
    let batcher = dataset
        .batcher(&dataset.train, phase.batch)
        .shuffled(ctx.seed);
    let steps_per_epoch = batcher.num_batches().max(1);
    let total = compile::total_steps(phase, steps_per_epoch);
    let schedule = compile::schedule(phase, total);
    let eval_every = phase.eval_every.unwrap_or(steps_per_epoch).max(1) as u64;
    let mut optimizer = Optimizer::new(compile::optimizer_config(phase), store);
    let best_path = ctx.dir.checkpoint(ctx.name, "best");

    let mut state = match (ctx.resume, PhaseState::load(ctx.dir, ctx.name)?) {
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
            Some(&mut optimizer),
            LoadFilter::All,
        )?;
    }
    ctx.metrics.truncate_after(ctx.name, state.step)?;
    let selected = |best: &Option<Best>| match (&phase.select, best) {
        (Select::Best { .. }, Some(_)) => best_path.clone(),
        _ => ctx.dir.checkpoint(ctx.name, "last"),
    };
    if state.finished {
        return Ok(PhaseOutcome {
            selected: selected(&state.best),
            best: state.best,
            steps: state.step,
        });
    }

    // Beside other runs in flight, bars and log lines name their experiment.
    let label = match ctx.bars {
        None => ctx.name.to_string(),
        Some(_) => format!("{} {}", ctx.experiment, ctx.name),
    };
    let progress = Progress::new(&label, total, state.step, ctx.quiet, ctx.bars);
    let mut tokens_per_s = 0.0f64;
    let save_state =
        |state: &mut PhaseState, store: &ParamStore<D>, optimizer: &Optimizer| -> Result<()> {
            let file = format!("{}-step{}.safetensors", ctx.name, state.step);
            checkpoint::save(&ctx.dir.checkpoints().join(&file), store, Some(optimizer))?;
            let previous = state.checkpoint.replace(file);
            state.save(ctx.dir)?;
            if let Some(old) = previous.filter(|old| Some(old) != state.checkpoint.as_ref()) {
                let _ = std::fs::remove_file(ctx.dir.checkpoints().join(old));
            }
            Ok(())
        };

    // dfdx's allocation cache is worth ~1.2× per step, but it keeps every buffer size it has
    // seen: it is emptied whenever the batch shape changes, so variable-length batches cannot
    // grow it without bound.
    store.device().enable_cache();
    let mut cached_shape = None;
    'training: while state.step < total {
        let epoch = state.step / steps_per_epoch as u64;
        let order = batcher.order(epoch);
        let first = (state.step % steps_per_epoch as u64) as usize;
        for b in first..steps_per_epoch {
            let end = ((b + 1) * phase.batch).min(order.len());
            let batch = batcher.batch(&order[b * phase.batch..end]);
            let shape = (batch.batch_size, batch.seq_len);
            if cached_shape.replace(shape) != Some(shape) {
                store.device().empty_cache();
            }
            let started = Instant::now();
            // Masks are drawn from (seed, step), so a resumed run draws the same ones.
            let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
            rng.set_stream(state.step);
            let (loss, stats) =
                objective.loss::<D, OwnedTape<f32, D>>(model, store, &batch, true, &mut rng)?;
            let lr_factor = schedule.factor_at(state.step, 1.0);
            let report = match optimise(
                loss,
                store,
                &mut optimizer,
                lr_factor,
                phase.clip.map(|c| c as f32),
            ) {
                Ok(report) => report,
                Err(EngineError::Diverged { loss, .. }) => {
                    progress.finish();
                    state.step += 1;
                    return Err(diverged(ctx, &state, loss));
                }
                Err(e) => return Err(e.into()),
            };
            debug_assert!(report.loss.is_finite());
            state.step += 1;
            state.sums.add(&stats);
            let running = state.sums.evaluation(objective.is_regression());
            let rate = tokens(&batch) as f64 / started.elapsed().as_secs_f64().max(1e-9);
            tokens_per_s = if tokens_per_s == 0.0 {
                rate
            } else {
                0.9 * tokens_per_s + 0.1 * rate
            };
            progress.step(running.loss, running.accuracy, tokens_per_s);

            if ctx.interrupt.load(Ordering::SeqCst) || ctx.stop_at == Some(state.step) {
                save_state(&mut state, store, &optimizer)?;
                progress.finish();
                return Err(RunError::Interrupted {
                    phase: ctx.name.into(),
                    step: state.step,
                    spec: ctx.spec_path.clone(),
                });
            }

            if state.step % eval_every == 0 || state.step == total {
                let epoch_f = state.step as f64 / steps_per_epoch as f64;
                let train_eval = state.sums.evaluation(objective.is_regression());
                // Evaluation batches vary in shape: run them without the cache.
                store.device().disable_cache();
                cached_shape = None;
                let val = evaluate(objective, model, store, dataset, &dataset.val, phase.batch)?;
                store.device().enable_cache();
                if !val.loss.is_finite() {
                    // The last update broke the parameters: never checkpoint them.
                    progress.finish();
                    return Err(diverged(ctx, &state, val.loss as f32));
                }
                let lr = schedule.lr_at(state.step.saturating_sub(1), optimizer.config.lr) as f64;
                for (split, e, lr, tps) in [
                    ("train", train_eval, Some(lr), Some(tokens_per_s)),
                    ("val", val, None, None),
                ] {
                    ctx.metrics.append(&Record {
                        phase: ctx.name.into(),
                        split: split.into(),
                        step: state.step,
                        epoch: epoch_f,
                        loss: e.loss,
                        accuracy: e.accuracy,
                        mae: e.mae,
                        r2: e.r2,
                        lr,
                        tokens_per_s: tps,
                    })?;
                }
                progress.println(
                    &format!(
                        "{} step {:>6} epoch {:>6.2}  train {}  val {}",
                        label,
                        state.step,
                        epoch_f,
                        describe(&train_eval),
                        describe(&val)
                    ),
                    ctx.quiet,
                );
                state.sums = Default::default();
                match metric_value(&phase.select, &val, &train_eval) {
                    Some(value) if improves(&phase.select, value, state.best) => {
                        checkpoint::save(&best_path, store, None)?;
                        state.best = Some(Best {
                            step: state.step,
                            value,
                        });
                        state.evals_since_best = 0;
                    }
                    Some(_) => state.evals_since_best += 1,
                    None => {}
                }
                let patience_over = phase.patience.is_some_and(|p| state.evals_since_best >= p);
                if state.step == total || patience_over {
                    checkpoint::save(&ctx.dir.checkpoint(ctx.name, "last"), store, None)?;
                    state.finished = true;
                }
                save_state(&mut state, store, &optimizer)?;
                if state.finished {
                    break 'training;
                }
            }
        }
    }
    progress.finish();
    store.device().disable_cache();
    Ok(PhaseOutcome {
        selected: selected(&state.best),
        best: state.best,
        steps: state.step,
    })
}
