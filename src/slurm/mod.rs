//! Running a batch's points on a Slurm cluster: one sbatch script per stage ([`script`]),
//! submitted as job arrays split at the cluster's MaxArraySize ([`submit`]), recorded in
//! `<batch-dir>/slurm/jobs.json` ([`jobs_file`]), watched through sacct and squeue
//! ([`query`]) and cancelled with scancel ([`cancel`]). The executor's settings are
//! [`options::SlurmOptions`]. This module knows nothing of plans: a stage is a name, a script
//! and a list of plan indices, and each array task runs `lra batch worker <batch-dir> <index>`.
//! [`batch_jobs`] puts these together for a whole batch. See docs/SLURM.md for users.

pub mod array;
pub mod batch_jobs;
pub mod cancel;
pub mod command;
pub mod error;
pub mod jobs_file;
pub mod options;
pub mod query;
pub mod script;
pub mod state;
pub mod submit;

pub use batch_jobs::{batch_states, cancel_batch, submit_batch, ArrayPlan};
pub use cancel::cancel;
pub use error::{Result, SlurmError};
pub use jobs_file::{JobsRecord, PointSlurmState, PointStates, Submission};
pub use options::SlurmOptions;
pub use query::{query, Accounting, QueryResult};
pub use script::{StageScript, WorkerCommand};
pub use state::{TaskId, TaskState, TaskStatus};
pub use submit::{max_array_size, submit, ArrayRequest};
