//! The fuzz targets' committed corpus on every `cargo test`: each entry function of
//! `crbot::fuzzing` runs over its seed files (`fuzz/corpus/<target>/`, which hold the inputs
//! of past findings too) and over a few thousand deterministic mutations of them, so that a
//! bug the fuzzer once found stays fixed without nightly or cargo-fuzz. The long runs are
//! described in docs/FUZZING.md.

use std::path::PathBuf;

use crbot::fuzzing;

/// Mutations per target on top of the seeds; the exchange target makes real requests, so it
/// gets fewer.
const MUTATIONS: usize = 2000;
const SIM_MUTATIONS: usize = 150;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// A small deterministic generator (xorshift64*), so a failure reproduces from the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One libFuzzer-style mutation: flip, set, insert, delete, duplicate, splice or truncate.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = *b"\0\x01\x7f\x80\xff09-.e\"{}[],:"
                    .get(rng.below(17))
                    .unwrap_or(&0);
            }
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i + 1);
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64) + 1);
                let piece = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, piece);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                let digits = b"79228162514264337593543950335";
                v.splice(i..i, digits.iter().copied());
            }
        }
    }
    v
}

fn run(target: &str, mutations: usize) {
    let entry = fuzzing::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "the corpus of {target} is empty");
    for seed in &seeds {
        entry(seed);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for _ in 0..mutations {
        let input = mutate(&mut rng, &seeds);
        entry(&input);
    }
}

#[test]
fn every_target_has_a_committed_corpus() {
    for (name, _) in fuzzing::TARGETS {
        assert!(!corpus(name).is_empty(), "fuzz/corpus/{name} has no seed");
    }
}

#[test]
fn client_decoders_survive_the_corpus_and_its_mutations() {
    run("client_frames", MUTATIONS);
}

#[test]
fn rest_answer_mapping_survives_the_corpus_and_its_mutations() {
    run("rest_answer", MUTATIONS);
}

#[test]
fn local_exchange_answers_every_request_of_the_corpus_and_its_mutations() {
    run("sim_requests", SIM_MUTATIONS);
    // The target signs its requests so that they reach order placement and matching; if the
    // signing drifted from the exchange's rules, every order would stop at the signature check.
    assert!(
        fuzzing::sim_orders_accepted() > 0,
        "no order of the corpus got past the exchange's checks"
    );
}

#[test]
fn configuration_survives_the_corpus_and_its_mutations() {
    run("config_values", MUTATIONS);
}

#[test]
fn vault_reader_survives_the_corpus_and_its_mutations() {
    run("vault_file", MUTATIONS);
}

#[test]
fn journal_reads_survive_the_corpus_and_its_mutations() {
    run("journal_rows", MUTATIONS);
}

/// The coverage-free long run, for machines without cargo-fuzz or nightly:
/// `FUZZ_TARGET=client_frames FUZZ_EXECS=1000000 cargo test --release --test fuzz_corpus -- --ignored`.
/// Mutations are deterministic per `FUZZ_SEED`, so a failure reproduces from its seed.
#[test]
#[ignore = "long run; see docs/FUZZING.md"]
fn long_mutation_run() {
    let target = std::env::var("FUZZ_TARGET").unwrap_or_else(|_| "client_frames".into());
    let execs: usize = std::env::var("FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let entry = fuzzing::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let seeds = corpus(&target);
    let mut rng = Rng(seed | 1);
    let started = std::time::Instant::now();
    for _ in 0..execs {
        let input = mutate(&mut rng, &seeds);
        if let Err(panic) = std::panic::catch_unwind(|| entry(&input)) {
            let path = std::env::temp_dir().join(format!("crbot-fuzz-{target}-crash"));
            let _ = std::fs::write(&path, &input);
            eprintln!("{target}: input saved to {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!(
        "{target}: {execs} executions in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
}

/// Replays `fuzz/findings/<target>/*`: inputs that still fail on this branch because the fix
/// belongs to another change. Once they pass, move them into `fuzz/corpus/<target>/`.
/// `cargo test --test fuzz_corpus replay_findings -- --ignored --nocapture`
#[test]
#[ignore = "replays fuzz/findings/ (empty while every finding is fixed); run it by hand after a fuzzing run"]
fn replay_findings() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/findings");
    let mut failed = Vec::new();
    for (name, entry) in fuzzing::TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        files.sort();
        for path in files {
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&input));
            eprintln!(
                "{}: {}",
                path.display(),
                if outcome.is_ok() { "passes" } else { "FAILS" }
            );
            if outcome.is_err() {
                failed.push(path);
            }
        }
    }
    assert!(failed.is_empty(), "still failing: {failed:?}");
}
