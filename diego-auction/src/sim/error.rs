//! The simulator's error type: a scenario that does not parse or is malformed, an unknown
//! strategy name, a result file that cannot be written, a chart that cannot be drawn.
//!
//! Placement errors are not here: they are the crate's [`Error`](crate::Error), reported
//! per piece of work in the results. This module knows the simulator's files only.

/// What went wrong in the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A scenario is malformed (it parsed, but a value is out of range), or a strategy
    /// name is unknown (`scenario` is then the name).
    #[error("invalid scenario {scenario}: {reason}")]
    InvalidScenario {
        /// The scenario's name or file.
        scenario: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TOML scenario does not parse.
    #[error("invalid scenario {scenario}: {source}")]
    Toml {
        /// The scenario's file, or `<toml>` for text.
        scenario: String,
        /// The TOML parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// A JSON scenario does not parse.
    #[error("invalid scenario {scenario}: {source}")]
    Json {
        /// The scenario's file, or `<json>` for text.
        scenario: String,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a simulator file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Drawing a chart failed.
    #[error("cannot draw chart {path}: {source}")]
    Chart {
        /// The chart file.
        path: String,
        /// The drawing library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SimError {
    /// The same error about the scenario `scenario` (a file's path, in place of the
    /// name the text was parsed under); errors not about a scenario are kept as they are.
    pub(crate) fn in_scenario(self, scenario: String) -> SimError {
        match self {
            SimError::InvalidScenario { reason, .. } => {
                SimError::InvalidScenario { scenario, reason }
            }
            SimError::Toml { source, .. } => SimError::Toml { scenario, source },
            SimError::Json { source, .. } => SimError::Json { scenario, source },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::error::Error as _;

    use super::*;

    #[test]
    fn texts_and_sources() {
        let toml_error = toml::from_str::<toml::Value>("= 1").unwrap_err();
        let text = toml_error.to_string();
        let e = SimError::Toml {
            scenario: "<toml>".into(),
            source: toml_error,
        }
        .in_scenario("a.toml".into());
        assert_eq!(e.to_string(), format!("invalid scenario a.toml: {text}"));
        assert!(e.source().is_some());

        let e = SimError::Io {
            path: "/x".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(e.to_string(), "cannot access /x: gone");
        assert_eq!(e.source().unwrap().to_string(), "gone");
        assert_eq!(
            e.in_scenario("y".into()).to_string(),
            "cannot access /x: gone"
        );

        let e = SimError::InvalidScenario {
            scenario: "x".into(),
            reason: "batch_size must be > 0".into(),
        }
        .in_scenario("x.toml".into());
        assert_eq!(
            e.to_string(),
            "invalid scenario x.toml: batch_size must be > 0"
        );
    }
}
