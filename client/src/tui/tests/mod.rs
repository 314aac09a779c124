//! The client model, driven through `update` with events and keys, read
//! back as state: no terminal, no socket, virtual time. One module per
//! concept, as the model is split; [`harness`] holds the test client.

mod conversations;
mod harness;
mod login;
mod reconnect;
mod sidebar;
mod slash;
