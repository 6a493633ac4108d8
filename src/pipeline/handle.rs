//! [`MixtureHandle`]: changes to a running loader's mixture, from any thread.
//!
//! A handle sends requests over a channel; the loader applies them at the next batch boundary, in
//! the order they were sent, and records each applied change as a new mixture version with the
//! step from which it holds. Each request returns a [`ChangeTicket`] whose [`ChangeTicket::wait`]
//! gives the new version number, or the error that rejected the change.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use super::mixing::MixtureVersion;
use crate::config::DomainConfig;
use crate::error::{Error, Result};
use crate::mixture::MixtureConfig;

/// Where a new domain's embedding comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EmbeddingInput {
    /// The loader samples the domain's documents and embeds them with the built-in hashed embedder.
    Hashed,
    /// A `.npy` file of one row or of several rows (their mean, duplicates dropped), or a
    /// safetensors file holding a tensor named after the domain.
    File(PathBuf),
    /// The embedding itself.
    Vector(Vec<f64>),
}

/// A domain to add to a running loader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainSpec {
    /// The domain, as in a `[[domains]]` table; its path must be absolute or relative to the
    /// working directory.
    pub config: DomainConfig,
    /// Its embedding, used by the Chameleon policies. Default: [`EmbeddingInput::Hashed`].
    pub embedding: EmbeddingInput,
}

impl DomainSpec {
    /// A domain read from `path`, embedded by the built-in hashed embedder, with the default token
    /// column.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> DomainSpec {
        DomainSpec {
            config: DomainConfig {
                name: name.into(),
                path: path.into(),
                weight: None,
                column: None,
                text_column: None,
                tokenizer: None,
                eos_token: None,
            },
            embedding: EmbeddingInput::Hashed,
        }
    }

    /// Sets the weight used by the static policy.
    pub fn with_weight(mut self, weight: f64) -> DomainSpec {
        self.config.weight = Some(weight);
        self
    }

    /// Sets where the embedding comes from.
    pub fn with_embedding(mut self, embedding: EmbeddingInput) -> DomainSpec {
        self.embedding = embedding;
        self
    }
}

/// A change request, as the loader receives it.
#[derive(Debug)]
pub(crate) enum Request {
    AddDomain(Box<DomainSpec>),
    RemoveDomain(String),
    SetWeights(Vec<(String, f64)>),
    SetPolicy(Box<MixtureConfig>),
    SetRamp(u64),
}

/// A message from a handle to the loader.
#[derive(Debug)]
pub(crate) enum Message {
    Change { request: Request, reply: Sender<Result<u64>> },
    Loss { domain: String, loss: f64 },
}

/// What handles can read of the loader's mixture without waiting for it.
#[derive(Debug, Default)]
pub(crate) struct SharedView {
    pub versions: Vec<MixtureVersion>,
}

/// A `Clone + Send` handle that changes a running loader's mixture.
///
/// Changes take effect at the next batch boundary. When the loader is gone, every call returns
/// [`Error::LoaderClosed`].
#[derive(Debug, Clone)]
pub struct MixtureHandle {
    pub(crate) sender: Sender<Message>,
    pub(crate) view: Arc<Mutex<SharedView>>,
}

/// The outcome of one change request.
#[derive(Debug)]
#[must_use = "a change can be rejected; wait on the ticket to learn its version or error"]
pub struct ChangeTicket {
    receiver: Receiver<Result<u64>>,
}

impl ChangeTicket {
    /// Waits until the loader has applied or rejected the change, and returns the new mixture
    /// version. The loader applies changes when the consumer asks for the next batch.
    ///
    /// # Errors
    ///
    /// The error that rejected the change, or [`Error::LoaderClosed`] when the loader was dropped
    /// first.
    pub fn wait(self) -> Result<u64> {
        self.receiver.recv().unwrap_or_else(|_| Err(closed()))
    }

    /// As [`ChangeTicket::wait`], giving up after `timeout` with `None`.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<u64>> {
        match self.receiver.recv_timeout(timeout) {
            Ok(outcome) => Some(outcome),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Some(Err(closed())),
        }
    }
}

fn closed() -> Error {
    Error::LoaderClosed
}

impl MixtureHandle {
    fn request(&self, request: Request) -> Result<ChangeTicket> {
        let (reply, receiver) = crossbeam_channel::bounded(1);
        self.sender.send(Message::Change { request, reply }).map_err(|_| closed())?;
        Ok(ChangeTicket { receiver })
    }

    /// Adds a domain. The weights are recomputed over the new set of domains by the current
    /// policy; the new weights are logged beside the old ones.
    ///
    /// # Errors
    ///
    /// [`Error::LoaderClosed`] when the loader is gone. The ticket carries the errors found when
    /// the change is applied: a name or folder already present, no shards, a bad schema.
    pub fn add_domain(&self, spec: DomainSpec) -> Result<ChangeTicket> {
        self.request(Request::AddDomain(Box::new(spec)))
    }

    /// Removes a domain from the mixture: it is never drawn again, and its id stays reserved.
    ///
    /// # Errors
    ///
    /// [`Error::LoaderClosed`] when the loader is gone; through the ticket, an unknown name or the
    /// last domain.
    pub fn remove_domain(&self, name: &str) -> Result<ChangeTicket> {
        self.request(Request::RemoveDomain(name.to_string()))
    }

    /// Sets the static weights of the named domains and switches to the static policy; domains
    /// not named keep their current weight.
    ///
    /// # Errors
    ///
    /// [`Error::LoaderClosed`] when the loader is gone; through the ticket, an unknown name or a
    /// weight that is negative, not finite, or leaves every domain at zero.
    pub fn set_weights<'a>(&self, weights: impl IntoIterator<Item = (&'a str, f64)>) -> Result<ChangeTicket> {
        self.request(Request::SetWeights(weights.into_iter().map(|(name, weight)| (name.to_string(), weight)).collect()))
    }

    /// Replaces the policy and its parameters, and recomputes the weights.
    ///
    /// # Errors
    ///
    /// [`Error::LoaderClosed`] when the loader is gone; through the ticket, invalid parameters or
    /// missing embeddings.
    pub fn set_policy(&self, mixture: MixtureConfig) -> Result<ChangeTicket> {
        self.request(Request::SetPolicy(Box::new(mixture)))
    }

    /// Sets the ramp of later changes: their weights move from the old to the new ones linearly
    /// over `steps` batches instead of at once. 0 (the default) jumps.
    ///
    /// # Errors
    ///
    /// [`Error::LoaderClosed`] when the loader is gone.
    pub fn set_ramp(&self, steps: u64) -> Result<ChangeTicket> {
        self.request(Request::SetRamp(steps))
    }

    /// Reports the training loss of a batch row from `domain`, for feedback policies such as
    /// `online-exp3`; other policies ignore it.
    ///
    /// # Errors
    ///
    /// [`Error::LoaderClosed`] when the loader is gone.
    pub fn report_loss(&self, domain: &str, loss: f64) -> Result<()> {
        self.sender.send(Message::Loss { domain: domain.to_string(), loss }).map_err(|_| closed())
    }

    /// Every mixture version so far, oldest first.
    pub fn versions(&self) -> Vec<MixtureVersion> {
        self.view.lock().map(|view| view.versions.clone()).unwrap_or_default()
    }
}
