//! Pathfinder metadata: the release's `.npy` files are plain text (one image per line), but a
//! regenerated release may hold real NumPy string arrays (`<U..` or `|S..`); read both.

use std::path::Path;

use super::error::DataError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The rows of a metadata file, each split into its fields, with 1-based line numbers.
pub fn read_rows(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    if bytes.starts_with(MAGIC) {
        return read_npy_strings(path, bytes);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| DataError::malformed(path, 1, "UTF-8 text or a NumPy array", bytes))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split_whitespace().map(str::to_string).collect()))
        .collect())
}

fn npy_error(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A 2-D NumPy array of strings, one row per image (row numbers stand in for lines).
fn read_npy_strings(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    let major = *bytes
        .get(6)
        .ok_or_else(|| npy_error(path, "truncated header"))?;
    let truncated = || npy_error(path, "truncated header");
    let (header_len, header_start) = match major {
        1 => {
            let len = bytes.get(8..10).ok_or_else(truncated)?;
            (u16::from_le_bytes([len[0], len[1]]) as usize, 10usize)
        }
        2 | 3 => {
            let len = bytes.get(8..12).ok_or_else(truncated)?;
            (
                u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
                12,
            )
        }
        v => return Err(npy_error(path, format!("unknown NumPy format version {v}"))),
    };
    let header_end = header_start.checked_add(header_len).ok_or_else(truncated)?;
    let header = bytes.get(header_start..header_end).ok_or_else(truncated)?;
    let header = String::from_utf8_lossy(header);
    let descr = dict_value(&header, "descr")
        .and_then(|v| v.get(1..)?.split(['\'', '"']).next())
        .map(str::to_string)
        .ok_or_else(|| npy_error(path, "the header has no 'descr'"))?;
    let fortran = dict_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True"));
    let shape: Vec<usize> = dict_value(&header, "shape")
        .map(|v| {
            v.trim_start_matches('(')
                .split([',', ')'])
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [rows, cols] = shape[..] else {
        return Err(npy_error(
            path,
            format!("expected a 2-D array of strings, the shape is {shape:?}"),
        ));
    };
    let (unicode, chars) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') if descr[1..].starts_with('U') => {
            (true, descr[2..].parse::<usize>().ok())
        }
        Some(b'|') | Some(b'<') if descr[1..].starts_with('S') => {
            (false, descr[2..].parse::<usize>().ok())
        }
        _ => (false, None),
    };
    let chars = chars.ok_or_else(|| {
        npy_error(
            path,
            format!("expected a string dtype such as '<U21' or '|S21', found {descr:?}"),
        )
    })?;
    // Every size below comes from the file: a header may promise more than it holds, or more
    // than a machine could address, so each product is checked before anything is allocated.
    let width = if unicode {
        chars.checked_mul(4)
    } else {
        Some(chars)
    }
    .filter(|&w| w > 0)
    .ok_or_else(|| npy_error(path, format!("the string width of {descr:?} is not usable")))?;
    let data = &bytes[header_end..];
    let promised = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| {
            npy_error(
                path,
                format!("the shape ({rows}, {cols}) of {descr:?} strings is too large to read"),
            )
        })?;
    if data.len() < promised {
        return Err(npy_error(
            path,
            format!(
                "the data holds {} bytes, the header promises {promised}",
                data.len(),
            ),
        ));
    }
    let element = |r: usize, c: usize| -> String {
        let flat = if fortran { c * rows + r } else { r * cols + c };
        let raw = &data[flat * width..(flat + 1) * width];
        if unicode {
            raw.chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .take_while(|&u| u != 0)
                .filter_map(char::from_u32)
                .collect()
        } else {
            raw.iter()
                .take_while(|&&b| b != 0)
                .map(|&b| b as char)
                .collect()
        }
    };
    Ok((0..rows)
        .map(|r| (r + 1, (0..cols).map(|c| element(r, c)).collect()))
        .collect())
}

/// The text after `'key':` in a NumPy header dictionary.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let at = header.find(&format!("'{key}':"))?;
    Some(header[at + key.len() + 3..].trim_start())
}

/// Writes a 2-D array of strings as NumPy `<U..` (what `np.save(np.array(rows))` writes).
pub fn write_strings(rows: &[Vec<String>]) -> Vec<u8> {
    let cols = rows.first().map_or(0, Vec::len);
    let chars = rows
        .iter()
        .flatten()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut header = format!(
        "{{'descr': '<U{chars}', 'fortran_order': False, 'shape': ({}, {cols}), }}",
        rows.len()
    );
    // The header is padded with spaces to a multiple of 64 bytes, ending in a newline.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::from(MAGIC);
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for s in rows.iter().flatten() {
        let mut n = 0;
        for c in s.chars() {
            out.extend((c as u32).to_le_bytes());
            n += 1;
        }
        out.extend(std::iter::repeat_n(0u8, 4 * (chars - n)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_string_arrays_round_trip() {
        let rows = vec![
            vec!["imgs/0".to_string(), "sample_0.png".into(), "1".into()],
            vec!["imgs/0".to_string(), "sample_1.png".into(), "0".into()],
        ];
        let bytes = write_strings(&rows);
        assert_eq!(bytes.len() % 4, 0);
        let read = read_rows(Path::new("m.npy"), &bytes).unwrap();
        assert_eq!(read, vec![(1, rows[0].clone()), (2, rows[1].clone())]);
    }

    #[test]
    fn plain_text_metadata_is_split_on_spaces() {
        let read = read_rows(Path::new("m.npy"), b"imgs/0 sample_0.png 0 1\n\n").unwrap();
        assert_eq!(
            read,
            vec![(
                1,
                vec![
                    "imgs/0".into(),
                    "sample_0.png".into(),
                    "0".into(),
                    "1".into()
                ]
            )]
        );
    }

    fn npy_reason(bytes: &[u8]) -> String {
        match read_rows(Path::new("m.npy"), bytes) {
            Err(DataError::Npy { reason, .. }) => reason,
            other => panic!("expected a NumPy error, got {other:?}"),
        }
    }

    #[test]
    fn an_eight_byte_header_is_an_error_not_a_panic() {
        assert_eq!(npy_reason(b"\x93NUMPY\x01\x00"), "truncated header");
        assert_eq!(npy_reason(b"\x93NUMPY\x02\x00\x10"), "truncated header");
    }

    #[test]
    fn a_shape_that_overflows_is_an_error_not_a_panic() {
        let header =
            "{'descr': '<U9', 'fortran_order': False, 'shape': (18446744073709551615, 3), }";
        let mut bytes = Vec::from(MAGIC);
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        assert!(
            npy_reason(&bytes).contains("too large"),
            "{}",
            npy_reason(&bytes)
        );
        let huge_width = header.replace("<U9", "<U18446744073709551615");
        let mut bytes = Vec::from(MAGIC);
        bytes.extend([1, 0]);
        bytes.extend((huge_width.len() as u16).to_le_bytes());
        bytes.extend(huge_width.as_bytes());
        assert!(npy_reason(&bytes).contains("not usable"));
    }

    #[test]
    fn an_empty_descr_is_an_error_not_a_panic() {
        let header = "{'descr':";
        let mut bytes = Vec::from(MAGIC);
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        assert!(npy_reason(&bytes).contains("descr"));
    }
}
