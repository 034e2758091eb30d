//! Actions: the recipe a container runs (`run`, `download`, `upload`, `timeout`, `try`,
//! `serial`, `parallel`, `codependent`, `emit_progress`).
//!
//! JSON shape: an externally tagged object, e.g.
//! `{"serial": {"actions": [{"run": {"path": "/bin/app", "user": "vcap"}}]}}`.
//! Durations are milliseconds with the unit in the field name (`timeout_ms`).
//! This module describes actions; running them is the executor's business.

use serde::{Deserialize, Serialize};

use crate::models::validation::{FieldPath, Validate, Validator};

/// One step of a container's recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Run a process.
    Run(RunAction),
    /// Fetch a file or archive into the container.
    Download(DownloadAction),
    /// Send a file out of the container to a URL.
    Upload(UploadAction),
    /// Run an action with a deadline.
    Timeout(TimeoutAction),
    /// Run an action and ignore its failure.
    Try(TryAction),
    /// Run actions one after another, stopping at the first error.
    Serial(SerialAction),
    /// Run actions at once and wait for all.
    Parallel(ParallelAction),
    /// Run actions at once; the first to exit cancels the rest.
    Codependent(CodependentAction),
    /// Run an action, logging start, success and failure messages.
    EmitProgress(EmitProgressAction),
}

/// One environment variable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentVariable {
    /// Variable name; must not be empty.
    pub name: String,
    /// Variable value.
    #[serde(default)]
    pub value: String,
}

impl EnvironmentVariable {
    /// `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        EnvironmentVariable {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl Validate for EnvironmentVariable {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.non_empty(&self.name, &path.field("name"));
    }
}

/// Validates a list of environment variables at `path`.
pub(crate) fn validate_env(env: &[EnvironmentVariable], path: &FieldPath<'_>, v: &mut Validator) {
    for (i, var) in env.iter().enumerate() {
        v.nested(var, &path.index(i));
    }
}

/// Resource limits of a run action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Maximum number of open files (applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nofile: Option<u64>,
    /// Deprecated: accepted and ignored, as Diego does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nproc: Option<u64>,
}

/// Run a process in the container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAction {
    /// Executable path (required).
    pub path: String,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory; empty = the user's home.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvironmentVariable>,
    /// The user to run as (required).
    pub user: String,
    /// Resource limits (only `nofile` is applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_limits: Option<ResourceLimits>,
    /// Log source of its output; empty = the container's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
    /// Do not forward the process's output to the logs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suppress_log_output: bool,
}

impl RunAction {
    /// Runs `path` as `user`, no arguments.
    pub fn new(path: impl Into<String>, user: impl Into<String>) -> Self {
        RunAction {
            path: path.into(),
            user: user.into(),
            ..Default::default()
        }
    }

    /// The same action with these arguments.
    #[must_use]
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }
}

/// Checksum algorithms a download may verify.
pub const CHECKSUM_ALGORITHMS: [&str; 3] = ["md5", "sha1", "sha256"];

/// Fetch a file or archive (tar, tgz, zip: extracted) into the container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadAction {
    /// Name shown in `Downloading <artifact>...` log lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact: String,
    /// Source URL (required).
    pub from: String,
    /// Destination path in the container (required).
    pub to: String,
    /// Cache key: downloads with the same key share one cached copy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cache_key: String,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
    /// The user owning the extracted files (required).
    pub user: String,
    /// `md5`, `sha1` or `sha256` (any case); set together with `checksum_value`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checksum_algorithm: String,
    /// Expected checksum, hex; set together with `checksum_algorithm`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checksum_value: String,
}

/// Send a file out of the container to a URL (POST).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadAction {
    /// Name shown in log lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact: String,
    /// Path in the container (required).
    pub from: String,
    /// Destination URL (required).
    pub to: String,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
    /// The user reading the file (required).
    pub user: String,
}

/// Run an action with a deadline: `"exceeded <d> timeout"`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutAction {
    /// The action to run (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Box<Action>>,
    /// Deadline in milliseconds (> 0).
    pub timeout_ms: i64,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

/// Run an action; its failure is only logged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryAction {
    /// The action to run (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Box<Action>>,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

/// Run actions one after another, stopping at the first error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialAction {
    /// The actions (non-empty).
    pub actions: Vec<Action>,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

/// Run actions at once, wait for all, join their errors with `"; "`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelAction {
    /// The actions (non-empty).
    pub actions: Vec<Action>,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

