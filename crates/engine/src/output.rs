//! `GuestOutput`: where a detached container's stdout and stderr go instead of the terminal.
//!
//! The engine only adapts a sink to WASI's output streams; what the sink does with the bytes
//! (a capped, rotated log file in wasmbox-host) is the caller's business. Writes never block
//! the guest and never fail: a sink that drops bytes must do so silently, as a full pipe
//! reader would not.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which of the guest's output streams a write came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutStream {
    Stdout,
    Stderr,
}

/// Receives everything a guest writes to stdout and stderr.
pub trait GuestOutput: Send + Sync + 'static {
    fn write(&self, stream: OutStream, bytes: &[u8]);
}

/// A sink plus the stream it stands for, in the shape WASI wants.
#[derive(Clone)]
pub(crate) struct SinkStream {
    sink: Arc<dyn GuestOutput>,
    stream: OutStream,
}

impl SinkStream {
    pub(crate) fn new(sink: Arc<dyn GuestOutput>, stream: OutStream) -> Self {
        SinkStream { sink, stream }
    }
}

impl IsTerminal for SinkStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for SinkStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.sink.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for SinkStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for SinkStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.sink.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
