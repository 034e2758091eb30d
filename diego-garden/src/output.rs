//! Process output kept for replay: each `stdout()`/`stderr()` stream starts at the oldest
//! byte still kept and follows live output until the process closes it.
//!
//! Shared by every backend. It keeps at most [`OUTPUT_RETAINED_BYTES`] per stream, dropping
//! the oldest bytes first, so a long-running process does not grow memory without bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use crate::backend::ByteStream;

/// Most bytes of one output stream kept for replay.
pub const OUTPUT_RETAINED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct State {
    chunks: VecDeque<Bytes>,
    /// Absolute offset of `chunks[0]`.
    start: u64,
    retained: usize,
    closed: bool,
}

/// One output stream of a process (stdout or stderr).
pub struct Output {
    state: Mutex<State>,
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

impl Default for Output {
    fn default() -> Self {
        Output {
            state: Mutex::new(State::default()),
            version: watch::channel(0).0,
        }
    }
}

impl Output {
    /// A new, open, empty output.
    pub fn new() -> Arc<Self> {
        Arc::new(Output::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a reader panicked; the data is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends bytes (ignored once closed).
    pub fn push(&self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.retained += bytes.len();
            state.chunks.push_back(bytes);
            while state.retained > OUTPUT_RETAINED_BYTES {
                let Some(front) = state.chunks.pop_front() else {
                    break;
                };
                state.retained -= front.len();
                state.start += front.len() as u64;
            }
        }
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Marks the end of output; streams end after the last byte.
    pub fn close(&self) {
        self.lock().closed = true;
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Everything kept so far, concatenated.
    #[cfg(test)]
    pub fn snapshot(&self) -> Bytes {
        let state = self.lock();
        let mut out = Vec::with_capacity(state.retained);
        for chunk in &state.chunks {
            out.extend_from_slice(chunk);
        }
        Bytes::from(out)
    }

    /// The bytes at absolute offset `pos` (up to the end of one chunk), the offset after
    /// them, or `None` when nothing is there yet; `Err(())` when closed and read to the end.
    fn read_at(&self, pos: u64) -> Result<Option<(Bytes, u64)>, ()> {
        let state = self.lock();
        let mut offset = state.start;
        let pos = pos.max(state.start);
        for chunk in &state.chunks {
            let end = offset + chunk.len() as u64;
            if pos < end {
                let skip = (pos - offset) as usize;
                return Ok(Some((chunk.slice(skip..), end)));
            }
            offset = end;
        }
        if state.closed {
            Err(())
        } else {
            Ok(None)
        }
    }

    /// A stream from the oldest kept byte to the end of output.
    pub fn stream(self: &Arc<Self>) -> ByteStream {
        let rx = self.version.subscribe();
        let init = (Arc::clone(self), 0u64, rx);
        Box::pin(futures::stream::unfold(
            init,
            |(output, pos, mut rx)| async move {
                loop {
                    rx.borrow_and_update();
                    match output.read_at(pos) {
                        Ok(Some((bytes, next))) => return Some((Ok(bytes), (output, next, rx))),
                        Err(()) => return None,
                        Ok(None) => {
                            if rx.changed().await.is_err() {
                                // The sender lives in `output`, which we hold: cannot happen,
                                // but end the stream rather than spin.
                                return None;
                            }
                        }
                    }
                }
            },
        ))
    }

    /// Spawns a task copying `reader` into this output, closing it at end of file.
    pub fn pump<R>(self: &Arc<Self>, mut reader: R) -> tokio::task::JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let output = Arc::clone(self);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => output.push(Bytes::copy_from_slice(&buf[..n])),
                }
            }
            output.close();
        })
    }
}

/// Collects a byte stream into one buffer.
pub async fn collect(mut stream: ByteStream) -> std::io::Result<Bytes> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_replay_then_follow_until_closed() {
        let out = Output::new();
        out.push(Bytes::from_static(b"hello "));
        let early = out.stream();
        let writer = Arc::clone(&out);
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.push(Bytes::from_static(b"world"));
            writer.close();
        });
        assert_eq!(
            collect(early).await.unwrap(),
            Bytes::from_static(b"hello world")
        );
        task.await.unwrap();
        // A stream opened after the end still replays everything.
        assert_eq!(
            collect(out.stream()).await.unwrap(),
            Bytes::from_static(b"hello world")
        );
        out.push(Bytes::from_static(b"ignored"));
        assert_eq!(out.snapshot(), Bytes::from_static(b"hello world"));
    }

    #[tokio::test]
    async fn oldest_bytes_are_dropped_past_the_cap() {
        let out = Output::new();
        let chunk = Bytes::from(vec![b'x'; OUTPUT_RETAINED_BYTES / 2 + 1]);
        out.push(chunk.clone());
        out.push(Bytes::from_static(b"tail"));
        out.push(chunk);
        out.close();
        let all = collect(out.stream()).await.unwrap();
        assert_eq!(all.len(), OUTPUT_RETAINED_BYTES / 2 + 1 + 4);
        assert!(all.starts_with(b"tail"));
    }
}
