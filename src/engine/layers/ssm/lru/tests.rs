//! The layer against the LRU recurrence written out in f64 from its parameters (the paper's
//! appendix A forward pass), in both directions.

use dfdx::prelude::*;
use num_complex::Complex64;

use super::*;
use crate::engine::layers::ssm::testing::{assert_matches_reference, output};
use crate::engine::params::ParamStore;

const H: usize = 3;
const N: usize = 4;

fn build(bidirectional: bool) -> (ParamStore<Cpu>, Lru) {
    let mut store = ParamStore::new(Cpu::default(), 9);
    let config = LruConfig {
        d_state: N,
        r_min: 0.5,
        r_max: 0.95,
        max_phase: std::f64::consts::TAU,
        bidirectional,
    };
    let layer = Lru::build(&mut Scope::root(&mut store), H, config, DEFAULT_GROUP).unwrap();
    (store, layer)
}

/// Re(C x_t) for x_t = Λ x_{t∓1} + γ ⊙ B u_t, for one direction, added into `y`.
fn add_direction(
    store: &ParamStore<Cpu>,
    dir: &LruDirection,
    u: &[f32],
    len: usize,
    y: &mut [f64],
) {
    let value = |id| -> Vec<f64> { store.values(id).iter().map(|&v| v as f64).collect() };
    let (nu, theta, gamma, b, c) = (
        value(dir.nu_log),
        value(dir.theta_log),
        value(dir.gamma_log),
        value(dir.b),
        value(dir.c),
    );
    let lambda: Vec<Complex64> = (0..N)
        .map(|n| Complex64::new(-nu[n].exp(), theta[n].exp()).exp())
        .collect();
    let batch = u.len() / (len * H);
    for e in 0..batch {
        let mut state = [Complex64::default(); N];
        let times: Vec<usize> = if dir.reverse {
            (0..len).rev().collect()
        } else {
            (0..len).collect()
        };
        for t in times {
            let row = &u[(e * len + t) * H..(e * len + t + 1) * H];
            for n in 0..N {
                let bu: Complex64 = (0..H)
                    .map(|h| Complex64::new(b[n * H + h], b[N * H + n * H + h]) * row[h] as f64)
                    .sum();
                state[n] = lambda[n] * state[n] + gamma[n].exp() * bu;
            }
            for h in 0..H {
                y[(e * len + t) * H + h] += (0..N)
                    .map(|n| (Complex64::new(c[h * N + n], c[H * N + h * N + n]) * state[n]).re)
                    .sum::<f64>();
            }
        }
    }
}

#[test]
fn the_layer_is_the_recurrence() {
    let (batch, len) = (2, 17);
    let u: Vec<f32> = (0..batch * len * H)
        .map(|i| ((i * 29 % 13) as f32 - 6.0) / 6.0)
        .collect();
    for bidirectional in [false, true] {
        let (store, lru) = build(bidirectional);
        let y = output(&store, &lru, &u, (batch, len, H));
        let d = store.values(lru.d);
        let mut expected: Vec<f64> = u
            .iter()
            .enumerate()
            .map(|(i, &v)| d[i % H] as f64 * v as f64)
            .collect();
        for dir in &lru.directions {
            add_direction(&store, dir, &u, len, &mut expected);
        }
        assert_matches_reference(&y, &expected, &format!("bidirectional={bidirectional}"));
    }
}
