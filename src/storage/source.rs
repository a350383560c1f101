//! Which storage a remote source lives in: `s3://bucket/key`, `gs://bucket/key`,
//! `sftp://host[:port]/path`, an Azure blob URL, or any other http(s) URL (presigned, SAS,
//! public) fetched as it is. The credentials come from the first storage block of a matching
//! type (the job's `source_storage`, then the node's defaults); S3 and GCS fall back to their
//! standard credential chains. Pure.

use percent_encoding::percent_decode_str;

use super::fetch::shown_url;
use super::settings::{NodeStorage, StorageSettings, remote_settings};
use crate::error::quoted;
use crate::proto as pb;

/// Where a remote source is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// A URL fetched as it is (its query, e.g. a signature, is never shown).
    Http(String),
    /// An object in a storage backend.
    Stored { settings: StorageSettings, key: String },
}

/// Why a source cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct SourceError {
    /// As shown: without its query.
    pub url: String,
    pub reason: String,
}

/// The source at `url`, or `None` for a local path. `blocks`: the storage blocks that may hold
/// its credentials, first match wins.
pub fn source_ref(url: &str, blocks: &[&pb::Storage], node: &NodeStorage) -> Result<Option<SourceRef>, SourceError> {
    let error = |reason: String| SourceError { url: shown_url(url), reason };
    let Some((scheme, rest)) = url.split_once("://") else { return Ok(None) };
    let matching = |types: &[&str]| blocks.iter().find(|b| types.contains(&b.r#type.as_str())).map(|b| (*b).clone());
    let (mut block, key) = match scheme {
        "file" => return Ok(None),
        "s3" | "gs" => {
            let (bucket, key) = bucket_and_key(rest).map_err(error)?;
            let (types, kind): (&[&str], &str) =
                if scheme == "s3" { (&["s3", "digitalocean"], "s3") } else { (&["gcs"], "gcs") };
            let mut block =
                matching(types).unwrap_or_else(|| pb::Storage { r#type: kind.into(), ..Default::default() });
            block.bucket = bucket;
            (block, key)
        }
        "sftp" => {
            let (authority, path) = rest.split_once('/').ok_or_else(|| error("no path after the host".into()))?;
            let (host, port) = host_and_port(authority).map_err(error)?;
            let mut block = matching(&["sftp"]).ok_or_else(|| {
                error("sftp sources need credentials: give a source_storage block of type sftp".into())
            })?;
            if !block.host.eq_ignore_ascii_case(&host) {
                // The block's host key belongs to another host: the node's known-hosts decides.
                block.host_key.clear();
            }
            block.host = host;
            block.port = u32::from(port.unwrap_or(22));
            (block, format!("/{}", decode(path)))
        }
        "http" | "https" => match azure_blob(url, rest, blocks) {
            Some(found) => found,
            None => return Ok(Some(SourceRef::Http(url.to_owned()))),
        },
        other => {
            return Err(error(format!(
                "{} is not a source scheme (s3, gs, sftp, http, https, or a local path)",
                quoted(other)
            )));
        }
    };
    block.path_prefix.clear();
    let settings = remote_settings(&block, node).map_err(|violations| {
        let reasons: Vec<String> =
            violations.iter().map(|(field, reason)| format!("source_storage.{field}: {reason}")).collect();
        error(reasons.join("; "))
    })?;
    if key.is_empty() || key.ends_with('/') {
        return Err(error("names a directory, not an object".into()));
    }
    Ok(Some(SourceRef::Stored { settings, key }))
}

/// An Azure blob URL without a query: `https://{account}.blob.core.windows.net/{container}/{blob}`,
/// or under the endpoint of an azure block (Azurite, sovereign clouds). With a query (a SAS)
/// it is fetched as it is.
fn azure_blob(url: &str, rest: &str, blocks: &[&pb::Storage]) -> Option<(pb::Storage, String)> {
    if url.contains('?') {
        return None;
    }
    let azure: Vec<&pb::Storage> = blocks.iter().copied().filter(|b| b.r#type == "azure").collect();
    let (authority, path) = rest.split_once('/')?;
    let (block, path) = if let Some(account) = authority.strip_suffix(".blob.core.windows.net") {
        let block = azure.iter().find(|b| b.access_key == account).or(azure.first())?;
        let mut block = (*block).clone();
        block.access_key = account.to_owned();
        (block, path)
    } else {
        let block = azure.iter().find(|b| {
            let endpoint = b.endpoint.trim_end_matches('/');
            !endpoint.is_empty() && url.starts_with(&format!("{endpoint}/"))
        })?;
        let path = &url[block.endpoint.trim_end_matches('/').len() + 1..];
        ((*block).clone(), path)
    };
    let (container, blob) = path.split_once('/')?;
    let mut block = block;
    block.bucket = decode(container);
    Some((block, decode(blob)))
}

fn bucket_and_key(rest: &str) -> Result<(String, String), String> {
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket.to_owned(), key.to_owned())),
        _ => Err("expected {scheme}://bucket/key".into()),
    }
}

fn host_and_port(authority: &str) -> Result<(String, Option<u16>), String> {
    // Credentials in the URL are not taken: they belong in the source_storage block.
    if authority.contains('@') {
        return Err("give the credentials in a source_storage block, not in the URL".into());
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let port = port.parse::<u16>().map_err(|_| format!("{} is not a port", quoted(port)))?;
            Ok((host.to_owned(), Some(port)))
        }
        _ if !authority.is_empty() => Ok((authority.to_owned(), None)),
        _ => Err("no host".into()),
    }
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::settings::Backend;

    fn stored(url: &str, blocks: &[&pb::Storage]) -> (StorageSettings, String) {
        match source_ref(url, blocks, &NodeStorage::default()).expect("valid").expect("remote") {
            SourceRef::Stored { settings, key } => (settings, key),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn s3_without_a_block_uses_the_aws_chain() {
        let (settings, key) = stored("s3://calls/2026/call 1.zip", &[]);
        let Backend::S3(s3) = settings.backend else { panic!("s3") };
        assert_eq!((s3.bucket.as_str(), key.as_str(), s3.credentials.is_none()), ("calls", "2026/call 1.zip", true));
    }

    #[test]
    fn a_matching_block_gives_the_credentials_and_the_url_the_bucket() {
        let block = pb::Storage {
            r#type: "digitalocean".into(),
            bucket: "other".into(),
            region: "nyc3".into(),
            access_key: "AK".into(),
            secret: "SK".into(),
            path_prefix: "outputs".into(),
            ..Default::default()
        };
        let gcs = pb::Storage { r#type: "gcs".into(), ..Default::default() };
        let (settings, key) = stored("s3://calls/call.zip", &[&gcs, &block]);
        let Backend::S3(s3) = settings.backend else { panic!("s3") };
        assert_eq!((s3.kind, s3.bucket.as_str(), key.as_str()), ("digitalocean", "calls", "call.zip"));
        assert!(s3.credentials.is_some() && settings.path_prefix.is_empty());
    }

    #[test]
    fn azure_blob_urls_by_host_or_endpoint() {
        let block = pb::Storage {
            r#type: "azure".into(),
            access_key: "devstoreaccount1".into(),
            secret: "a2V5".into(),
            endpoint: "http://127.0.0.1:10000/devstoreaccount1".into(),
            ..Default::default()
        };
        let (settings, key) = stored("http://127.0.0.1:10000/devstoreaccount1/calls/a%20b.zip", &[&block]);
        let Backend::Azure(azure) = settings.backend else { panic!("azure") };
        assert_eq!((azure.container.as_str(), key.as_str()), ("calls", "a b.zip"));
        let (settings, _) = stored("https://acct.blob.core.windows.net/calls/x.zip", &[&block]);
        let Backend::Azure(azure) = settings.backend else { panic!("azure") };
        assert_eq!(azure.account, "acct");
        // A SAS URL is fetched as it is.
        let sas = "https://acct.blob.core.windows.net/calls/x.zip?sv=2021&sig=abc";
        assert!(matches!(source_ref(sas, &[&block], &NodeStorage::default()), Ok(Some(SourceRef::Http(_)))));
    }

    #[test]
    fn sftp_takes_host_and_port_from_the_url_and_credentials_from_the_block() {
        let block = pb::Storage {
            r#type: "sftp".into(),
            host: "other.example".into(),
            username: "u".into(),
            password: "pw".into(),
            host_key: "SHA256:abc".into(),
            ..Default::default()
        };
        let node = NodeStorage { known_hosts: Some("/etc/ssh/known".into()), ..Default::default() };
        let found =
            source_ref("sftp://files.example:2222/data/call.zip", &[&block], &node).expect("ok").expect("remote");
        let SourceRef::Stored { settings, key } = found else { panic!("stored") };
        let Backend::Sftp(sftp) = settings.backend else { panic!("sftp") };
        assert_eq!((sftp.host.as_str(), sftp.port, key.as_str()), ("files.example", 2222, "/data/call.zip"));
        assert_eq!(sftp.host_key, None, "another host's key is not used");
        let err = source_ref("sftp://files.example/x.zip", &[], &node).expect_err("no credentials");
        assert!(err.reason.contains("source_storage"), "{err}");
    }

    #[test]
    fn local_paths_plain_urls_and_bad_schemes() {
        assert_eq!(source_ref("/data/call.zip", &[], &NodeStorage::default()), Ok(None));
        let url = "https://example.com/call.zip?X-Amz-Signature=secret";
        assert_eq!(source_ref(url, &[], &NodeStorage::default()), Ok(Some(SourceRef::Http(url.into()))));
        let err = source_ref("ftp://x/y?token=secret", &[], &NodeStorage::default()).expect_err("ftp");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(source_ref("s3://bucket-only", &[], &NodeStorage::default()).is_err());
        assert!(source_ref("s3://b/dir/", &[], &NodeStorage::default()).is_err());
    }
}
