//! Cross-field rules: each a named function with its own code, tested alone. A rule reads a
//! [`ResolvedExperiment`] (so it can label the fields involved) and returns its diagnostics.

mod cost;
mod model;
mod name;
mod phase;
mod task;

pub use cost::memory;

use super::resolved::ResolvedExperiment;
use crate::diagnostic::Diagnostic;

/// What rules may know about the world beyond the file.
#[derive(Clone, Debug)]
pub struct Context {
    /// Memory of this machine, in bytes.
    pub machine_memory: u64,
    /// Memory of the GPU, where it can be read.
    pub gpu_memory: Option<u64>,
    /// Whether to look for data folders (off in snapshot tests, which must not depend on the
    /// working directory).
    pub check_data: bool,
    /// Whether this build of lra can use CUDA.
    pub cuda_built: bool,
    /// How many GPUs this machine shows (`nvidia-smi`; 0 where no driver is installed), or
    /// `None` where nobody looked.
    pub gpus: Option<usize>,
}

pub(crate) type Rule = fn(&ResolvedExperiment, &Context) -> Vec<Diagnostic>;

/// Every rule on the resolved tree, in no particular order (diagnostics are sorted later).
pub(crate) const RULES: &[Rule] = &[
    name::experiment_name_is_a_relative_path,
    model::heads_divide_d_model,
    model::rotary_needs_even_head_size,
    model::local_window_within_max_len,
    model::s5_blocks_divide_d_state,
    model::s5_conj_sym_even_blocks,
    model::legs_even_d_state,
    model::nplr_needs_legs,
    model::lru_radius_order,
    model::dt_order,
    model::causal_pool_first,
    task::max_len_within_task,
    task::retrieval_two_tower,
    task::train_subset_exclusive,
    task::data_folder_exists,
    task::generate_lengths_ordered,
    task::pathfinder_difficulty_fits,
    task::cuda_available,
    task::gpu_present,
    phase::causal_pretraining_needs_causal_model,
    phase::masked_pretraining_of_causal_model,
    phase::masked_rate_in_unit_interval,
    phase::l1_loss_needs_continuous_inputs,
    phase::steps_epochs_exclusive,
    phase::budget_required,
    phase::select_metric_known,
    phase::patience_needs_best,
    phase::warmup_within_budget,
];

pub fn run(x: &ResolvedExperiment, context: &Context) -> Vec<Diagnostic> {
    RULES.iter().flat_map(|rule| rule(x, context)).collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::check::resolve::{Resolver, Scope};
    use crate::syntax::ast::Item;

    pub fn context() -> Context {
        Context {
            machine_memory: 24 << 30,
            gpu_memory: None,
            check_data: false,
            cuda_built: false,
            gpus: None,
        }
    }

    /// Resolves the single experiment of `text`, which must have no structural errors.
    pub fn resolve(text: &str) -> ResolvedExperiment {
        let file = crate::syntax::parse(0, text).expect("test spec parses");
        let mut scope = Scope::default();
        let mut errors = Vec::new();
        scope.add(
            file.items.iter().filter_map(|i| match i {
                Item::Preset(p) => Some(p),
                _ => None,
            }),
            &mut errors,
        );
        let mut resolver = Resolver::new(&scope);
        let experiment = file
            .items
            .iter()
            .find_map(|i| match i {
                Item::Experiment(e) => Some(e),
                _ => None,
            })
            .expect("test spec has an experiment");
        let mut x = resolver.experiment(experiment);
        crate::check::derive::derive(&mut x.root);
        assert!(resolver.errors.is_empty(), "{:?}", resolver.errors);
        x
    }

    /// The codes `rule` reports on `body` (wrapped in an experiment with defaults around it).
    pub fn codes(rule: Rule, body: &str) -> Vec<&'static str> {
        let x = resolve(&format!("experiment \"t\" {{ {body} }}"));
        rule(&x, &context()).into_iter().map(|d| d.code).collect()
    }
}
