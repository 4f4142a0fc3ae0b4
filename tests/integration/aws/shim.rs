//! A small proxy in front of moto for the one thing moto 5.2 gets wrong that the S3 staging
//! needs, used through the standard per-service endpoint variables (`AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_AUTO_SCALING`). It forwards every request to moto unchanged and every
//! answer back unchanged, except that it renames the root element of moto's `ListParts` answer
//! from `ListPartsResponse` to `ListPartsResult`, as S3 names it (the SDK refuses anything else).
//! The data is moto's; nothing is made up here. It also records which requests asked for
//! scaling activities, so a test can show discovery asked (moto always answers an empty list).
//!
//! [`MotoShim::slow`] also holds every UploadPart request for a while before passing it on, as
//! a slow uplink would, so that an upload to loopback lasts long enough to be watched.
//!
//! It listens on 127.0.0.1 and talks only to moto on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct MotoShim {
    pub endpoint: String,
    /// Bodies of the DescribeScalingActivities requests passed to moto.
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl MotoShim {
    /// Starts the shim in front of `moto` (its endpoint).
    pub fn start(moto: &str) -> MotoShim {
        MotoShim::slow(moto, std::time::Duration::ZERO)
    }

    /// [`MotoShim::start`], holding each UploadPart request `part_delay` before moto sees it.
    pub fn slow(moto: &str, part_delay: std::time::Duration) -> MotoShim {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the shim");
        let endpoint = format!("http://{}", listener.local_addr().expect("shim address"));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (moto, seen) = (moto.to_string(), asked.clone());
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (moto, seen, agent) = (moto.clone(), seen.clone(), agent.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &agent, &moto, &seen, part_delay);
                });
            }
        });
        MotoShim { endpoint, asked }
    }
}

/// One request per connection (every answer says `Connection: close`).
fn serve(
    conn: TcpStream,
    agent: &ureq::Agent,
    moto: &str,
    seen: &Mutex<Vec<String>>,
    part_delay: std::time::Duration,
) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("GET").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue") {
                out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                continue;
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    if method == "PUT" && path.contains("partNumber=") {
        std::thread::sleep(part_delay);
    }
    if text.contains("Action=DescribeScalingActivities") {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    }
    let (status, mut reply_headers, mut reply) = {
        let mut req = agent.request(&method, &format!("{moto}{path}"));
        for (k, v) in &headers {
            let k_lower = k.to_ascii_lowercase();
            if !["host", "content-length", "connection", "transfer-encoding"]
                .contains(&k_lower.as_str())
            {
                req = req.set(k, v);
            }
        }
        let resp = match req.send_bytes(&body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        let status = resp.status();
        let kept: Vec<(String, String)> = resp
            .headers_names()
            .into_iter()
            .filter(|n| {
                !["content-length", "connection", "transfer-encoding"]
                    .contains(&n.to_ascii_lowercase().as_str())
            })
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let mut reply = Vec::new();
        resp.into_reader().read_to_end(&mut reply)?;
        (status, kept, reply)
    };
    if reply.starts_with(b"<?xml") {
        let xml = String::from_utf8_lossy(&reply);
        if xml.contains("<ListPartsResponse ") {
            reply = xml
                .replace("<ListPartsResponse ", "<ListPartsResult ")
                .replace("</ListPartsResponse>", "</ListPartsResult>")
                .into_bytes();
        }
    }
    reply_headers.push(("Connection".into(), "close".into()));
    let head: String = reply_headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    // A HEAD answer keeps moto's Content-Length header semantics out: no body either way.
    let length = if method == "HEAD" { 0 } else { reply.len() };
    write!(
        out,
        "HTTP/1.1 {status} X\r\n{head}Content-Length: {length}\r\n\r\n"
    )?;
    if method != "HEAD" {
        out.write_all(&reply)?;
    }
    out.flush()
}
