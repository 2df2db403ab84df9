//! The agent catalog (`configs/agents.catalog.toml`, built in; more
//! entries from `--catalog FILE`): known agent runtimes and MCP servers and
//! the signs of them Linux shows.

use std::collections::BTreeMap;
use std::path::Path;

use proto::glob::Glob;
use proto::inventory::AgentKind;
use serde::Deserialize;

/// The built-in catalog.
pub const BUILT_IN: &str = include_str!("../../../../configs/agents.catalog.toml");

/// Why a catalog is refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("catalog {0}: {1}")]
    Io(String, std::io::Error),
    /// Not a valid catalog.
    #[error("catalog {0}: {1}")]
    Invalid(String, String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignals {
    #[serde(default)]
    llm_env: Vec<String>,
    #[serde(default)]
    gateway_ports: Vec<u16>,
    #[serde(default)]
    interpreters: Vec<String>,
    #[serde(default)]
    extension_dirs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    name: String,
    kind: AgentKind,
    risk: String,
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default)]
    cmdline: Vec<String>,
    #[serde(default)]
    python_modules: Vec<String>,
    #[serde(default)]
    ports: Vec<u16>,
    #[serde(default)]
    extensions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    signals: Option<RawSignals>,
    #[serde(default)]
    entry: Vec<RawEntry>,
}

/// One known agent, MCP server or local model.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stable id (`claude-code`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: AgentKind,
    /// Risk note.
    pub risk: String,
    /// Program names.
    pub programs: Vec<Glob>,
    /// Whole command lines.
    pub cmdline: Vec<Glob>,
    /// Modules of `python -m`.
    pub python_modules: Vec<Glob>,
    /// Listening TCP ports.
    pub ports: Vec<u16>,
    /// Editor extension directory names.
    pub extensions: Vec<Glob>,
}

/// What a process shows, as the catalog matches it.
#[derive(Debug, Default)]
pub struct Signs<'a> {
    /// Program names (`argv[0]`, executable, script of an interpreter).
    pub programs: Vec<&'a str>,
    /// The command line, arguments joined by spaces.
    pub cmdline: &'a str,
    /// The module of `python -m`, if any.
    pub python_module: Option<&'a str>,
    /// Listening ports.
    pub ports: &'a [u16],
}

/// The catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Entries, in file order.
    pub entries: Vec<Entry>,
    /// LLM-API environment variable names.
    pub llm_env: Vec<String>,
    /// Loopback ports of a local gateway.
    pub gateway_ports: Vec<u16>,
    /// Launcher programs.
    pub interpreters: Vec<Glob>,
    /// Extension directories relative to a home directory.
    pub extension_dirs: Vec<String>,
}

fn globs(v: &[String]) -> Vec<Glob> {
    v.iter().map(|s| Glob::new(s)).collect()
}

impl Catalog {
    /// The built-in catalog plus the entries of `extra` files.
    ///
    /// # Errors
    /// [`CatalogError`] naming the file and the problem.
    pub fn load(extra: &[impl AsRef<Path>]) -> Result<Self, CatalogError> {
        let mut c = Self {
            entries: vec![],
            llm_env: vec![],
            gateway_ports: vec![],
            interpreters: vec![],
            extension_dirs: vec![],
        };
        c.add("built-in catalog", BUILT_IN)?;
        for p in extra {
            let p = p.as_ref();
            let text = std::fs::read_to_string(p)
                .map_err(|e| CatalogError::Io(p.display().to_string(), e))?;
            c.add(&p.display().to_string(), &text)?;
        }
        Ok(c)
    }

