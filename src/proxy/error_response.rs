//! The one place that turns an outcome into a status and a short body: errors from any
//! phase, and the proxy's own answers (no route, body too large). Bodies name the status
//! and the request id, never a backend address or an internal detail.

use bytes::Bytes;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

/// The status for an error that ended a request; 0 means the client is gone and gets
/// nothing.
pub fn status_for(e: &Error) -> u16 {
    use ErrorType::*;
    if let HTTPStatus(code) = e.etype() {
        return *code;
    }
    match e.esource() {
        ErrorSource::Upstream => match e.etype() {
            ConnectTimedout | ReadTimedout | WriteTimedout => 504,
            _ => 502,
        },
        ErrorSource::Downstream => match e.etype() {
            WriteError | ReadError | ConnectionClosed => 0,
            ReadTimedout => 408,
            _ => 400,
        },
        ErrorSource::Internal | ErrorSource::Unset => match e.etype() {
            // Connect errors are raised by the connector without a source.
            ConnectTimedout => 504,
            ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
            | TLSHandshakeFailure | TLSHandshakeTimedout => 502,
            _ => 500,
        },
    }
}

/// Writes a short plain-text answer with `status`. Returns whether it was written.
pub async fn respond(session: &mut Session, status: u16, request_id: &HeaderValue) -> bool {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = Bytes::from(format!(
        "{status} {reason}\nrequest id: {}\n",
        String::from_utf8_lossy(request_id.as_bytes())
    ));
    let Ok(mut head) = ResponseHeader::build(status, Some(4)) else {
        return false;
    };
    let headers_ok = head
        .insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .and_then(|_| head.insert_header(http::header::CONTENT_LENGTH, body.len()))
        .and_then(|_| head.insert_header(http::header::CACHE_CONTROL, "no-store"))
        .and_then(|_| head.insert_header(crate::request_id::HEADER, request_id.clone()));
    if headers_ok.is_err() {
        return false;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    if session
        .write_response_header(Box::new(head), head_only)
        .await
        .is_err()
    {
        return false;
    }
    head_only || session.write_response_body(Some(body), true).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(etype: ErrorType, source: ErrorSource) -> Box<Error> {
        let mut e = Error::new(etype);
        e.esource = source;
        e
    }

    #[test]
    fn upstream_failures_map_to_gateway_statuses() {
        use ErrorType::*;
        assert_eq!(status_for(&err(ConnectRefused, ErrorSource::Upstream)), 502);
        assert_eq!(
            status_for(&err(ConnectTimedout, ErrorSource::Upstream)),
            504
        );
        assert_eq!(status_for(&err(ReadTimedout, ErrorSource::Upstream)), 504);
        assert_eq!(
            status_for(&err(ConnectionClosed, ErrorSource::Upstream)),
            502
        );
        assert_eq!(
            status_for(&err(HTTPStatus(503), ErrorSource::Internal)),
            503
        );
    }

    #[test]
    fn client_failures_map_to_client_statuses() {
        use ErrorType::*;
        assert_eq!(
            status_for(&err(ConnectionClosed, ErrorSource::Downstream)),
            0
        );
        assert_eq!(status_for(&err(ReadTimedout, ErrorSource::Downstream)), 408);
        assert_eq!(
            status_for(&err(InvalidHTTPHeader, ErrorSource::Downstream)),
            400
        );
    }
}
