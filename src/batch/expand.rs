//! A batch file's points: every spec experiment × every combination of the axes (the `sweep`
//! axes crossed, each `zip` group advanced together) × every seed, less the exclusions, in a
//! fixed order (files as listed, experiments as written, the first axis outermost, seeds
//! innermost) so point numbers and names are stable.

use super::error::BatchError;
use super::file::{Axis, BatchFile, Setting};
use super::yaml::Node;
use crate::diagnostic::Span;

/// One value chosen for a path.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice<'f> {
    pub path: &'f str,
    /// Where the path is written (the `set` key or the axis key).
    pub path_span: Span,
    pub value: &'f Node,
}

/// One combination of the axes, with the `set` values every point shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Combination<'f> {
    /// `set` first, then one choice per axis.
    pub choices: Vec<Choice<'f>>,
    /// How many of `choices` come from axes (the last ones): the point's label shows these.
    pub varying: usize,
}

impl Combination<'_> {
    /// `model.d_model 64, finetune.optimizer.lr 1e-3`
    pub fn label(&self) -> String {
        self.choices[self.choices.len() - self.varying..]
            .iter()
            .map(|c| format!("{} {}", c.path, c.value.scalar().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The index tuples of a product of dimensions of the given lengths, the first outermost.
pub(crate) fn product(lengths: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = lengths.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut index = vec![0; lengths.len()];
    for _ in 0..total {
        out.push(index.clone());
        for d in (0..lengths.len()).rev() {
            index[d] += 1;
            if index[d] < lengths[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// The combinations of `file`'s axes, in order (one empty combination when there are none).
/// Exclusions naming only axes are applied here; those naming `seed` too, per point.
pub fn combinations(file: &BatchFile) -> Vec<Combination<'_>> {
    // One dimension per sweep axis and per zip group.
    let dims: Vec<Vec<&Axis>> = file
        .sweep
        .iter()
        .map(|a| vec![a])
        .chain(file.zip.iter().map(|g| g.iter().collect()))
        .collect();
    let lengths: Vec<usize> = dims
        .iter()
        .map(|axes| axes.iter().map(|a| a.values.len()).min().unwrap_or(0))
        .collect();
    let shared: Vec<Choice> = file
        .set
        .iter()
        .map(|s| Choice {
            path: &s.path.value,
            path_span: s.path.span,
            value: &s.value,
        })
        .collect();
    product(&lengths)
        .into_iter()
        .map(|index| {
            let mut choices = shared.clone();
            for (axes, &i) in dims.iter().zip(&index) {
                for axis in axes {
                    choices.push(Choice {
                        path: &axis.path.value,
                        path_span: axis.path.span,
                        value: &axis.values[i],
                    });
                }
            }
            Combination {
                varying: choices.len() - shared.len(),
                choices,
            }
        })
        .collect()
}

/// Whether a point (a combination and a seed) matches an exclusion: every value it names.
pub(crate) fn excluded(
    combination: &Combination,
    seed: Option<u64>,
    exclusions: &[Vec<Setting>],
) -> bool {
    exclusions.iter().any(|rule| {
        !rule.is_empty()
            && rule.iter().all(|s| {
                let wanted = s.value.scalar().unwrap_or_default();
                if s.path.value == "seed" {
                    return seed.is_some_and(|seed| wanted == seed.to_string());
                }
                combination
                    .choices
                    .iter()
                    .any(|c| c.path == s.path.value && c.value.scalar() == Some(wanted))
            })
    })
}

/// Exclusions must name axes (or `seed`) and values they take, or they silently match nothing.
pub(crate) fn check_exclusions(file: &BatchFile, errors: &mut Vec<BatchError>) {
    for setting in file.exclude.iter().flatten() {
        let wanted = setting.value.scalar().unwrap_or_default();
        if setting.path.value == "seed" {
            match file.seeds.as_deref() {
                Some([first, ..]) => {
                    if !file
                        .seeds
                        .iter()
                        .flatten()
                        .any(|s| s.value.to_string() == wanted)
                    {
                        errors.push(BatchError::ExcludeValueNotOnAxis {
                            span: setting.value.span,
                            axis: first.span,
                            path: "seed".into(),
                            value: wanted.into(),
                        });
                    }
                }
                _ => errors.push(BatchError::ExcludeNotAnAxis {
                    span: setting.path.span,
                    path: "seed".into(),
                }),
            }
            continue;
        }
        match file.axes().find(|a| a.path.value == setting.path.value) {
            None => errors.push(BatchError::ExcludeNotAnAxis {
                span: setting.path.span,
                path: setting.path.value.clone(),
            }),
            Some(axis) => {
                if !axis.values.iter().any(|v| v.scalar() == Some(wanted)) {
                    errors.push(BatchError::ExcludeValueNotOnAxis {
                        span: setting.value.span,
                        axis: axis.span,
                        path: setting.path.value.clone(),
                        value: wanted.into(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_first_dimension_is_outermost() {
        assert_eq!(
            product(&[2, 3]),
            vec![
                vec![0, 0],
                vec![0, 1],
                vec![0, 2],
                vec![1, 0],
                vec![1, 1],
                vec![1, 2]
            ]
        );
        assert_eq!(product(&[]), vec![Vec::<usize>::new()]);
        assert!(product(&[2, 0]).is_empty());
    }

    proptest! {
        #[test]
        fn a_product_has_every_tuple_once(lengths in proptest::collection::vec(1usize..4, 0..4)) {
            let tuples = product(&lengths);
            prop_assert_eq!(tuples.len(), lengths.iter().product::<usize>());
            let mut sorted = tuples.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), tuples.len());
            prop_assert!(tuples.windows(2).all(|w| w[0] < w[1]), "lexicographic order");
        }
    }
}
