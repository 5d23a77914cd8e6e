//! Learning-rate schedules: `constant | cosine | linear`, each after a linear warm-up.
//!
//! Warm-up is in steps (a percentage in the spec is resolved to steps by the caller). During
//! warm-up the rate rises linearly from `peak / warmup` to `peak`; afterwards `constant` stays
//! at `peak`, `cosine` follows ½(1 + cos(πt)) from `peak` to `min_lr` (Loshchilov & Hutter
//! 2017, without restarts) and `linear` falls in a straight line to `min_lr`, where t ∈ [0, 1]
//! is the fraction of the post-warm-up steps done.

use serde::{Deserialize, Serialize};

/// The language's schedules are the engine's.
pub use crate::spec::ScheduleKind;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// Steps of linear warm-up (0 for none).
    pub warmup_steps: u64,
    /// Total steps of the phase, warm-up included (used by the decaying kinds).
    pub total_steps: u64,
    /// The floor the decaying kinds end at, as a fraction-free learning rate.
    pub min_lr: f32,
}

impl Schedule {
    pub fn constant(warmup_steps: u64) -> Self {
        Schedule {
            kind: ScheduleKind::Constant,
            warmup_steps,
            total_steps: warmup_steps,
            min_lr: 0.0,
        }
    }

    /// The learning rate for 0-based `step` given the peak rate `peak`.
    pub(crate) fn lr_at(&self, step: u64, peak: f32) -> f32 {
        if step < self.warmup_steps {
            return peak * (step + 1) as f32 / self.warmup_steps as f32;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps);
        let t = if decay_steps == 0 {
            1.0
        } else {
            ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0)
        };
        let floor = self.min_lr.min(peak) as f64;
        let peak = peak as f64;
        let lr = match self.kind {
            ScheduleKind::Constant => peak,
            ScheduleKind::Cosine => {
                floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            ScheduleKind::Linear => peak + (floor - peak) * t,
        };
        lr as f32
    }

    /// The schedule's multiplier at `step` for a peak of 1, applied to groups that carry their
    /// own learning rate so they follow the same warm-up and decay shape.
    pub fn factor_at(&self, step: u64, peak: f32) -> f32 {
        if peak == 0.0 {
            0.0
        } else {
            self.lr_at(step, peak) / peak
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: ScheduleKind) -> Schedule {
        Schedule {
            kind,
            warmup_steps: 10,
            total_steps: 110,
            min_lr: 1e-5,
        }
    }

    #[test]
    fn warmup_is_linear_and_reaches_the_peak() {
        let s = schedule(ScheduleKind::Constant);
        assert!((s.lr_at(0, 1e-3) - 1e-4).abs() < 1e-9);
        assert!((s.lr_at(4, 1e-3) - 5e-4).abs() < 1e-9);
        assert!((s.lr_at(9, 1e-3) - 1e-3).abs() < 1e-9);
        assert_eq!(s.lr_at(1000, 1e-3), 1e-3);
    }

    #[test]
    fn cosine_falls_from_peak_to_min_lr() {
        let s = schedule(ScheduleKind::Cosine);
        assert!((s.lr_at(10, 1e-3) - 1e-3).abs() < 1e-9);
        let mid = 1e-5 + (1e-3 - 1e-5) * 0.5;
        assert!((s.lr_at(60, 1e-3) - mid).abs() < 1e-8);
        assert!((s.lr_at(110, 1e-3) - 1e-5).abs() < 1e-9);
        assert!((s.lr_at(500, 1e-3) - 1e-5).abs() < 1e-9);
        for step in 10..110 {
            assert!(s.lr_at(step + 1, 1e-3) <= s.lr_at(step, 1e-3));
        }
    }

    #[test]
    fn linear_falls_in_a_straight_line() {
        let s = schedule(ScheduleKind::Linear);
        let quarter = 1e-3 + (1e-5 - 1e-3) * 0.25;
        assert!((s.lr_at(35, 1e-3) - quarter).abs() < 1e-8);
        assert!((s.lr_at(110, 1e-3) - 1e-5).abs() < 1e-9);
    }

    #[test]
    fn factor_scales_group_rates_with_the_same_shape() {
        let s = schedule(ScheduleKind::Cosine);
        let f = s.factor_at(60, 1e-3);
        assert!(f > 0.4 && f < 0.6);
        assert_eq!(s.factor_at(0, 0.0), 0.0);
    }
}
