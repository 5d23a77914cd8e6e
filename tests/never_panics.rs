//! The parser and checker never panic, on any input.

use std::path::Path;

use proptest::prelude::*;

mod common;

fn check_text(text: String) {
    let _ = lra::check::check_source(Path::new("experiments/fuzz.lra"), text, &common::context());
}

fn experiment_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for dir in std::fs::read_dir("experiments").unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                texts.push(std::fs::read_to_string(f.unwrap().path()).unwrap());
            }
        }
    }
    texts.sort();
    texts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_text(String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn random_token_soup_never_panics(tokens in proptest::collection::vec(
        prop_oneof![
            Just("experiment \"x\""), Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("]"),
            Just("model"), Just("task"), Just("listops"), Just("transformer"), Just("="), Just(","),
            Just("1e-3"), Just("5%"), Just("12_000"), Just("\"s\""), Just("best val.accuracy"),
            Just("import \"x.lra\""), Just("pretrain"), Just("masked"), Just("finetune"), Just("//c\n"),
        ],
        0..64,
    )) {
        check_text(tokens.join(" "));
    }

    #[test]
    fn mutated_experiments_never_panic(
        index in 0usize..1000,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, any::<u8>()), 1..8),
    ) {
        let texts = experiment_texts();
        let mut bytes = texts[index % texts.len()].clone().into_bytes();
        for (at, op, byte) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => { bytes.remove(i); }
                1 => bytes.insert(i, byte),
                2 => bytes[i] = byte,
                _ => { let j = (i + 1 + byte as usize).min(bytes.len()); bytes.drain(i..j); }
            }
        }
        check_text(String::from_utf8_lossy(&bytes).into_owned());
    }
}
