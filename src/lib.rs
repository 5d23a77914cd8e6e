//! lra: a declarative experiment language and its interpreter for long-sequence models on the
//! Long Range Arena. See `DESIGN.md` in the shared folder and the README for the tour.

pub mod data;
