//! `Tracked`: a response body that reports, when it is finished or dropped, how many bytes
//! went out, so the access log and metrics are written after the last byte.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame};
use tokio::sync::oneshot;

pub struct Tracked<B> {
    inner: B,
    bytes: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl<B> Tracked<B> {
    /// The receiver gets the byte count once the body ends (or is dropped by a closed client).
    pub fn new(inner: B) -> (Self, oneshot::Receiver<u64>) {
        let (tx, rx) = oneshot::channel();
        (Tracked { inner, bytes: 0, done: Some(tx) }, rx)
    }

    fn report(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(self.bytes);
        }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.report();
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.report(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
