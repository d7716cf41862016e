//! How the runner reaches an agent: every call is a POST with a JSON body,
//! over a direct HTTP connection (local agents) or, on Kubernetes, through
//! the API server's pod proxy (so the runner needs no inbound network).

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::base::http::PlainClient;

/// A call to an agent failed (it is counted against the agent's liveness).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    #[error("cannot reach the agent: {0}")]
    Unreachable(String),
    #[error("the agent answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the agent's answer is not understood: {0}")]
    Garbled(String),
}

#[derive(Clone, Debug)]
pub(crate) enum Transport {
    /// `http://127.0.0.1:PORT` of a local agent.
    Direct { base: hyper::Uri },
    /// An agent pod, through the API server's pod proxy (no inbound
    /// network between the runner and the pods).
    ApiProxy {
        client: ProxyClient,
        namespace: String,
        pod: String,
        port: u16,
    },
}

/// A kube client without retries (`agent::k8s::proxy_client`).
#[derive(Clone)]
pub(crate) struct ProxyClient(pub kube::Client);

impl std::fmt::Debug for ProxyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kube::Client")
    }
}

/// One call's time limit: a poll answers at once unless the agent is gone.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

fn client() -> &'static PlainClient {
    static CLIENT: OnceLock<PlainClient> = OnceLock::new();
    CLIENT.get_or_init(|| crate::base::http::plain(CALL_TIMEOUT))
}

impl Transport {
    pub(crate) async fn post(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, AgentError> {
        match self {
            Transport::Direct { base } => direct(base, path, body).await,
            Transport::ApiProxy {
                client,
                namespace,
                pod,
                port,
            } => proxied(&client.0, namespace, pod, *port, path, body).await,
        }
    }

    /// Where the agent is, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Transport::Direct { base } => base.to_string(),
            Transport::ApiProxy {
                namespace,
                pod,
                port,
                ..
            } => format!("pod {namespace}/{pod}:{port} via the API server"),
        }
    }

    /// POSTs `req` as JSON and reads the JSON answer.
    pub(crate) async fn call<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Q,
    ) -> Result<A, AgentError> {
        let body = serde_json::to_vec(req).map_err(|e| AgentError::Garbled(e.to_string()))?;
        let answer = self.post(path, body).await?;
        serde_json::from_slice(&answer).map_err(|e| AgentError::Garbled(e.to_string()))
    }
}

async fn direct(base: &hyper::Uri, path: &str, body: Vec<u8>) -> Result<Vec<u8>, AgentError> {
    let url = format!("{}{}", base.to_string().trim_end_matches('/'), path);
    let req = hyper::Request::post(&url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| AgentError::Unreachable(format!("{url}: {e}")))?;
    let exchange = async {
        let resp = client()
            .request(req)
            .await
            .map_err(|e| AgentError::Unreachable(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| AgentError::Unreachable(format!("{url}: {e}")))?
            .to_bytes();
        if status != 200 {
            return Err(AgentError::Refused {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .map_err(|_| AgentError::Unreachable(format!("{url}: no answer within {CALL_TIMEOUT:?}")))?
}

/// Through the API server's pod proxy, within the same time limit as a
/// direct call plus one more hop.
async fn proxied(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, AgentError> {
    let call = super::k8s::proxy_post(client, namespace, pod, port, path, body);
    match tokio::time::timeout(2 * CALL_TIMEOUT, call).await {
        Err(_) => Err(AgentError::Unreachable(format!(
            "pod {namespace}/{pod}: no answer within {:?}",
            2 * CALL_TIMEOUT
        ))),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(kube::Error::Api(s))) => Err(AgentError::Refused {
            status: s.code,
            body: s.message,
        }),
        Ok(Err(e)) => Err(AgentError::Unreachable(format!(
            "pod {namespace}/{pod}: {e}"
        ))),
    }
}
