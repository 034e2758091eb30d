//! Scenarios for host backends whose container root is a host directory the test can see
//! (ProcessBackend, LinuxBackend): paths inside a container never lead outside it, by a
//! link the container made or one it swaps in while the backend works, and files the
//! container controls cannot stall or flood the backend.
//!
//! Each takes the backend, the host directory of a container's root by handle, and a host
//! directory outside every container (holding `secret`), which must stay as it is.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_garden::conformance::{files_of, tar_of};
use diego_garden::{collect, ContainerBackend, ContainerSpec, Error, ProcessSpec};
use futures::StreamExt;

/// What the host directory outside the containers holds.
pub const SECRET: &[u8] = b"host secret\n";

/// Makes `outside` with its `secret`.
pub fn make_outside(outside: &Path) {
    std::fs::create_dir_all(outside).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
}

/// The names in `outside` besides `secret`: what leaked out of a container.
fn leaked(outside: &Path) -> Vec<String> {
    std::fs::read_dir(outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "secret")
        .collect()
}

/// `outside` as a path inside a container root (absolute links resolve there).
fn inside(root: &Path, outside: &Path) -> PathBuf {
    root.join(outside.strip_prefix("/").unwrap())
}

/// A link to `/etc` and one to the host directory `outside`, made in the container: as a
/// `stream_in` target, a `stream_out` source and a working directory they resolve inside
/// the container.
pub async fn links_out_stay_inside(
    backend: &dyn ContainerBackend,
    root_of: impl Fn(&str) -> PathBuf,
    outside: &Path,
) {
    make_outside(outside);
    let container = backend.create(ContainerSpec::new("links")).await.unwrap();
    let root = root_of("links");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "container passwd\n").unwrap();
    symlink("/etc", root.join("etc-link")).unwrap();
    symlink(outside, root.join("out")).unwrap();
    std::fs::create_dir_all(inside(&root, outside)).unwrap();

    // Out: the container's own file, never the host's.
    let files = files_of(container.stream_out("/etc-link/passwd").await.unwrap()).await;
    assert_eq!(
        files,
        [("passwd".to_string(), b"container passwd\n".to_vec())]
    );
    let err = match container.stream_out("/out/secret").await {
        Ok(stream) => panic!("the host's file streamed out: {:?}", files_of(stream).await),
        Err(err) => err,
    };
    assert!(matches!(err, Error::PathNotFound { .. }), "{err}");

    // In: into the container's own directories.
    container
        .stream_in("/out", tar_of(&[("planted", b"in")]))
        .await
        .unwrap();
    container
        .stream_in("/etc-link", tar_of(&[("planted-in-etc", b"in")]))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(inside(&root, outside).join("planted")).unwrap(),
        b"in"
    );
    assert!(root.join("etc/planted-in-etc").exists());
    assert!(
        !Path::new("/etc/planted-in-etc").exists(),
        "written to the host's /etc"
    );

    // A working directory through the link: made and entered inside the container.
    let mut spec = ProcessSpec::shell("echo here > marker");
    spec.dir = Some("/out/work".to_string());
    let process = container.run(spec).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), process.wait())
        .await
        .unwrap()
        .unwrap();
    let err = collect(process.stderr()).await.unwrap();
    assert!(
        status.success(),
        "{status}: {}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(
        std::fs::read(inside(&root, outside).join("work/marker")).unwrap(),
        b"here\n"
    );
    assert_eq!(leaked(outside), Vec::<String>::new(), "written outside");
    backend.destroy("links").await.unwrap();
}

/// Another thread swaps a directory of the container with a link to the host directory
/// `outside` (renameat2 RENAME_EXCHANGE, as fast as it can) while files are streamed in and
/// out of that directory and processes start in it: no byte lands outside, none leaks out.
pub async fn a_link_swapped_during_copies_never_leads_outside(
    backend: &dyn ContainerBackend,
    root_of: impl Fn(&str) -> PathBuf,
    outside: &Path,
) {
    make_outside(outside);
    let container = backend.create(ContainerSpec::new("swap")).await.unwrap();
    let root = root_of("swap");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/secret"), "inside\n").unwrap();
    symlink(outside, root.join("d-link")).unwrap();
    // The link's in-root target exists too, so that both states of `d` are usable.
    std::fs::create_dir_all(inside(&root, outside)).unwrap();
    std::fs::write(inside(&root, outside).join("secret"), "inside too\n").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let (d, link) = (root.join("d"), root.join("d-link"));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &d,
                    nix::fcntl::AT_FDCWD,
                    &link,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut ins, mut outs, mut runs) = (0, 0, 0);
    for i in 0..400 {
        if Instant::now() > deadline {
            break;
        }
        let name = format!("planted-{i}");
        if container
            .stream_in("/d", tar_of(&[(&name, b"x")]))
            .await
            .is_ok()
        {
            ins += 1;
        }
        if let Ok(stream) = container.stream_out("/d/secret").await {
            if let Ok(bytes) = collect(stream).await {
                assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET),
                    "the host's secret streamed out"
                );
                outs += 1;
            }
        }
        if let Ok(stream) = container.stream_out("/d").await {
            if let Ok(bytes) = collect(stream).await {
                assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET),
                    "the host's secret streamed out with its directory"
                );
            }
        }
        if i % 20 == 0 {
            let mut spec = ProcessSpec::shell(format!("echo x > run-{i}"));
            spec.dir = Some("/d".to_string());
            if let Ok(process) = container.run(spec).await {
                let _ = tokio::time::timeout(Duration::from_secs(60), process.wait()).await;
                runs += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 1000, "the directory was swapped only {swaps} times");
    assert!(
        ins > 0 && outs > 0 && runs > 0,
        "too little went through: {ins} in, {outs} out, {runs} runs"
    );
    assert_eq!(leaked(outside), Vec::<String>::new(), "written outside");
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), SECRET);
    backend.destroy("swap").await.unwrap();
}

/// A FIFO and a 10 GB sparse file in the container stream out at once: the FIFO as an entry
/// without data (never opened), the big file as fast as it is read, and a reader that
/// stops early ends the copy.
pub async fn fifos_and_huge_files_stream_out_promptly(
    backend: &dyn ContainerBackend,
    root_of: impl Fn(&str) -> PathBuf,
) {
    let container = backend.create(ContainerSpec::new("special")).await.unwrap();
    let root = root_of("special");
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::fs::File::create(root.join("sparse"))
        .unwrap()
        .set_len(10 << 30)
        .unwrap();
    let started = Instant::now();
    let stream = container.stream_out("/fifo").await.unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), collect(stream))
        .await
        .expect("streaming out a FIFO hung")
        .unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let kinds: Vec<tar::EntryType> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().entry_type())
        .collect();
    assert_eq!(kinds, [tar::EntryType::Fifo]);
    let mut stream = container.stream_out("/sparse").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("streaming out a big file hung")
        .unwrap()
        .unwrap();
    let header = tar::Header::from_byte_slice(&first[..512]);
    assert_eq!(header.size().unwrap(), 10 << 30);
    drop(stream);
    assert!(started.elapsed() < Duration::from_secs(20));
    tokio::time::timeout(Duration::from_secs(30), backend.destroy("special"))
        .await
        .expect("destroy hung after an abandoned copy")
        .unwrap();
}
