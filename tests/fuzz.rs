//! Hostile problem files: thousands of mutations of every shipped problem and test problem (lines
//! deleted, duplicated or cut, values replaced by wrong types, NaN, infinities, huge or negative
//! numbers, junk tables) go through the parser and validator of their model kind. Never a panic;
//! every refusal is a problem error naming the file and a key.

use meanfield::family::{study_for, Source};
use meanfield::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const VALUES: &[&str] = &[
    "-1",
    "0",
    "1",
    "2",
    "1.5",
    "-0.5",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967297",
    "\"\"",
    "\"x\"",
    "\"gaussian\"",
    "\"bdf\"",
    "\"euler\"",
    "\"linear\"",
    "\"diagonal\"",
    "true",
    "[]",
    "[1, 2]",
    "[-1.0, nan]",
    "[[1]]",
    "{}",
    "{ kind = \"foo\" }",
    "{ kind = \"sparse\", support = 99999 }",
    "{ kind = \"teacher\", width = 0 }",
    "1979-05-27",
];

const JUNK: &[&str] = &[
    "foo = 1",
    "[table]",
    "[[dynamics]]",
    "kind = \"gd\"",
    "[sweep]",
    "[model]",
    "= 3",
    "\u{0}",
    "x = \"unterminated",
    "[[dynamics]]\nkind = \"self_consistent\"\nmethod = \"bdf\"",
    "[sweep]\ngamma_sigma2 = []\ngamma_w = [nan]",
];

fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(|l| l.to_string()).collect();
    for _ in 0..rng.random_range(1..=3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..6) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 | 3 => {
                // Replace the value of a `key = value` line (or an inline table's entry).
                if let Some(eq) = lines[i].find('=') {
                    let v = VALUES[rng.random_range(0..VALUES.len())];
                    lines[i] = format!("{} = {v}", lines[i][..eq].trim_end());
                }
            }
            4 => {
                let j = JUNK[rng.random_range(0..JUNK.len())];
                lines.insert(i, j.to_string());
            }
            _ => {
                let l = &lines[i];
                let cut = rng.random_range(0..=l.len());
                let cut = (0..=cut)
                    .rev()
                    .find(|&c| l.is_char_boundary(c))
                    .unwrap_or(0);
                lines[i] = l[..cut].to_string();
            }
        }
    }
    lines.join("\n")
}

/// Parses and validates with the parser of the text's model family.
fn check(text: &str, file: &Path) -> Result<(), Error> {
    let src = Source {
        text: text.to_string(),
        path: file.to_path_buf(),
    };
    study_for(&src)?.check(&src)
}

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = vec![];
    for dir in ["problems"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        entries.sort();
        for p in entries {
            texts.push(std::fs::read_to_string(p).unwrap());
        }
    }
    texts
}

#[test]
fn mutated_problem_files_never_panic_and_name_a_key() {
    let texts = corpus();
    assert!(texts.len() >= 10);
    let file = Path::new("fuzz.toml");
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let (mut refused, mut accepted) = (0, 0);
    for round in 0..20000 {
        let base = &texts[round % texts.len()];
        let text = mutate(base, &mut rng);
        let outcome = std::panic::catch_unwind(|| check(&text, file));
        let Ok(result) = outcome else {
            panic!("panic on input:\n{text}");
        };
        match result {
            Ok(()) => accepted += 1,
            Err(Error::Problem {
                file: f,
                key,
                message,
            }) => {
                refused += 1;
                assert_eq!(f, file);
                assert!(!key.is_empty() && !message.is_empty(), "{text}");
                let shown = Error::Problem {
                    file: f,
                    key: key.clone(),
                    message,
                }
                .to_string();
                assert!(
                    shown.contains("fuzz.toml") && shown.contains(&key),
                    "{shown}"
                );
            }
            Err(e) => panic!("not a problem error ({e}) for:\n{text}"),
        }
    }
    // The mutations hit both sides: most inputs are refused, some still make sense.
    assert!(
        refused > 10000 && accepted > 500,
        "{refused} refused, {accepted} accepted"
    );
}

#[test]
fn unmutated_shipped_problems_are_accepted() {
    for text in corpus() {
        check(&text, Path::new("shipped.toml")).unwrap();
    }
}
