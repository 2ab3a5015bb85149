//! Response bodies the proxy sends: whole, or cut off partway.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Either a complete body or one that breaks after its first part.
pub enum ProxyBody {
    /// Sent as is.
    Full(Full<Bytes>),
    /// Sends its bytes, then fails, which makes hyper abort the connection
    /// short of the declared content length.
    Cut(CutBody),
}

/// A body that yields `head` and then an error.
pub struct CutBody {
    head: Option<Bytes>,
}

impl CutBody {
    /// A body that breaks after `head`.
    pub fn new(head: Bytes) -> CutBody {
        CutBody { head: Some(head) }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
            ProxyBody::Cut(cut) => Poll::Ready(Some(match cut.head.take() {
                Some(head) if !head.is_empty() => Ok(Frame::data(head)),
                _ => Err("faultproxy: connection cut mid-response-body".into()),
            })),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(full) => full.is_end_stream(),
            ProxyBody::Cut(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(full) => full.size_hint(),
            ProxyBody::Cut(_) => SizeHint::default(),
        }
    }
}
