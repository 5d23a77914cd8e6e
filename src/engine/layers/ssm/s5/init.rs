//! S5's initialisation (Smith et al. 2023, §4.1 and appendix B.1; reference `s5/train.py` and
//! `s5/ssm_init.py` of lindermanlab/S5): A = block-diag(S, …, S) with J copies of the
//! (P/J)×(P/J) HiPPO-N matrix S = V·Λ·Vᴴ, so the diagonalised system has Λ repeated J times
//! and the eigenvectors block-diag(V, …, V). B and C are drawn in the original basis and moved
//! into the eigenbasis: B̃ = V⁻¹·B, C̃ = C·V (V⁻¹ = Vᴴ, V being unitary).
//!
//! Under conjugate symmetry each block keeps only its first P/(2J) eigenpairs (the negative
//! frequencies, see [`Diagonalisation`]); the other half are their conjugates and enter the
//! output as 2·Re(·). V is then the P × P/2 matrix of the kept columns, and B̃, C̃ are the
//! projections onto them.

use num_complex::Complex64;

use super::S5Config;
use crate::engine::layers::ssm::hippo::{diagonalise_normal, Diagonalisation, Matrix};

/// One block's kept eigenvalues and eigenvectors.
pub(crate) struct BlockDiagonal {
    blocks: usize,
    /// Rows of the block (its HiPPO-N size).
    size: usize,
    /// Λ of the kept eigenpairs.
    eigenvalues: Vec<Complex64>,
    /// The kept columns of the block's V, as rows (size × kept).
    vectors: Matrix<Complex64>,
}

impl BlockDiagonal {
    pub fn new(config: &S5Config) -> Self {
        let size = config.d_state / config.blocks;
        let kept = config.states() / config.blocks;
        let Diagonalisation {
            eigenvalues,
            eigenvectors,
        } = diagonalise_normal(size);
        BlockDiagonal {
            blocks: config.blocks,
            size,
            eigenvalues: eigenvalues[..kept].to_vec(),
            vectors: eigenvectors
                .into_iter()
                .map(|row| row[..kept].to_vec())
                .collect(),
        }
    }

    fn kept(&self) -> usize {
        self.eigenvalues.len()
    }

    /// Λ of the whole state: the block's eigenvalues repeated per block.
    pub(crate) fn eigenvalues(&self) -> Vec<Complex64> {
        (0..self.blocks)
            .flat_map(|_| self.eigenvalues.iter().copied())
            .collect()
    }

    /// B̃ = Vᴴ·B for a real B (P × H, rows), as (states × H) rows.
    pub(crate) fn project_input(&self, b: &[f64], width: usize) -> Matrix<Complex64> {
        let (size, kept) = (self.size, self.kept());
        (0..self.blocks * kept)
            .map(|state| {
                let (block, k) = (state / kept, state % kept);
                (0..width)
                    .map(|h| {
                        (0..size)
                            .map(|r| self.vectors[r][k].conj() * b[(block * size + r) * width + h])
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }

    /// C̃ = C·V for a complex C (H × P, rows), as (H × states) rows.
    pub(crate) fn project_output(&self, c: &Matrix<Complex64>) -> Matrix<Complex64> {
        let (size, kept) = (self.size, self.kept());
        c.iter()
            .map(|row| {
                (0..self.blocks * kept)
                    .map(|state| {
                        let (block, k) = (state / kept, state % kept);
                        (0..size)
                            .map(|r| row[block * size + r] * self.vectors[r][k])
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }
}

/// A complex matrix as the flat `[real parts | imaginary parts]` layout of the parameters.
pub(crate) fn split_parts(m: &Matrix<Complex64>) -> Vec<f32> {
    let re = m.iter().flatten().map(|z| z.re as f32);
    let im = m.iter().flatten().map(|z| z.im as f32);
    re.chain(im).collect()
}
