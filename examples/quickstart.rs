//! Quick start: describe a Task and an LRP with the Rust API, validate them, and print
//! their JSON — then see how a broken request is reported (every field, full paths).
//!
//! Run: `cargo run --release --example quickstart`

use diego_core::{
    Action, Check, CheckDefinition, DesireTaskRequest, DesiredLrp, Routes, RunAction,
    TaskDefinition, Validate,
};

fn main() -> anyhow::Result<()> {
    // A Task: run once, write a result file.
    let task = DesireTaskRequest {
        task_guid: "hello-task".into(),
        domain: "demo".into(),
        task_definition: TaskDefinition {
            result_file: "/tmp/result".into(),
            ..TaskDefinition::new(
                "preloaded:cflinuxfs4",
                RunAction::new("/bin/sh", "vcap").with_args(["-c", "echo hi > /tmp/result"]),
            )
        },
    };
    task.validate()?;
    println!(
        "A valid Task request:\n{}\n",
        serde_json::to_string_pretty(&task)?
    );

    // An LRP: three instances behind a route, with an HTTP health check.
    let mut lrp = DesiredLrp::new(
        "demo-app",
        "demo",
        "preloaded:cflinuxfs4",
        3,
        RunAction::new("/app/server", "vcap").with_args(["--port", "8080"]),
    );
    lrp.run_info.ports = vec![8080];
    lrp.run_info.check_definition = Some(CheckDefinition {
        checks: vec![Check::http(8080, "/ping")],
        ..Default::default()
    });
    lrp.scheduling_info.routes = Routes::http(&["demo.localhost"], 8080);
    lrp.validate()?;
    println!(
        "A valid DesiredLRP:\n{}\n",
        serde_json::to_string_pretty(&lrp)?
    );

    // A broken one: every violated field is named, with its full path.
    lrp.scheduling_info.instances = -1;
    lrp.run_info.action = Some(Action::serial([
        RunAction::new("/bin/setup", "vcap").into(),
        RunAction::new("", "vcap").into(),
    ]));
    match lrp.validate() {
        Ok(()) => anyhow::bail!("the broken LRP was accepted"),
        Err(errors) => {
            println!("A broken DesiredLRP is refused:");
            for e in errors.errors() {
                println!("  Invalid field: {:<36} {}", e.field, e.reason);
            }
        }
    }
    Ok(())
}
