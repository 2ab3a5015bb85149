//! Response bodies the proxy sends: whole, or cut off partway.

use std::future::Future;
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
    /// Sends its first part, then nothing until released.
    Stalled(StalledBody),
}

/// A body that yields `head`, goes silent until `released` ends, then
/// yields `rest`.
pub struct StalledBody {
    head: Option<Bytes>,
    rest: Option<Bytes>,
    released: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl StalledBody {
    /// A body that stalls after `head` until `released`.
    pub fn new(head: Bytes, rest: Bytes, released: Pin<Box<dyn Future<Output = ()> + Send>>) -> StalledBody {
        StalledBody { head: Some(head), rest: Some(rest), released }
    }
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
            ProxyBody::Stalled(s) => {
                if let Some(head) = s.head.take().filter(|h| !h.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                if s.released.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Poll::Ready(s.rest.take().filter(|r| !r.is_empty()).map(|r| Ok(Frame::data(r))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(full) => full.is_end_stream(),
            ProxyBody::Cut(_) | ProxyBody::Stalled(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(full) => full.size_hint(),
            ProxyBody::Cut(_) | ProxyBody::Stalled(_) => SizeHint::default(),
        }
    }
}
