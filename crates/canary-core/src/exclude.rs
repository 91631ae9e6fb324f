//! Excluded paths: globs such as `/api/admin/*` whose requests always go to stable.
//!
//! `*` matches any run of characters, `/` included, so `/api/admin/*` also keeps
//! `/api/admin/users/7` on stable: an operator who excludes a prefix means all of
//! it. `?` matches one character and `{a,b}` either alternative.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled set of path globs, with the patterns kept for display.
#[derive(Debug, Clone)]
pub struct Excludes {
    patterns: Vec<String>,
    set: GlobSet,
}

/// Why a list of globs was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExcludeError {
    /// The glob does not parse.
    #[error("exclude pattern `{pattern}` is not a valid glob: {reason}")]
    BadGlob {
        /// The pattern as given.
        pattern: String,
        /// What the glob parser said.
        reason: String,
    },
    /// The glob would never match a request path.
    #[error(
        "exclude pattern `{0}` must start with `/` (it is matched against request paths such as /api/admin/users)"
    )]
    NotAPath(String),
}

impl Excludes {
    /// No excluded paths.
    pub fn none() -> Excludes {
        Excludes { patterns: Vec::new(), set: GlobSet::empty() }
    }

    /// Compiles `patterns`, refusing the whole list if one is bad.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Excludes, ExcludeError> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(compile(p.as_ref())?);
        }
        let set = builder
            .build()
            .map_err(|e| ExcludeError::BadGlob { pattern: join(patterns), reason: e.to_string() })?;
        let patterns = patterns.iter().map(|p| p.as_ref().to_string()).collect();
        Ok(Excludes { patterns, set })
    }

    /// Whether `path` (without the query string) is excluded.
    pub fn matches(&self, path: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(path)
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for Excludes {
    fn eq(&self, other: &Excludes) -> bool {
        self.patterns == other.patterns
    }
}

fn compile(pattern: &str) -> Result<Glob, ExcludeError> {
    if !pattern.starts_with('/') {
        return Err(ExcludeError::NotAPath(pattern.to_string()));
    }
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map_err(|e| ExcludeError::BadGlob { pattern: pattern.to_string(), reason: e.kind().to_string() })
}

fn join<S: AsRef<str>>(patterns: &[S]) -> String {
    patterns.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_patterns_cover_their_subtrees() {
        let ex = Excludes::new(&["/api/admin/*", "/api/internal/*"]).unwrap();
        assert!(ex.matches("/api/admin/users"));
        assert!(ex.matches("/api/admin/users/7/roles"));
        assert!(ex.matches("/api/internal/cache"));
        assert!(!ex.matches("/api/v2/rooms"));
        assert!(!ex.matches("/api/administer"));
    }

    #[test]
    fn refuses_bad_and_relative_globs() {
        assert!(matches!(Excludes::new(&["/api/[admin"]), Err(ExcludeError::BadGlob { .. })));
        assert!(matches!(Excludes::new(&["api/admin/*"]), Err(ExcludeError::NotAPath(_))));
    }

    #[test]
    fn empty_matches_nothing() {
        assert!(!Excludes::none().matches("/anything"));
    }
}
