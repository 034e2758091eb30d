//! Simulator scenarios: cells, instances already running, and the work to place, read
//! from a small TOML (or JSON) file so users can write their own.
//!
//! ```toml
//! name = "example"
//! batch_size = 500          # instances per auction round
//! order = "app-major"       # or "shuffled" (seeded)
//!
//! [[cells]]
//! count = 10
//! zones = ["z0", "z1"]      # round-robin
//! memory_mb = 1024
//! disk_mb = 2048
//! containers = 100
//!
//! [[preplaced]]             # instances already running on every cell
//! per_cell = 5
//! memory_mb = 64
//!
//! [[apps]]
//! count = 20
//! instances = 3
//! memory_mb = [128, 256]    # cycled over the apps
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sim::error::SimError;

/// One number, or a list cycled over the items it applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cycle {
    /// The same value for every item.
    One(i32),
    /// Item `k` gets `values[k % len]`.
    Many(Vec<i32>),
}

impl Cycle {
    /// The value for item `k`.
    pub fn at(&self, k: usize) -> i32 {
        match self {
            Cycle::One(v) => *v,
            Cycle::Many(v) if v.is_empty() => 0,
            Cycle::Many(v) => v[k % v.len()],
        }
    }

    fn valid(&self) -> bool {
        match self {
            Cycle::One(v) => *v >= 0,
            Cycle::Many(v) => !v.is_empty() && v.iter().all(|x| *x >= 0),
        }
    }
}

fn default_one() -> usize {
    1
}

fn default_stacks() -> Vec<String> {
    vec!["cflinuxfs4".to_owned()]
}

fn default_rootfs() -> String {
    "preloaded:cflinuxfs4".to_owned()
}

fn default_cell_prefix() -> String {
    "cell-".to_owned()
}

fn default_batch() -> usize {
    500
}

fn default_disk() -> Cycle {
    Cycle::One(1)
}

/// A group of alike cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellGroup {
    /// How many cells.
    pub count: usize,
    /// Cell ids are this prefix + a zero-padded number (counted across groups).
    #[serde(default = "default_cell_prefix")]
    pub id_prefix: String,
    /// Zones, assigned round-robin by the cell's number in the scenario.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Memory per cell (MB).
    pub memory_mb: i32,
    /// Disk per cell (MB).
    pub disk_mb: i32,
    /// Containers per cell.
    pub containers: i32,
    /// Preloaded stacks (the cells also run every `docker` image).
    #[serde(default = "default_stacks")]
    pub stacks: Vec<String>,
    /// Placement tags every cell carries.
    #[serde(default)]
    pub placement_tags: Vec<String>,
    /// Placement tags the cells may carry.
    #[serde(default)]
    pub optional_placement_tags: Vec<String>,
    /// Volume drivers the cells offer.
    #[serde(default)]
    pub volume_drivers: Vec<String>,
    /// Proxy memory per LRP container (MB).
    #[serde(default)]
    pub proxy_memory_mb: i32,
}

/// Instances already running before the first round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preplaced {
    /// Instances per cell.
    pub per_cell: usize,
    /// Each cell gets `per_cell ± jitter` (seeded).
    #[serde(default)]
    pub jitter: usize,
    /// First cell (by number) that gets them.
    #[serde(default)]
    pub from_cell: usize,
    /// One past the last cell that gets them (default: every cell).
    #[serde(default)]
    pub to_cell: Option<usize>,
    /// Memory per instance (MB).
    pub memory_mb: i32,
    /// Disk per instance (MB).
    #[serde(default = "default_one_i32")]
    pub disk_mb: i32,
    /// Process of every instance; by default each instance is its own process
    /// (`pre-<cell>-<j>`).
    #[serde(default)]
    pub process: Option<String>,
}

fn default_one_i32() -> i32 {
    1
}

/// A group of apps (LRPs) to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppGroup {
    /// How many apps.
    pub count: usize,
    /// Process guids are this prefix + a zero-padded number.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Instances per app (indices 0..instances).
    #[serde(default = "default_one")]
    pub instances: usize,
    /// Memory per instance (MB), cycled over the apps.
    pub memory_mb: Cycle,
    /// Disk per instance (MB), cycled over the apps.
    #[serde(default = "default_disk")]
    pub disk_mb: Cycle,
    /// Root filesystem.
    #[serde(default = "default_rootfs")]
    pub rootfs: String,
    /// Placement tags asked for.
    #[serde(default)]
    pub placement_tags: Vec<String>,
    /// Volume drivers needed.
    #[serde(default)]
    pub volume_drivers: Vec<String>,
}

