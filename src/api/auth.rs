//! Bearer-token authentication: with tokens configured, a call must carry
//! `authorization: Bearer <token>` naming one of them (compared in constant time).

use std::sync::Arc;

use tonic::{Request, Status};

#[derive(Clone)]
pub struct BearerAuth {
    tokens: Arc<Vec<String>>,
}

impl BearerAuth {
    /// No tokens: every call is let through.
    pub fn new(tokens: Vec<String>) -> BearerAuth {
        BearerAuth { tokens: Arc::new(tokens) }
    }

    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(request);
        }
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        if self.tokens.iter().any(|token| same(token.as_bytes(), given.trim().as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("the bearer token is not one this node accepts"))
        }
    }
}

/// Equality whose time depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request.metadata_mut().insert("authorization", value.parse().expect("ascii"));
        }
        request
    }

    #[test]
    fn only_a_configured_token_gets_in() {
        let auth = BearerAuth::new(vec!["0123456789abcdef".into()]);
        assert!(auth.check(call(Some("Bearer 0123456789abcdef"))).is_ok());
        for header in [None, Some("Bearer 0123456789abcdeX"), Some("Basic 0123456789abcdef"), Some("Bearer ")] {
            let err = auth.check(call(header)).expect_err("refused");
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
        assert!(BearerAuth::new(Vec::new()).check(call(None)).is_ok(), "no tokens: open");
    }
}
