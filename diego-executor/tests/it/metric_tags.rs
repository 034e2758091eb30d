//! A DesiredLRP's `metric_tags` reach its running containers: resolved per instance
//! (`INDEX`, `INSTANCE_GUID`), carried by every log line and by the container metrics,
//! and replaced in place (no restart) when the DesiredLRP's metric tags are updated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use diego_core::log_sink::RingBufferLogSink;
use diego_core::store::ActualLrpFilter;
use diego_core::*;
use diego_executor::cluster::BackendFactory;
use diego_executor::rep::container_guid;
use diego_executor::Cluster;
use diego_garden::{ContainerBackend, FakeBackend, FakeScript, FakeStep};

fn backend() -> BackendFactory {
    Arc::new(|_| {
        let b = FakeBackend::new();
        b.set_program("/app/chatty", |_| {
            FakeScript::new()
                .then(FakeStep::Stdout(bytes::Bytes::from_static(b"booted\n")))
                .then(FakeStep::Sleep(Duration::from_secs(60)))
                .then(FakeStep::Stdout(bytes::Bytes::from_static(
                    b"a minute later\n",
                )))
                .then(FakeStep::Forever)
        });
        Ok(Arc::new(b) as Arc<dyn ContainerBackend>)
    })
}

fn dynamic(d: DynamicMetricTag) -> MetricTagValue {
    MetricTagValue {
        dynamic: Some(d),
        ..MetricTagValue::default()
    }
}

fn tags(app_name: &str) -> MetricTags {
    let mut t = MetricTags::new();
    t.insert("source_id".into(), MetricTagValue::fixed("chatty-logs"));
    t.insert("app_name".into(), MetricTagValue::fixed(app_name));
    t.insert("instance_index".into(), dynamic(DynamicMetricTag::Index));
    t.insert(
        "process_instance_id".into(),
        dynamic(DynamicMetricTag::InstanceGuid),
    );
    t
}

async fn running_rows(c: &Cluster) -> Vec<Arc<ActualLrp>> {
    c.bbs()
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.state == ActualLrpState::Running)
        .collect()
}

async fn wait_running(c: &Cluster, n: usize) -> Vec<Arc<ActualLrp>> {
    for _ in 0..600 {
        let rows = running_rows(c).await;
        if rows.len() == n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} instances did not reach RUNNING");
}

fn expected(app_name: &str, row: &ActualLrp) -> LogTags {
    [
        ("source_id", "chatty-logs".to_string()),
        ("app_name", app_name.to_string()),
        ("instance_index", row.key.index.to_string()),
        (
            "process_instance_id",
            row.instance_guid().unwrap().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn lines_of(logs: &RingBufferLogSink, index: i32, text: &str) -> Vec<LogLine> {
    logs.lines("chatty-logs")
        .into_iter()
        .filter(|l| l.instance_index == index && l.text() == text)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn metric_tags_reach_log_lines_and_metrics_and_updates_apply_in_place() {
    let logs = Arc::new(RingBufferLogSink::new(1_000));
    let c = Cluster::builder(backend())
        .cells(2)
        .clock(Arc::new(TokioClock::new()))
        .log_sink(logs.clone())
        .start()
        .await
        .unwrap();
    let mut d = DesiredLrp::new(
        "chatty",
        "apps",
        "preloaded:cflinuxfs4",
        2,
        RunAction::new("/app/chatty", "vcap"),
    );
    d.scheduling_info.log_guid = "chatty-logs".into();
    d.run_info.metric_tags = tags("first");
    c.bbs().desire_lrp(d).await.unwrap();
    let rows = wait_running(&c, 2).await;

    // Every line of each instance carries its own resolved tags: the app's output and
    // the cell's own lines about the container.
    for row in &rows {
        let want = expected("first", row);
        let booted = lines_of(&logs, row.key.index, "booted");
        assert_eq!(booted.len(), 1, "{:?}", logs.lines("chatty-logs"));
        assert_eq!(*booted[0].tags, want);
        let created = format!(
            "Cell {} successfully created container for instance {}",
            row.cell_id().unwrap(),
            row.instance_guid().unwrap()
        );
        let cell_lines = lines_of(&logs, row.key.index, &created);
        assert_eq!(cell_lines.len(), 1);
        assert_eq!(cell_lines[0].source_type, "CELL");
        assert_eq!(*cell_lines[0].tags, want);

        // The container record and its metrics carry them too.
        let rep = c.reps().get(row.cell_id().unwrap()).unwrap();
        let guid = container_guid(&row.key.process_guid, row.instance_guid().unwrap());
        assert_eq!(*rep.executor().get(&guid).unwrap().metric_tags, want);
        let m = rep.executor().container_metrics(&guid).await.unwrap();
        assert_eq!(*m.tags, want);
        assert_eq!(m.source_id, "chatty-logs");
        assert_eq!(m.instance_index, row.key.index);
    }

    // An update of the metric tags reaches the running instances in place.
    c.bbs()
        .update_desired_lrp(
            &ProcessGuid::new("chatty"),
            DesiredLrpUpdate {
                metric_tags: Some(tags("second")),
                ..DesiredLrpUpdate::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let after = running_rows(&c).await;
    let mut before_guids: Vec<_> = rows.iter().map(|r| r.instance_guid().cloned()).collect();
    let mut after_guids: Vec<_> = after.iter().map(|r| r.instance_guid().cloned()).collect();
    before_guids.sort();
    after_guids.sort();
    assert_eq!(before_guids, after_guids, "no instance restarted");
    for row in &after {
        let want = expected("second", row);
        let later = lines_of(&logs, row.key.index, "a minute later");
        assert_eq!(later.len(), 1);
        assert_eq!(*later[0].tags, want, "lines written after the update");
        let rep = c.reps().get(row.cell_id().unwrap()).unwrap();
        let guid = container_guid(&row.key.process_guid, row.instance_guid().unwrap());
        let m = rep.executor().container_metrics(&guid).await.unwrap();
        assert_eq!(*m.tags, want, "metrics after the update");
        // Lines already written keep the tags they were written with.
        let booted = lines_of(&logs, row.key.index, "booted");
        assert_eq!(*booted[0].tags, expected("first", row));
    }

    // A new instance starts with the updated tags.
    c.bbs()
        .update_desired_lrp(
            &ProcessGuid::new("chatty"),
            DesiredLrpUpdate {
                instances: Some(3),
                ..DesiredLrpUpdate::default()
            },
        )
        .await
        .unwrap();
    let rows = wait_running(&c, 3).await;
    let third = rows.iter().find(|r| r.key.index == 2).unwrap();
    let booted = lines_of(&logs, 2, "booted");
    assert_eq!(booted.len(), 1);
    assert_eq!(*booted[0].tags, expected("second", third));

    c.shutdown().await;
}