/// Run actions at once; the first to exit cancels the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodependentAction {
    /// The actions (non-empty).
    pub actions: Vec<Action>,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

/// Run an action, logging progress messages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitProgressAction {
    /// The action to run (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Box<Action>>,
    /// Logged to stdout when it starts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start_message: String,
    /// Logged to stdout when it succeeds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub success_message: String,
    /// `"<prefix>: <error>"` is logged to stderr when it fails.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_message_prefix: String,
    /// Log source of its messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

macro_rules! into_action {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Action {
            fn from(a: $ty) -> Action {
                Action::$variant(a)
            }
        })*
    };
}

into_action!(
    RunAction => Run,
    DownloadAction => Download,
    UploadAction => Upload,
    TimeoutAction => Timeout,
    TryAction => Try,
    SerialAction => Serial,
    ParallelAction => Parallel,
    CodependentAction => Codependent,
    EmitProgressAction => EmitProgress,
);

impl Action {
    /// A serial action of `actions`.
    pub fn serial(actions: impl IntoIterator<Item = Action>) -> Action {
        Action::Serial(SerialAction {
            actions: actions.into_iter().collect(),
            log_source: String::new(),
        })
    }

    /// A parallel action of `actions`.
    pub fn parallel(actions: impl IntoIterator<Item = Action>) -> Action {
        Action::Parallel(ParallelAction {
            actions: actions.into_iter().collect(),
            log_source: String::new(),
        })
    }

    /// A codependent action of `actions`.
    pub fn codependent(actions: impl IntoIterator<Item = Action>) -> Action {
        Action::Codependent(CodependentAction {
            actions: actions.into_iter().collect(),
            log_source: String::new(),
        })
    }

    /// `action` with a deadline of `timeout_ms` milliseconds.
    pub fn timeout(action: Action, timeout_ms: i64) -> Action {
        Action::Timeout(TimeoutAction {
            action: Some(Box::new(action)),
            timeout_ms,
            log_source: String::new(),
        })
    }

    /// `action`, its failure ignored.
    pub fn try_(action: Action) -> Action {
        Action::Try(TryAction {
            action: Some(Box::new(action)),
            log_source: String::new(),
        })
    }

    /// The JSON tag of this variant (`run`, `serial`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::Download(_) => "download",
            Action::Upload(_) => "upload",
            Action::Timeout(_) => "timeout",
            Action::Try(_) => "try",
            Action::Serial(_) => "serial",
            Action::Parallel(_) => "parallel",
            Action::Codependent(_) => "codependent",
            Action::EmitProgress(_) => "emit_progress",
        }
    }
}

/// The reason given for a missing action (Diego's text).
pub const INVALID_ACTION_TYPE: &str = "invalid action type";

/// Validates an optional action: `None` is an error at `path`.
pub(crate) fn validate_required_action(
    action: Option<&Action>,
    path: &FieldPath<'_>,
    v: &mut Validator,
) {
    match action {
        Some(a) => v.nested(a, path),
        None => v.error(path, INVALID_ACTION_TYPE),
    }
}

fn validate_list(actions: &[Action], path: &FieldPath<'_>, v: &mut Validator) {
    let list = path.field("actions");
    if actions.is_empty() {
        v.error(&list, "must not be empty");
    }
    for (i, a) in actions.iter().enumerate() {
        v.nested(a, &list.index(i));
    }
}

impl Validate for Action {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        let path = path.field(self.type_name());
        let path = &path;
        match self {
            Action::Run(a) => {
                v.non_empty(&a.path, &path.field("path"));
                v.non_empty(&a.user, &path.field("user"));
                validate_env(&a.env, &path.field("env"), v);
            }
            Action::Download(a) => {
                v.non_empty(&a.from, &path.field("from"));
                v.non_empty(&a.to, &path.field("to"));
                v.non_empty(&a.user, &path.field("user"));
                validate_checksum(&a.checksum_algorithm, &a.checksum_value, path, v);
            }
            Action::Upload(a) => {
                v.non_empty(&a.from, &path.field("from"));
                v.non_empty(&a.to, &path.field("to"));
                v.non_empty(&a.user, &path.field("user"));
            }
            Action::Timeout(a) => {
                validate_required_action(a.action.as_deref(), &path.field("action"), v);
                v.check(a.timeout_ms > 0, &path.field("timeout_ms"), "must be > 0");
            }
            Action::Try(a) => {
                validate_required_action(a.action.as_deref(), &path.field("action"), v)
            }
            Action::EmitProgress(a) => {
                validate_required_action(a.action.as_deref(), &path.field("action"), v)
            }
            Action::Serial(a) => validate_list(&a.actions, path, v),
            Action::Parallel(a) => validate_list(&a.actions, path, v),
            Action::Codependent(a) => validate_list(&a.actions, path, v),
        }
    }
}

