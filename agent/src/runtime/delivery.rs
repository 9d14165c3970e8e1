//! Delivery to a collector: the spool, the token and the HTTP client,
//! prepared before any socket is opened, so that a spool that cannot be
//! created or a token that cannot be read stops the agent before it
//! needs a privilege.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Delivery;
use crate::spool::{Spool, SpoolConfig, SpoolError};
use crate::upload::{self, ClientError, TokenError, UploadConfig, Uploader};

/// The spool and the uploader of a running agent.
#[derive(Debug)]
pub struct Delivering {
    pub spool: Arc<Mutex<Spool>>,
    pub spool_dir: PathBuf,
    pub uploader: Uploader,
    /// On shutdown, time to upload what is spooled.
    pub grace: Duration,
}

/// Why delivery cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The spool directory cannot be created, read or written.
    #[error("{0}: the agent must be able to create and write its spool directory (--spool DIR)")]
    Spool(#[source] SpoolError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl Delivering {
    /// Opens the spool (recovering what an earlier run left), checks that
    /// the token can be read and builds the HTTP client.
    pub fn prepare(d: &Delivery) -> Result<Self, DeliveryError> {
        let mut sc = SpoolConfig::new(&d.spool);
        sc.max_bytes = d.spool_max;
        sc.segment_bytes = sc.segment_bytes.min((d.spool_max / 8).max(64 << 10));
        let spool = Spool::open(sc).map_err(DeliveryError::Spool)?;
        for note in &spool.recovery_notes {
            tracing::warn!("spool recovery: {note}");
        }
        if spool.pending_records() > 0 {
            tracing::info!(
                "spool {} holds {} result(s) not yet uploaded; they go first",
                d.spool.display(),
                spool.pending_records()
            );
        }
        let mut uc = UploadConfig::new(d.collector.clone(), d.token_file.clone());
        uc.ca_file = d.ca_file.clone();
        uc.backoff_max = d.retry_max;
        uc.backoff_min = uc.backoff_min.min(d.retry_max);
        upload::read_token(&d.token_file)?;
        let client = upload::client(&uc)?;
        let spool = Arc::new(Mutex::new(spool));
        Ok(Self {
            uploader: Uploader {
                cfg: uc,
                client,
                spool: spool.clone(),
                stats: Arc::default(),
            },
            spool,
            spool_dir: d.spool.clone(),
            grace: d.shutdown_grace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::testutil::{config, TempDir};

    fn delivery(dir: &TempDir) -> Delivery {
        let c = config(&format!(
            "targets = [\"198.18.176.0/24\"]\ncollector = \"http://127.0.0.1:9\"\n\
             insecure_http = true\ntoken_file = \"{0}/token\"\nspool = \"{0}/spool\"\n\
             spool_max = \"8MiB\"\nretry_max = \"200ms\"",
            dir.path().display()
        ));
        c.delivery.expect("delivery")
    }

    #[test]
    fn a_missing_token_file_is_a_token_error_naming_the_file_with_a_hint() {
        let dir = TempDir::new("delivery-token");
        let d = delivery(&dir);
        let e = Delivering::prepare(&d).expect_err("no token file");
        assert!(
            matches!(e, DeliveryError::Token(TokenError::Read { .. })),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("{}/token", dir.path().display())),
            "{text}"
        );
        assert!(text.contains("No such file"), "{text}");
        assert!(text.contains("tumen-collector token"), "{text}");
        // The spool was created all the same (it is opened first).
        assert!(dir.path().join("spool").is_dir());
        std::fs::write(dir.path().join("token"), "# nothing\n").expect("write");
        let e = Delivering::prepare(&d).expect_err("empty token file");
        assert!(
            matches!(e, DeliveryError::Token(TokenError::Empty { .. })),
            "{e:?}"
        );
        std::fs::write(dir.path().join("token"), "abc\n").expect("write");
        let ok = Delivering::prepare(&d).expect("ready");
        assert_eq!(ok.grace, Duration::from_secs(5));
        assert_eq!(ok.uploader.cfg.backoff_max, Duration::from_millis(200));
        assert_eq!(ok.uploader.cfg.backoff_min, Duration::from_millis(200));
        // The segment size follows the bound (an eighth of it).
        assert_eq!(ok.spool.lock().expect("spool").max_bytes(), 8 << 20);
    }

    #[test]
    fn a_spool_that_cannot_be_created_is_a_spool_error() {
        let dir = TempDir::new("delivery-spool");
        let mut d = delivery(&dir);
        std::fs::write(dir.path().join("token"), "abc\n").expect("write");
        // A file where the directory should be.
        std::fs::write(dir.path().join("file"), "x").expect("write");
        d.spool = dir.path().join("file/spool");
        let e = Delivering::prepare(&d).expect_err("not a directory");
        assert!(matches!(e, DeliveryError::Spool(_)), "{e:?}");
        assert!(e.to_string().contains("--spool DIR"), "{e}");
    }

    #[test]
    fn an_unreadable_or_empty_ca_file_is_a_client_error() {
        let dir = TempDir::new("delivery-ca");
        let mut d = delivery(&dir);
        std::fs::write(dir.path().join("token"), "abc\n").expect("write");
        d.ca_file = Some(dir.path().join("ca.pem"));
        let e = Delivering::prepare(&d).expect_err("no CA file");
        assert!(
            matches!(e, DeliveryError::Client(ClientError::CaRead { .. })),
            "{e:?}"
        );
        std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").expect("write");
        let e = Delivering::prepare(&d).expect_err("no certificate");
        assert!(
            matches!(e, DeliveryError::Client(ClientError::CaEmpty { .. })),
            "{e:?}"
        );
    }
}
