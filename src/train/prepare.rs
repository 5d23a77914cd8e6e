//! Makes a missing data folder when the spec says how (`task … { generate { … } }`).

use std::sync::Mutex;

use super::error::Result;
use crate::data::gen::listops::ListOpsGen;
use crate::data::gen::pathfinder::{self, PathfinderParams};
use crate::spec::{ExperimentSpec, Generate};

/// Images per folder of the Pathfinder release layout.
const PATHFINDER_BATCH: usize = 1000;

/// Held while a folder is checked and generated: runs in flight at once (`lra run --jobs`) on
/// one task must neither both generate its folder nor load it half written.
static GENERATING: Mutex<()> = Mutex::new(());

/// Generates the task's data folder if it is missing and the spec has a `generate` section.
/// Returns whether it generated anything. Safe to call from several runs at once: one
/// generates, the others wait and find the folder made.
pub fn ensure_data(x: &ExperimentSpec) -> Result<bool> {
    let t = &x.task;
    let Some(generate) = t.generate else {
        return Ok(false);
    };
    let _one_at_a_time = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
    if t.data.exists() {
        return Ok(false);
    }
    match generate {
        Generate::ListOps {
            train,
            val,
            test,
            min_length,
            max_length,
            seed,
        } => {
            ListOpsGen {
                train,
                val,
                test,
                min_len: min_length,
                max_len: max_length,
                seed,
                ..ListOpsGen::default()
            }
            .write(&t.data)?;
        }
        Generate::Pathfinder { n, seed } => {
            let config = super::compile::data_config(x);
            let resolution = config.pathfinder_resolution();
            let params = PathfinderParams::lra(resolution, config.difficulty)?;
            pathfinder::write(
                &params,
                config.difficulty,
                &t.data,
                n,
                PATHFINDER_BATCH,
                seed,
            )?;
        }
    }
    Ok(true)
}
