//! Job-array index lists: written compactly for `--array` ("0-3,7,9-12"), read back from what
//! squeue and sacct print for pending arrays ("[5-10%2]"), and split at the cluster's
//! MaxArraySize (Slurm refuses any array index ≥ MaxArraySize, so a plan of 2,500 points on a
//! cluster with MaxArraySize 1001 becomes three arrays whose tasks add an offset).

use std::collections::BTreeSet;

/// One array to submit: its task ids (plan index − offset), all below MaxArraySize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArrayChunk {
    /// Added to `$SLURM_ARRAY_TASK_ID` to get the plan index.
    pub offset: usize,
    pub task_ids: Vec<usize>,
}

/// Groups plan indices into arrays whose task ids stay below `max_array_size`: chunk `k`
/// holds the indices in `[k·max, (k+1)·max)` with offset `k·max`.
pub(crate) fn split_at_max_array_size(indices: &[usize], max_array_size: usize) -> Vec<ArrayChunk> {
    let max = max_array_size.max(1);
    let unique: BTreeSet<usize> = indices.iter().copied().collect();
    let mut chunks: Vec<ArrayChunk> = Vec::new();
    for index in unique {
        let offset = index / max * max;
        match chunks.last_mut() {
            Some(chunk) if chunk.offset == offset => chunk.task_ids.push(index - offset),
            _ => chunks.push(ArrayChunk {
                offset,
                task_ids: vec![index - offset],
            }),
        }
    }
    chunks
}

/// `--array`'s index list: runs of consecutive ids as ranges, sorted, such as "0-3,7,9-12".
pub(crate) fn compress(task_ids: &[usize]) -> String {
    let unique: BTreeSet<usize> = task_ids.iter().copied().collect();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for id in unique {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == id => *end = id,
            _ => runs.push((id, id)),
        }
    }
    runs.iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads an index list as squeue and sacct print it: "7", "[5-10%2]", "[1,3,5-7:2]".
/// A step (`:2`) keeps every second id; a `%N` limit is dropped.
pub fn expand(text: &str) -> Result<Vec<usize>, String> {
    let inner = text.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(inner);
    let inner = inner.split('%').next().unwrap_or(inner);
    let number = |part: &str| {
        part.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{part}` is not an array index"))
    };
    let mut ids = Vec::new();
    for item in inner.split(',') {
        let (range, step) = match item.split_once(':') {
            Some((range, step)) => (range, number(step)?.max(1)),
            None => (item, 1),
        };
        match range.split_once('-') {
            Some((start, end)) => {
                let (start, end) = (number(start)?, number(end)?);
                if end < start {
                    return Err(format!("`{item}` is a range that ends before it starts"));
                }
                ids.extend((start..=end).step_by(step));
            }
            None => ids.push(number(range)?),
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compress_writes_runs_as_ranges() {
        assert_eq!(compress(&[0, 1, 2, 3, 7, 9, 10, 11, 12]), "0-3,7,9-12");
        assert_eq!(compress(&[5]), "5");
        assert_eq!(compress(&[3, 1, 2, 2]), "1-3");
    }

    #[test]
    fn expand_reads_what_squeue_and_sacct_print() {
        assert_eq!(expand("7").unwrap(), vec![7]);
        assert_eq!(expand("[5-8%2]").unwrap(), vec![5, 6, 7, 8]);
        assert_eq!(expand("[1,3,5-9:2]").unwrap(), vec![1, 3, 5, 7, 9]);
        assert!(expand("[a-3]").is_err());
        assert!(expand("[5-3]").is_err());
    }

    #[test]
    fn split_keeps_task_ids_below_max_array_size() {
        let chunks = split_at_max_array_size(&[0, 1, 3, 4, 5, 9, 12], 4);
        assert_eq!(
            chunks,
            vec![
                ArrayChunk {
                    offset: 0,
                    task_ids: vec![0, 1, 3]
                },
                ArrayChunk {
                    offset: 4,
                    task_ids: vec![0, 1]
                },
                ArrayChunk {
                    offset: 8,
                    task_ids: vec![1]
                },
                ArrayChunk {
                    offset: 12,
                    task_ids: vec![0]
                },
            ]
        );
    }

    proptest! {
        #[test]
        fn compress_then_expand_gives_the_sorted_ids(ids in proptest::collection::vec(0usize..200, 1..50)) {
            let sorted: Vec<usize> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(expand(&compress(&ids)).unwrap(), sorted);
        }

        #[test]
        fn split_covers_every_index_once(ids in proptest::collection::vec(0usize..5000, 1..80), max in 1usize..1500) {
            let chunks = split_at_max_array_size(&ids, max);
            let mut covered = Vec::new();
            for chunk in &chunks {
                prop_assert!(chunk.task_ids.iter().all(|&id| id < max));
                covered.extend(chunk.task_ids.iter().map(|id| id + chunk.offset));
            }
            let expected: Vec<usize> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(covered, expected);
        }
    }
}
