//! Glob patterns for names (models, tools, MCP resources, programs in the
//! agent catalog): `*` matches any run of characters, `?` one character,
//! everything else itself.

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// The pattern as written.
    pub fn new(pattern: &str) -> Self {
        Self(pattern.to_owned())
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let s: Vec<char> = name.chars().collect();
        // Iterative wildcard matching with one backtrack point per `*`.
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
                pi += 1;
                si += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, si));
                pi += 1;
            } else if let Some((sp, ss)) = star {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }
}

/// Whether any of `globs` matches `name`.
pub fn any_match(globs: &[Glob], name: &str) -> bool {
    globs.iter().any(|g| g.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_question_and_literals() {
        let g = Glob::new("gpt-4o*");
        assert!(g.matches("gpt-4o"));
        assert!(g.matches("gpt-4o-mini"));
        assert!(!g.matches("gpt-4"));
        assert!(!g.matches("xgpt-4o"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("d?l*_x").matches("del_all_x"));
        assert!(!Glob::new("d?l*_x").matches("dl_x"));
        assert!(Glob::new("a*b*c").matches("aXXbYYbc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYYb"));
        assert!(!Glob::new("").matches("a"));
    }
}
