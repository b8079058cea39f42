//! A node's web desk as tests reach it: its address, this start's token,
//! and plain HTTP requests with or without it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::wait_until;

/// Where a running node serves its web desk, and the token it drew.
#[derive(Debug, Clone)]
pub struct WebDesk {
    /// The desk's loopback address.
    pub addr: SocketAddr,
    /// This start's token (from `<data_dir>/web.token`).
    pub token: String,
}

/// A plain HTTP answer.
#[derive(Debug, Clone)]
pub struct WebAnswer {
    /// The status code.
    pub status: u16,
    /// The headers, as sent.
    pub head: String,
    /// The body.
    pub body: String,
}

impl WebDesk {
    /// Waits until the node serving its desk at `addr` has written this
    /// start's token to its `data_dir`.
    pub async fn wait_for(addr: SocketAddr, data_dir: &Path) -> anyhow::Result<Self> {
        let file = data_dir.join(tocsin_node::WEB_TOKEN_FILE);
        let token = wait_until(
            Duration::from_secs(10),
            &format!("the web token in {}", file.display()),
            || {
                let file = file.clone();
                async move {
                    std::fs::read_to_string(&file)
                        .ok()
                        .filter(|t| !t.is_empty())
                }
            },
        )
        .await?;
        Ok(Self { addr, token })
    }

    /// The address of `path` on the desk.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address a person opens first: it sets the token's cookie.
    pub fn login_url(&self) -> String {
        self.url(&format!("/?token={}", self.token))
    }

    /// `GET path` over plain HTTP/1.1, with `bearer` as the token if given.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> anyhow::Result<WebAnswer> {
        self.request("GET", path, bearer, None).await
    }

    /// `POST path` of a urlencoded `form`, with `bearer` as the token if given.
    pub async fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        form: &str,
    ) -> anyhow::Result<WebAnswer> {
        self.request("POST", path, bearer, Some(form)).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        form: Option<&str>,
    ) -> anyhow::Result<WebAnswer> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let body = form
            .map(|f| {
                format!(
                    "Content-Type: application/x-www-form-urlencoded\r\n\
                     Content-Length: {}\r\n\r\n{f}",
                    f.len()
                )
            })
            .unwrap_or_else(|| "\r\n".to_owned());
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n{body}",
            self.addr
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .context("the web desk did not answer in 10 s")??;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            bail!("the web desk answered no HTTP head: {text:?}");
        };
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        Ok(WebAnswer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }
}
