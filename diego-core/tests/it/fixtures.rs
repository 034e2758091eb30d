//! The checked-in JSON fixtures parse, validate, and re-serialise byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diego_core::{DesiredLrp, Task, Validate};

fn round_trip<T>(path: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug + PartialEq,
{
    let text = std::fs::read_to_string(path).unwrap();
    let parsed: T = serde_json::from_str(&text).unwrap();
    let again = serde_json::to_string_pretty(&parsed).unwrap() + "\n";
    assert_eq!(again, text, "{path} does not re-serialise identically");
    let reparsed: T = serde_json::from_str(&again).unwrap();
    assert_eq!(reparsed, parsed);
}

#[test]
fn task_fixture_round_trips() {
    round_trip::<Task>("tests/fixtures/task.json");
}

#[test]
fn desired_lrp_fixture_round_trips() {
    round_trip::<DesiredLrp>("tests/fixtures/desired_lrp.json");
}

#[test]
fn fixtures_are_valid_requests() {
    let lrp: DesiredLrp =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/desired_lrp.json").unwrap())
            .unwrap();
    lrp.validate().unwrap();
    let task: Task =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/task.json").unwrap())
            .unwrap();
    task.task_definition.validate().unwrap();
}

#[test]
fn fixtures_set_every_field() {
    // Every field of the model appears in the fixture: serialising the parsed value
    // keeps every key (nothing is skipped as empty), so no field was left unset.
    let text = std::fs::read_to_string("tests/fixtures/desired_lrp.json").unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys = value.as_object().unwrap().len();
    // 14 scheduling-info fields + 20 run-info fields.
    assert_eq!(keys, 34);
    let text = std::fs::read_to_string("tests/fixtures/task.json").unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value.as_object().unwrap().len(), 14);
    assert_eq!(value["task_definition"].as_object().unwrap().len(), 22);
}