    /// Adds a catalog document: its entries (replacing those with the same
    /// id) and its signals (added to the ones known).
    ///
    /// # Errors
    /// [`CatalogError::Invalid`].
    pub fn add(&mut self, origin: &str, text: &str) -> Result<(), CatalogError> {
        let bad = |m: String| CatalogError::Invalid(origin.to_owned(), m);
        let raw: RawCatalog = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let s = raw.signals.unwrap_or_default();
        if let Some(n) = s.llm_env.iter().find(|n| !proto::inventory::is_env_name(n)) {
            return Err(bad(format!("llm_env: `{n}` is not a variable name")));
        }
        self.llm_env.extend(s.llm_env);
        self.gateway_ports.extend(s.gateway_ports);
        self.interpreters.extend(globs(&s.interpreters));
        self.extension_dirs.extend(s.extension_dirs);
        let mut seen = BTreeMap::new();
        for e in raw.entry {
            if e.id.is_empty() || seen.insert(e.id.clone(), ()).is_some() {
                return Err(bad(format!("entry id `{}` is empty or repeated", e.id)));
            }
            if e.kind == AgentKind::Unclassified {
                return Err(bad(format!(
                    "entry `{}`: kind `unclassified` is the scanner's, not a catalog kind",
                    e.id
                )));
            }
            if e.programs.is_empty()
                && e.cmdline.is_empty()
                && e.python_modules.is_empty()
                && e.ports.is_empty()
                && e.extensions.is_empty()
            {
                return Err(bad(format!("entry `{}` has no matcher", e.id)));
            }
            let entry = Entry {
                programs: globs(&e.programs),
                cmdline: globs(&e.cmdline),
                python_modules: globs(&e.python_modules),
                extensions: globs(&e.extensions),
                id: e.id,
                name: e.name,
                kind: e.kind,
                risk: e.risk,
                ports: e.ports,
            };
            self.entries.retain(|x| x.id != entry.id);
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Whether `program` is a launcher whose script names the program.
    pub fn is_interpreter(&self, program: &str) -> bool {
        self.interpreters.iter().any(|g| g.matches(program))
    }

    /// The first entry a process's signs match.
    pub fn match_process(&self, s: &Signs<'_>) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.programs
                .iter()
                .any(|g| s.programs.iter().any(|p| g.matches(p)))
                || e.cmdline.iter().any(|g| g.matches(s.cmdline))
                || s.python_module
                    .is_some_and(|m| e.python_modules.iter().any(|g| g.matches(m)))
                || e.ports.iter().any(|p| s.ports.contains(p))
        })
    }

    /// The entry an editor extension directory name matches.
    pub fn match_extension(&self, dir: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.extensions.iter().any(|g| g.matches(dir)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_loads_and_matches() {
        let c = Catalog::load(&[] as &[&Path]).expect("catalog");
        let s = Signs {
            programs: vec!["node", "cli.js"],
            cmdline: "node /usr/lib/node_modules/@anthropic-ai/claude-code/cli.js",
            ..Signs::default()
        };
        assert_eq!(
            c.match_process(&s).map(|e| e.id.as_str()),
            Some("claude-code")
        );
        let s = Signs {
            programs: vec!["python3"],
            cmdline: "python3 -m mcp_server_time",
            python_module: Some("mcp_server_time"),
            ..Signs::default()
        };
        assert_eq!(
            c.match_process(&s).map(|e| e.kind),
            Some(AgentKind::McpServer)
        );
        let s = Signs {
            programs: vec!["sleep"],
            cmdline: "sleep 60",
            ..Signs::default()
        };
        assert!(c.match_process(&s).is_none());
        assert_eq!(
            c.match_extension("github.copilot-chat-0.22.4")
                .map(|e| e.id.as_str()),
            Some("github-copilot")
        );
        assert!(c.is_interpreter("python3.11"));
        assert!(c.llm_env.iter().any(|n| n == "OPENAI_API_KEY"));
    }

    #[test]
    fn user_entries_add_and_replace_and_bad_ones_are_refused() {
        let mut c = Catalog::load(&[] as &[&Path]).expect("catalog");
        let n = c.entries.len();
        c.add(
            "mine.toml",
            "[[entry]]\nid = \"inhouse-agent\"\nname = \"In-house agent\"\nkind = \"framework\"\nrisk = \"r\"\nprograms = [\"acme-agent\"]\n\n[[entry]]\nid = \"aider\"\nname = \"aider (pinned)\"\nkind = \"coding-agent\"\nrisk = \"r\"\nprograms = [\"aider-pinned\"]\n",
        )
        .expect("add");
        assert_eq!(c.entries.len(), n + 1, "aider was replaced, not added");
        let s = Signs {
            programs: vec!["acme-agent"],
            ..Signs::default()
        };
        assert_eq!(
            c.match_process(&s).map(|e| e.id.as_str()),
            Some("inhouse-agent")
        );
        for bad in [
            "[[entry]]\nid = \"x\"\nname = \"x\"\nkind = \"framework\"\nrisk = \"r\"\n",
            "[[entry]]\nid = \"x\"\nname = \"x\"\nkind = \"robot\"\nrisk = \"r\"\nprograms = [\"x\"]\n",
            "[[entry]]\nid = \"x\"\nname = \"x\"\nkind = \"unclassified\"\nrisk = \"r\"\nprograms = [\"x\"]\n",
            "[signals]\nllm_env = [\"A=B\"]\n",
            "[[entry]]\nid = \"x\"\nname = \"x\"\nkind = \"framework\"\nrisk = \"r\"\nprograms = [\"x\"]\nmystery = 1\n",
        ] {
            assert!(c.add("bad.toml", bad).is_err(), "{bad}");
        }
    }
}
