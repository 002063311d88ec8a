//! Response body wrapper that records the request when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::completion::Completion;

pin_project! {
    /// Response body of the obskit middleware.
    ///
    /// The request is recorded (duration histogram, access log, in-flight gauge) when the body
    /// yields its last frame, fails, or is dropped unfinished, so the measured duration includes
    /// streaming the body.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        completion: Option<Box<Completion>>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, completion: Option<Box<Completion>>) -> Self {
        Self {
            inner: Some(inner),
            completion,
        }
    }

    /// An empty body, used for the 500 response that replaces a panicking handler.
    pub(crate) fn empty(completion: Option<Box<Completion>>) -> Self {
        Self {
            inner: None,
            completion,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            drop(this.completion.take());
            return Poll::Ready(None);
        };
        let frame = ready!(inner.poll_frame(cx));
        match &frame {
            None => drop(this.completion.take()),
            Some(Err(_)) => {
                if let Some(completion) = this.completion.as_mut() {
                    completion.mark_body_error();
                }
                drop(this.completion.take());
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
