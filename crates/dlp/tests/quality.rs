//! Detection quality on the generated corpus: recall on planted items
//! (plain and hidden by every decoder), silence on decoys.

use std::collections::HashMap;

use dlp::corpus;
use dlp::rules;
use dlp::Engine;

fn engine() -> Engine {
    Engine::new(&rules::builtin().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn recall_on_planted_items_and_nothing_on_decoys() {
    let e = engine();
    for seed in [1u64, 2] {
        let (files, manifest) = corpus::generate(seed, 6 << 20, 256 << 10, 2 << 10);
        let parts: Vec<&[u8]> = files.iter().map(|f| f.bytes.as_slice()).collect();
        let results = e.scan_batch(&parts);
        let by_name: HashMap<&str, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let mut planted = 0;
        let mut found = 0;
        let mut missed: HashMap<(String, String), usize> = HashMap::new();
        let mut decoy_hits = vec![];
        for p in &manifest {
            let r = &results[by_name[p.file.as_str()]];
            let overlapping: Vec<_> = r
                .iter()
                .filter(|f| f.start < p.end && p.start < f.end)
                .collect();
            if p.decoy {
                if !overlapping.is_empty() {
                    decoy_hits.push(format!(
                        "{} {:?}: {:?}",
                        p.rule,
                        String::from_utf8_lossy(
                            &files[by_name[p.file.as_str()]].bytes[p.start..p.end]
                        ),
                        overlapping.iter().map(|f| &f.rule).collect::<Vec<_>>()
                    ));
                }
                continue;
            }
            planted += 1;
            if overlapping.iter().any(|f| f.rule == p.rule) {
                found += 1;
            } else {
                *missed
                    .entry((p.rule.clone(), p.hidden.clone()))
                    .or_default() += 1;
            }
        }
        let recall = found as f64 / planted as f64;
        assert!(planted > 1500, "only {planted} planted");
        assert!(
            recall >= 0.99,
            "seed {seed}: recall {recall:.4} ({found}/{planted}); missed {missed:?}"
        );
        assert!(
            decoy_hits.is_empty(),
            "seed {seed}: decoys reported: {decoy_hits:#?}"
        );
        // Every hiding was exercised.
        for how in ["plain", "base64", "json", "percent", "unicode", "hex"] {
            assert!(
                manifest.iter().any(|p| p.hidden == how && !p.decoy),
                "{how} not planted"
            );
        }
        // No finding carries the matched text in its excerpt.
        for (f, r) in files.iter().zip(&results) {
            for x in r {
                let secret = String::from_utf8_lossy(&f.bytes[x.start..x.end]).into_owned();
                if secret.len() >= 8 {
                    assert!(
                        !x.excerpt.contains(&secret),
                        "{} leaks in {}",
                        x.rule,
                        x.excerpt
                    );
                }
            }
        }
        eprintln!("seed {seed}: recall {recall:.4} ({found}/{planted}), decoys silent");
    }
}