fn validate_checksum(algorithm: &str, value: &str, path: &FieldPath<'_>, v: &mut Validator) {
    match (algorithm.is_empty(), value.is_empty()) {
        (true, true) => {}
        (false, true) => v.error(
            &path.field("checksum_value"),
            "must be set with checksum_algorithm",
        ),
        (true, false) => v.error(
            &path.field("checksum_algorithm"),
            "must be set with checksum_value",
        ),
        (false, false) => {
            let known = CHECKSUM_ALGORITHMS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(algorithm));
            v.check(
                known,
                &path.field("checksum_algorithm"),
                "must be md5, sha1 or sha256",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &str, user: &str) -> Action {
        RunAction::new(path, user).into()
    }

    fn fields(a: &Action) -> Vec<String> {
        match a.validate() {
            Ok(()) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn json_is_externally_tagged() {
        let a = Action::serial([run("/bin/app", "vcap")]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"serial":{"actions":[{"run":{"path":"/bin/app","user":"vcap"}}]}}"#
        );
        let back: Action = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        assert!(
            serde_json::from_str::<Action>(r#"{"run":{"path":"x","user":"u","bogus":1}}"#).is_err()
        );
        assert!(serde_json::from_str::<Action>(r#"{"jump":{}}"#).is_err());
    }

    #[test]
    fn run_requires_path_and_user() {
        assert_eq!(fields(&run("", "")), ["run.path", "run.user"]);
        assert!(fields(&run("/bin/true", "root")).is_empty());
        let mut r = RunAction::new("/x", "u");
        r.env.push(EnvironmentVariable::new("", "v"));
        assert_eq!(fields(&r.into()), ["run.env[0].name"]);
    }

    #[test]
    fn nested_paths_are_full() {
        let a = Action::serial([run("/a", "u"), run("/b", "u"), run("", "u")]);
        assert_eq!(fields(&a), ["serial.actions[2].run.path"]);
    }

    #[test]
    fn combinators_need_children() {
        assert_eq!(fields(&Action::serial([])), ["serial.actions"]);
        assert_eq!(fields(&Action::parallel([])), ["parallel.actions"]);
        assert_eq!(fields(&Action::codependent([])), ["codependent.actions"]);
        let t = Action::Timeout(TimeoutAction::default());
        assert_eq!(fields(&t), ["timeout.action", "timeout.timeout_ms"]);
        let e = t.validate().unwrap_err();
        assert_eq!(e.errors()[0].reason, INVALID_ACTION_TYPE);
        assert_eq!(fields(&Action::Try(TryAction::default())), ["try.action"]);
        assert_eq!(
            fields(&Action::EmitProgress(EmitProgressAction::default())),
            ["emit_progress.action"]
        );
        assert!(fields(&Action::timeout(run("/x", "u"), 1)).is_empty());
        assert_eq!(
            fields(&Action::timeout(run("/x", "u"), -5)),
            ["timeout.timeout_ms"]
        );
    }

    #[test]
    fn download_and_upload_rules() {
        let d = Action::Download(DownloadAction::default());
        assert_eq!(
            fields(&d),
            ["download.from", "download.to", "download.user"]
        );
        let ok = DownloadAction {
            from: "http://x/a.tgz".into(),
            to: "/tmp".into(),
            user: "vcap".into(),
            ..Default::default()
        };
        assert!(fields(&ok.clone().into()).is_empty());
        let mut only_alg = ok.clone();
        only_alg.checksum_algorithm = "sha256".into();
        assert_eq!(fields(&only_alg.into()), ["download.checksum_value"]);
        let mut only_val = ok.clone();
        only_val.checksum_value = "abc".into();
        assert_eq!(fields(&only_val.into()), ["download.checksum_algorithm"]);
        let mut bad = ok.clone();
        bad.checksum_algorithm = "crc32".into();
        bad.checksum_value = "abc".into();
        assert_eq!(fields(&bad.into()), ["download.checksum_algorithm"]);
        let mut upper = ok;
        upper.checksum_algorithm = "SHA1".into();
        upper.checksum_value = "abc".into();
        assert!(fields(&upper.into()).is_empty());
        let u = Action::Upload(UploadAction::default());
        assert_eq!(fields(&u), ["upload.from", "upload.to", "upload.user"]);
    }
}
