//! Reading release files: plain or gzip-compressed, LF or CRLF, located by base name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::error::DataError;

/// Opens `path`, decompressing it on the fly when its name ends in `.gz`.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let is_gz = path.extension().is_some_and(|ext| ext == "gz");
    Ok(if is_gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    })
}

/// Reads a whole (possibly compressed) file.
pub fn read_all(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    Ok(bytes)
}

/// `dir/name` or `dir/name.gz`, whichever exists (the plain one first).
pub(crate) fn find_maybe_gz(dir: &Path, name: &str) -> Option<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Calls `f(line_number, line)` for every line of `path`, without its `\n` or `\r\n`.
/// Line numbers start at 1, as editors count them.
pub(crate) fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &[u8]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut reader = open(path)?;
    let mut line = Vec::with_capacity(1 << 12);
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let mut end = line.len();
        if line[..end].ends_with(b"\n") {
            end -= 1;
        }
        if line[..end].ends_with(b"\r") {
            end -= 1;
        }
        f(number, &line[..end])?;
    }
}

/// Splits a line on tabs into exactly `n` fields, or says which line has how many.
pub(crate) fn tab_fields<'a>(
    path: &Path,
    number: usize,
    line: &'a [u8],
    n: usize,
    layout: &str,
) -> Result<Vec<&'a [u8]>, DataError> {
    let fields: Vec<&[u8]> = line.splitn(n, |&b| b == b'\t').collect();
    field_count(path, number, line, fields, n, layout)
}

/// Exactly `n` tab-separated fields: a line with more is malformed (where the last field
/// cannot hold a tab).
pub(crate) fn exact_tab_fields<'a>(
    path: &Path,
    number: usize,
    line: &'a [u8],
    n: usize,
    layout: &str,
) -> Result<Vec<&'a [u8]>, DataError> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
    field_count(path, number, line, fields, n, layout)
}

fn field_count<'a>(
    path: &Path,
    number: usize,
    line: &'a [u8],
    fields: Vec<&'a [u8]>,
    n: usize,
    layout: &str,
) -> Result<Vec<&'a [u8]>, DataError> {
    if fields.len() != n {
        return Err(DataError::malformed(
            path,
            number,
            format!("{n} tab-separated fields `{layout}`"),
            line,
        ));
    }
    Ok(fields)
}

/// Parses a class label such as `1`, or `1.0` as some AAN releases write it.
pub(crate) fn parse_label(
    path: &Path,
    number: usize,
    field: &[u8],
    classes: usize,
) -> Result<u8, DataError> {
    let text = std::str::from_utf8(field).unwrap_or("").trim();
    let value = text
        .parse::<u32>()
        .ok()
        .or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.fract() == 0.0 && *v >= 0.0)
                .map(|v| v as u32)
        })
        .filter(|&v| (v as usize) < classes);
    value.map(|v| v as u8).ok_or_else(|| {
        DataError::malformed(
            path,
            number,
            format!("a label from 0 to {}", classes - 1),
            field,
        )
    })
}

/// The text of a field as UTF-8, or a malformed-line error.
pub(crate) fn utf8<'a>(path: &Path, number: usize, field: &'a [u8]) -> Result<&'a str, DataError> {
    std::str::from_utf8(field).map_err(|_| DataError::malformed(path, number, "UTF-8 text", field))
}
