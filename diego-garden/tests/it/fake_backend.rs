//! The FakeBackend: the whole conformance suite (under paused time) and its own controls.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::time::Duration;

use diego_garden::conformance;
use diego_garden::{
    collect, Container, ContainerBackend, ContainerSpec, Error, FakeBackend, FakeOperation,
    FakeScript, FakeStep, ProcessSpec, Properties, Signal,
};

macro_rules! conformance_tests {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(start_paused = true)]
            async fn $scenario() {
                let backend = FakeBackend::new();
                conformance::$scenario(&backend).await;
                assert_eq!(backend.container_count(), 0, "the scenario left containers");
            }
        )*
    };
}

conformance_tests!(
    lifecycle,
    duplicate_and_invalid_handles,
    env_and_dir,
    stdout_and_stderr,
    exit_codes,
    missing_executable,
    signals,
    kill_after_ignored_terminate,
    stream_round_trip,
    properties_and_filters,
    capacity_accounting,
    destroy_while_running,
    stop,
    attach,
    net_in,
    metrics_and_bulk,
);

#[tokio::test(start_paused = true)]
async fn run_all_passes() {
    let backend = FakeBackend::new();
    conformance::run_all(&backend).await;
    assert_eq!(backend.container_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn scripted_exit_happens_after_the_given_time() {
    let fake = FakeBackend::new();
    fake.set_program("/app", |_spec: &ProcessSpec| {
        FakeScript::exit_after(Duration::from_secs(30), 4)
    });
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    let start = tokio::time::Instant::now();
    let process = container.run(ProcessSpec::new("/app")).await.unwrap();
    let status = process.wait().await.unwrap();
    assert_eq!(status.code, 4);
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn crash_writes_to_stderr_and_exits_nonzero() {
    let fake = FakeBackend::new();
    fake.set_program("/app", |_spec: &ProcessSpec| {
        FakeScript::crash_after(Duration::from_secs(1))
    });
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    let process = container.run(ProcessSpec::new("/app")).await.unwrap();
    assert_eq!(process.wait().await.unwrap().code, 1);
    let err = collect(process.stderr()).await.unwrap();
    assert_eq!(&err[..], b"fake process crashed\n");
}

#[tokio::test(start_paused = true)]
async fn tests_can_end_a_process_that_never_exits() {
    let fake = FakeBackend::new();
    fake.set_program("/app", |_spec: &ProcessSpec| FakeScript::never_exit());
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    let process = container
        .run(ProcessSpec::new("/app").id("p"))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(3600), process.wait())
            .await
            .is_err()
    );
    fake.exit_process("c", "p", 9).unwrap();
    assert_eq!(process.wait().await.unwrap().code, 9);
    assert!(matches!(
        fake.exit_process("c", "nope", 0),
        Err(Error::ProcessNotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_listening_process_passes_a_port_check_until_it_ends() {
    let fake = FakeBackend::new();
    fake.set_program("/app", |_spec: &ProcessSpec| FakeScript::listen());
    fake.set_program("/healthcheck", |_spec: &ProcessSpec| {
        FakeScript::check_listening(0)
    });
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    let mapping = container.net_in(0, 8080).await.unwrap();
    assert_eq!(mapping.container_port, 8080);
    let check = |container: std::sync::Arc<dyn Container>| async move {
        let p = container
            .run(ProcessSpec::new("/healthcheck"))
            .await
            .unwrap();
        p.wait().await.unwrap().code
    };
    assert_eq!(check(container.clone()).await, 1, "nothing listens yet");
    let app = container.run(ProcessSpec::new("/app")).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(fake.listening_ports("c").unwrap(), vec![8080]);
    assert_eq!(check(container.clone()).await, 0);
    app.signal(Signal::Terminate).await.unwrap();
    assert_eq!(app.wait().await.unwrap().code, 143);
    assert_eq!(
        check(container.clone()).await,
        1,
        "the port is still listened on after exit"
    );
}

#[tokio::test(start_paused = true)]
async fn injected_failures_fail_once_each() {
    let fake = FakeBackend::new();
    fake.fail_next(FakeOperation::Create, 1);
    assert!(matches!(
        fake.create(ContainerSpec::new("c")).await,
        Err(Error::Backend { .. })
    ));
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    fake.fail_next(FakeOperation::Run, 1);
    assert!(container.run(ProcessSpec::shell("exit 0")).await.is_err());
    assert!(container.run(ProcessSpec::shell("exit 0")).await.is_ok());
    fake.fail_next(FakeOperation::Destroy, 1);
    assert!(fake.destroy("c").await.is_err());
    fake.destroy("c").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stop_kills_after_the_grace_period() {
    let fake = FakeBackend::new().with_stop_grace(Duration::from_secs(5));
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    let process = container
        .run(ProcessSpec::shell("trap '' TERM; sleep 1000"))
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    container.stop(false).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(process.wait().await.unwrap().code, 137);
}

#[tokio::test(start_paused = true)]
async fn container_count_and_memory_limits() {
    let fake = FakeBackend::with_capacity(1000, 1000, 2);
    fake.create(ContainerSpec::new("a")).await.unwrap();
    fake.create(ContainerSpec::new("b")).await.unwrap();
    assert!(matches!(
        fake.create(ContainerSpec::new("c")).await,
        Err(Error::InsufficientResources { .. })
    ));
    let all = fake.containers(&Properties::new()).await.unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn many_containers_are_cheap() {
    let fake = FakeBackend::new();
    for i in 0..20_000 {
        fake.create(
            ContainerSpec::new(format!("c-{i}"))
                .property("app", if i % 2 == 0 { "even" } else { "odd" }),
        )
        .await
        .unwrap();
    }
    let filter: Properties = [("app".to_string(), "even".to_string())]
        .into_iter()
        .collect();
    assert_eq!(fake.containers(&filter).await.unwrap().len(), 10_000);
    for i in 0..20_000 {
        fake.destroy(&format!("c-{i}")).await.unwrap();
    }
    assert_eq!(fake.container_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn scripts_can_be_built_step_by_step() {
    let fake = FakeBackend::new();
    fake.set_program("/writer", |_spec: &ProcessSpec| {
        FakeScript::new()
            .then(FakeStep::WriteFile(
                "out.txt".into(),
                bytes::Bytes::from_static(b"written"),
            ))
            .then(FakeStep::ReadFile("out.txt".into()))
    });
    let container = fake.create(ContainerSpec::new("c")).await.unwrap();
    let process = container
        .run(ProcessSpec::new("/writer").dir("/home"))
        .await
        .unwrap();
    assert!(process.wait().await.unwrap().success());
    assert_eq!(&collect(process.stdout()).await.unwrap()[..], b"written");
    let files = conformance::files_of(container.stream_out("/home/out.txt").await.unwrap()).await;
    assert_eq!(files, vec![("out.txt".to_string(), b"written".to_vec())]);
}