/// A group of Tasks to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskGroup {
    /// How many Tasks.
    pub count: usize,
    /// Task guids are this prefix + a number.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Memory per Task (MB), cycled.
    pub memory_mb: Cycle,
    /// Disk per Task (MB), cycled.
    #[serde(default = "default_disk")]
    pub disk_mb: Cycle,
    /// Root filesystem.
    #[serde(default = "default_rootfs")]
    pub rootfs: String,
}

/// The order work is submitted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// App by app, index by index, then the Tasks.
    #[default]
    AppMajor,
    /// A seeded random permutation of everything.
    Shuffled,
}

/// A simulation scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (used for output files).
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Seed of everything random in the scenario (jitter, order, strategies).
    #[serde(default)]
    pub seed: u64,
    /// Pieces of work per auction round.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Submission order.
    #[serde(default)]
    pub order: Order,
    /// After each round, every starting container becomes running (the cells report
    /// no starting containers). Diego's own simulation keeps them starting.
    #[serde(default)]
    pub settle_between_rounds: bool,
    /// The cells.
    pub cells: Vec<CellGroup>,
    /// Instances already running.
    #[serde(default)]
    pub preplaced: Vec<Preplaced>,
    /// Apps to start.
    #[serde(default)]
    pub apps: Vec<AppGroup>,
    /// Tasks to start.
    #[serde(default)]
    pub tasks: Vec<TaskGroup>,
}

impl Scenario {
    /// Parses a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, SimError> {
        let s: Scenario = toml::from_str(text).map_err(|source| SimError::Toml {
            scenario: "<toml>".into(),
            source,
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Parses a JSON scenario.
    pub fn from_json(text: &str) -> Result<Scenario, SimError> {
        let s: Scenario = serde_json::from_str(text).map_err(|source| SimError::Json {
            scenario: "<json>".into(),
            source,
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Reads a scenario file (`.json` as JSON, anything else as TOML).
    pub fn from_file(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            Scenario::from_json(&text)
        } else {
            Scenario::from_toml(&text)
        };
        parsed.map_err(|e| e.in_scenario(path.display().to_string()))
    }

    /// A scenario shipped with the crate, by name (see [`builtin_names`]).
    pub fn builtin(name: &str) -> Option<Scenario> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, text)| Scenario::from_toml(text).ok())
    }

    /// Total cells.
    pub fn cell_count(&self) -> usize {
        self.cells.iter().map(|g| g.count).sum()
    }

    /// Total pieces of work (instances + Tasks).
    pub fn work_count(&self) -> usize {
        self.apps
            .iter()
            .map(|a| a.count * a.instances)
            .sum::<usize>()
            + self.tasks.iter().map(|t| t.count).sum::<usize>()
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |reason: &str| {
            Err(SimError::InvalidScenario {
                scenario: self.name.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.name.is_empty() {
            return bad("name must not be empty");
        }
        if self.batch_size == 0 {
            return bad("batch_size must be > 0");
        }
        if self.cells.is_empty() || self.cell_count() == 0 {
            return bad("at least one cell is needed");
        }
        for g in &self.cells {
            if g.memory_mb <= 0 || g.containers <= 0 || g.disk_mb < 0 || g.proxy_memory_mb < 0 {
                return bad("cells need memory_mb > 0, containers > 0, disk_mb >= 0");
            }
        }
        for a in &self.apps {
            if !a.memory_mb.valid() || !a.disk_mb.valid() {
                return bad("apps need memory_mb and disk_mb >= 0 (a non-empty list if a list)");
            }
        }
        for t in &self.tasks {
            if !t.memory_mb.valid() || !t.disk_mb.valid() {
                return bad("tasks need memory_mb and disk_mb >= 0");
            }
        }
        for p in &self.preplaced {
            if p.memory_mb < 0 || p.disk_mb < 0 || p.jitter > p.per_cell {
                return bad("preplaced needs memory_mb, disk_mb >= 0 and jitter <= per_cell");
            }
        }
        Ok(())
    }
}

/// The scenarios shipped with the crate (the files under `scenarios/`).
const BUILTIN: &[(&str, &str)] = &[
    ("headline", include_str!("../../scenarios/headline.toml")),
    (
        "small-cold-start",
        include_str!("../../scenarios/small-cold-start.toml"),
    ),
    (
        "large-cold-start",
        include_str!("../../scenarios/large-cold-start.toml"),
    ),
    (
        "imbalanced-deploy",
        include_str!("../../scenarios/imbalanced-deploy.toml"),
    ),
    (
        "one-app-burst",
        include_str!("../../scenarios/one-app-burst.toml"),
    ),
    (
        "zone-balance",
        include_str!("../../scenarios/zone-balance.toml"),
    ),
    (
        "constrained",
        include_str!("../../scenarios/constrained.toml"),
    ),
];

/// Names of the scenarios shipped with the crate.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}
