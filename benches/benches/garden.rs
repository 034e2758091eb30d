//! Criterion benchmarks of the container backends: a full container cycle (create, run
//! `/bin/true`, wait, destroy) on the ProcessBackend and, as root with the busybox rootfs,
//! on the LinuxBackend; and fake container churn.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use diego_garden::{
    ContainerBackend, ContainerSpec, FakeBackend, LinuxBackend, LinuxBackendConfig, ProcessBackend,
    ProcessSpec, Properties,
};

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("no tokio runtime: {err}"),
    }
}

async fn cycle(backend: &dyn ContainerBackend, handle: &str) {
    let container = match backend.create(ContainerSpec::new(handle)).await {
        Ok(container) => container,
        Err(err) => panic!("create: {err}"),
    };
    let status = match container.run(ProcessSpec::new("/bin/true")).await {
        Ok(process) => process.wait().await,
        Err(err) => panic!("run: {err}"),
    };
    assert!(
        matches!(status, Ok(s) if s.success()),
        "/bin/true failed: {status:?}"
    );
    if let Err(err) = backend.destroy(handle).await {
        panic!("destroy: {err}");
    }
}

fn container_cycle(c: &mut Criterion) {
    let runtime = runtime();
    let scratch =
        std::env::temp_dir().join(format!("diego-criterion-garden-{}", std::process::id()));
    let process = match ProcessBackend::new(scratch.join("process")) {
        Ok(backend) => backend,
        Err(err) => panic!("ProcessBackend: {err}"),
    };
    let mut n = 0u64;
    c.bench_function("process_backend_container_cycle", |b| {
        b.iter(|| {
            n += 1;
            runtime.block_on(cycle(&process, &format!("p-{n}")));
        })
    });

    let rootfs = std::env::var_os("DIEGO_GARDEN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/diego-rs/rootfs/busybox"));
    match LinuxBackend::available() {
        Ok(()) if rootfs.join("bin/true").exists() => {
            let config =
                LinuxBackendConfig::new(scratch.join("linux"), rootfs.display().to_string());
            let linux = match LinuxBackend::new(config) {
                Ok(backend) => backend,
                Err(err) => panic!("LinuxBackend: {err}"),
            };
            c.bench_function("linux_backend_container_cycle", |b| {
                b.iter(|| {
                    n += 1;
                    runtime.block_on(cycle(&linux, &format!("l-{n}")));
                })
            });
        }
        Ok(()) => eprintln!(
            "# skipped linux_backend_container_cycle: no rootfs at {}",
            rootfs.display()
        ),
        Err(why) => eprintln!("# skipped linux_backend_container_cycle: {why}"),
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

fn fake_churn(c: &mut Criterion) {
    let runtime = runtime();
    c.bench_function("fake_backend_10k_create_list_destroy", |b| {
        b.iter_batched(
            FakeBackend::new,
            |fake| {
                runtime.block_on(async {
                    for i in 0..10_000 {
                        if let Err(err) = fake.create(ContainerSpec::new(format!("f-{i}"))).await {
                            panic!("create: {err}");
                        }
                    }
                    let listed = fake.containers(&Properties::new()).await.map(|l| l.len());
                    assert!(matches!(listed, Ok(10_000)));
                    for i in 0..10_000 {
                        if let Err(err) = fake.destroy(&format!("f-{i}")).await {
                            panic!("destroy: {err}");
                        }
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group!(benches, container_cycle, fake_churn);
criterion_main!(benches);
