//! Asking a local HTTP server one question (`ureq`), with the answer kept
//! whole whatever its status, for the tests to look at.

use std::time::Duration;

/// One answer: the status code, the headers, the body.
pub struct Answer {
    pub status: u16,
    headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// `method path` on `127.0.0.1:port`, with `body` if any (form-encoded).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Answer, ureq::Error> {
    request_with_headers(port, method, path, &[], body)
}

/// [`request`] with these headers too.
pub fn request_with_headers(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Answer, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    if body.is_some() {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.unwrap_or("").to_string())?;
    let mut response = agent.run(request)?;
    Ok(Answer {
        status: response.status().as_u16(),
        body: response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()?,
        headers: response.headers().clone(),
    })
}

/// `GET path`, failing the test when the server cannot be reached.
pub fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path, None).unwrap_or_else(|error| panic!("GET {path}: {error}"))
}

/// Percent-encodes a query or form value.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
