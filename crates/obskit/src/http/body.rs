//! Response body wrapper that records the request when the body ends or is dropped.

use std::panic::AssertUnwindSafe;
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
    /// yields its last frame, fails, or is dropped, so the measured duration includes streaming
    /// the body. A body dropped before its end, for example because the client closed the
    /// connection half-way, is logged at WARN.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        completion: Option<Box<Completion>>,
        // Bytes still to send when the response declares its length, by `Content-Length` or an
        // exact size hint. hyper stops polling an HTTP/1 body once that many bytes are written.
        remaining: Option<u64>,
        // Set once the inner body reports its end, sends its trailers or its declared length,
        // before or while it is polled.
        ended: bool,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // A body that still has its record when dropped did not reach `None`. hyper also
            // stops before `None` once `is_end_stream` is true, after trailers, and on HTTP/1
            // once the declared length is written, which `ended` covers.
            if let Some(completion) = this.completion.as_mut()
                && !*this.ended
                && completion.expects_body()
            {
                completion.mark_body_incomplete();
            }
        }
    }
}

impl<B: Body> ResponseBody<B> {
    /// Wraps `inner`. `declared_length` is the length the response declares: the body's exact
    /// size hint, else its `Content-Length` header.
    pub(crate) fn new(
        inner: B,
        completion: Option<Box<Completion>>,
        declared_length: Option<u64>,
    ) -> Self {
        Self {
            ended: inner.is_end_stream() || declared_length == Some(0),
            remaining: declared_length,
            inner: Some(inner),
            completion,
        }
    }
}

impl<B> ResponseBody<B> {
    /// An empty body, used for the 500 response that replaces a panicking handler.
    pub(crate) fn empty(completion: Option<Box<Completion>>) -> Self {
        Self {
            inner: None,
            completion,
            remaining: Some(0),
            ended: true,
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
        let Some(mut inner) = this.inner.as_pin_mut() else {
            drop(this.completion.take());
            return Poll::Ready(None);
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_frame(cx)));
        let frame = match polled {
            Ok(frame) => ready!(frame),
            Err(payload) => {
                // The status line is already sent, so no 500 can replace the response. The
                // request is recorded as failed and the panic continues, so hyper closes the
                // connection and the client sees a cut response rather than a clean end.
                if let Some(mut completion) = this.completion.take() {
                    completion.mark_body_error();
                    let traced = completion.shared.trace;
                    super::layer::report_panic(
                        &completion.span,
                        payload.as_ref(),
                        traced,
                        "response body panicked",
                    );
                }
                std::panic::resume_unwind(payload);
            }
        };
        match &frame {
            None => {
                reach_end(this.ended, *this.remaining, this.completion.as_deref_mut());
                drop(this.completion.take());
            }
            Some(Err(_)) => {
                if let Some(completion) = this.completion.as_mut() {
                    completion.mark_body_error();
                }
                drop(this.completion.take());
            }
            Some(Ok(frame)) => {
                if let (Some(remaining), Some(data)) = (this.remaining.as_mut(), frame.data_ref()) {
                    let sent = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    *remaining = remaining.saturating_sub(sent);
                }
                // Trailers are the last frame of a message, so hyper polls no further.
                if frame.is_trailers() || *this.remaining == Some(0) || inner.is_end_stream() {
                    reach_end(this.ended, *this.remaining, this.completion.as_deref_mut());
                }
            }
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

/// Marks the body as ended, and records the request as failed when the body ended short of its
/// declared length, because hyper then closes the HTTP/1 connection or resets the HTTP/2 stream.
fn reach_end(ended: &mut bool, remaining: Option<u64>, completion: Option<&mut Completion>) {
    if std::mem::replace(ended, true) {
        return;
    }
    let Some(missing) = remaining.filter(|missing| *missing > 0) else {
        return;
    };
    if let Some(completion) = completion
        && completion.expects_body()
    {
        completion.mark_body_error();
        completion.span.in_scope(|| {
            tracing::error!(
                target: "obskit::http",
                missing_bytes = missing,
                "response body ended before its declared length"
            );
        });
    }
}
