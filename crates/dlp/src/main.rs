//! `dlp`: scan files, benchmark, generate the test corpus.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use dlp::rules::{self, Rule};
use dlp::{corpus, Engine};

/// Cordon DLP: find secrets, personal data and excerpts of protected
/// documents.
#[derive(Debug, Parser)]
#[command(name = "dlp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan files or directories. Exit 0 clean, 1 findings, 2 bad input.
    Scan {
        /// Extra rule files (TOML); the built-in packs always apply unless
        /// `--no-builtin`.
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
        /// Only the rules from `--rules`.
        #[arg(long)]
        no_builtin: bool,
        /// One JSON object per finding per line.
        #[arg(long)]
        json: bool,
        /// Files or directories (recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Measure scanning throughput over a corpus directory.
    Bench {
        /// The corpus (see `dlp corpus`).
        #[arg(long)]
        corpus: PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Extra rule files.
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
        /// Repetitions (the best is reported).
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Generate the test corpus with planted items and decoys
    /// (`manifest.jsonl` lists them).
    Corpus {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Total size in MiB.
        #[arg(long, default_value_t = 100)]
        mib: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print the rules' regexes and literals one per line (for comparing
    /// with grep tools).
    Patterns {
        /// Extra rule files.
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
    },
}

fn load_rules(extra: &[PathBuf], builtin: bool) -> Result<Vec<Rule>, String> {
    let mut all = if builtin {
        rules::builtin().map_err(|e| e.to_string())?
    } else {
        vec![]
    };
    for p in extra {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        all.extend(rules::parse(&text, &p.display().to_string()).map_err(|e| e.to_string())?);
    }
    Ok(all)
}

fn files_under(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = vec![];
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let md = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if md.is_dir() {
            let rd = std::fs::read_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            for e in rd {
                stack.push(e.map_err(|e| e.to_string())?.path());
            }
        } else if md.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn line_col(hay: &[u8], at: usize) -> (usize, usize) {
    let before = &hay[..at.min(hay.len())];
    let line = memchr_count(before) + 1;
    let col = at
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn scan(
    rules: &[PathBuf],
    no_builtin: bool,
    json: bool,
    paths: &[PathBuf],
) -> Result<bool, String> {
    let engine = Engine::new(&load_rules(rules, !no_builtin)?).map_err(|e| e.to_string())?;
    let files = files_under(paths)?;
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{}: {e}", f.display())))
        .collect::<Result<_, _>>()?;
    let parts: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let results = engine.scan_batch(&parts);
    let mut any = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for ((file, hay), found) in files.iter().zip(&data).zip(results) {
        for f in found {
            any = true;
            let (line, col) = line_col(hay, f.start);
            let res = if json {
                let mut v = serde_json::to_value(&f).map_err(|e| e.to_string())?;
                v["path"] = serde_json::Value::String(file.display().to_string());
                v["line"] = line.into();
                writeln!(out, "{v}")
            } else {
                let via = if f.decoded.is_empty() {
                    String::new()
                } else {
                    format!(" (in {})", f.decoded.join(" in "))
                };
                let doc = f
                    .document
                    .as_deref()
                    .map(|d| format!(" copies {d}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}:{line}:{col}: {} [{}]{via}{doc}: {}",
                    file.display(),
                    f.rule,
                    f.severity,
                    f.excerpt
                )
            };
            res.map_err(|e| e.to_string())?;
        }
    }
    Ok(any)
}

fn bench(dir: &Path, threads: usize, rules: &[PathBuf], reps: usize) -> Result<(), String> {
    let engine = Engine::new(&load_rules(rules, true)?).map_err(|e| e.to_string())?;
    let files = files_under(&[dir.to_path_buf()])?;
    let data: Vec<Vec<u8>> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "manifest.jsonl"))
        .map(|f| std::fs::read(f).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let bytes: usize = data.iter().map(Vec::len).sum();
    let parts: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let r = pool.install(|| engine.scan_batch(&parts));
        best = best.min(t.elapsed().as_secs_f64());
        findings = r.iter().map(Vec::len).sum();
    }
    println!(
        "dlp bench: {} files, {:.1} MiB, {threads} thread(s), {} rules: best of {reps} {:.3} s = {:.0} MB/s, {findings} findings",
        parts.len(),
        bytes as f64 / (1 << 20) as f64,
        engine.rule_count(),
        best,
        bytes as f64 / best / 1e6
    );
    Ok(())
}

fn write_corpus(out: &Path, mib: usize, seed: u64) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let (files, manifest) = corpus::generate(seed, mib << 20, 1 << 20, 16 << 10);
    for f in &files {
        std::fs::write(out.join(&f.name), &f.bytes).map_err(|e| e.to_string())?;
    }
    let lines: Vec<String> = manifest
        .iter()
        .filter_map(|m| serde_json::to_string(m).ok())
        .collect();
    std::fs::write(out.join("manifest.jsonl"), lines.join("\n") + "\n")
        .map_err(|e| e.to_string())?;
    println!(
        "{} files, {} planted items and decoys, in {}",
        files.len(),
        manifest.len(),
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Scan {
            rules,
            no_builtin,
            json,
            paths,
        } => scan(&rules, no_builtin, json, &paths).map(|any| if any { 1 } else { 0 }),
        Command::Bench {
            corpus,
            threads,
            rules,
            reps,
        } => bench(&corpus, threads, &rules, reps).map(|()| 0),
        Command::Corpus { out, mib, seed } => write_corpus(&out, mib, seed).map(|()| 0),
        Command::Patterns { rules } => load_rules(&rules, true).map(|rs| {
            for r in rs {
                if let Some(p) = r.pattern {
                    // grep tools refuse duplicate group names across lines.
                    println!("{}", p.replace("(?P<secret>", "("));
                }
                for l in r.patterns {
                    println!("{}", regex_syntax::escape(&l));
                }
            }
            0
        }),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("dlp: {e}");
            ExitCode::from(2)
        }
    }
}
