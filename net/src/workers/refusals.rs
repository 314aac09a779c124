//! The answer the hub gets for a write the storage queue refused (full,
//! or closed at shutdown), as [`super::storage::ReadJob::refused`] is for
//! reads: each job knows which result its request waits for.

use confab_engine::{EffectResult, ProtocolError};

use super::storage::WriteJob;

impl WriteJob {
    /// The answer when the job is refused; `None` for a job no request
    /// waits on (the writer's own, or one never refused).
    pub(crate) fn refused(self, refusal: ProtocolError) -> Option<EffectResult> {
        Some(match self {
            WriteJob::Message {
                conn,
                reference,
                message,
                ..
            } => EffectResult::Stored {
                conn,
                reference,
                result: Err((message, refusal)),
            },
            WriteJob::Group {
                conn,
                reference,
                op,
            } => EffectResult::GroupStored {
                conn,
                reference,
                op,
                result: Err(refusal),
            },
            WriteJob::ReadMarker {
                conn, user, target, ..
            } => EffectResult::ReadMarkerSaved {
                conn,
                user,
                target,
                result: Err(refusal),
            },
            WriteJob::RevokeDevice {
                conn, reference, ..
            } => EffectResult::DeviceRevoked {
                conn,
                reference,
                result: Err(refusal),
            },
            WriteJob::Moderate {
                conn, reference, ..
            }
            | WriteJob::BanAddress {
                conn, reference, ..
            }
            | WriteJob::Audit {
                conn, reference, ..
            } => EffectResult::Moderated {
                conn,
                reference,
                result: Err(refusal),
            },
            WriteJob::Delete {
                conn,
                reference,
                actor,
                ..
            } => EffectResult::MessageDeleted {
                conn,
                reference,
                by: actor,
                result: Err(refusal),
            },
            WriteJob::Bookmark { .. }
            | WriteJob::PruneSends { .. }
            | WriteJob::Offline { .. }
            | WriteJob::Retention(_)
            | WriteJob::Tick => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use confab_engine::{ConnId, MessageId, Name, Ref};

    use super::*;

    fn conn() -> ConnId {
        let mut hub = confab_engine::Hub::new(confab_engine::Config::default(), [], MessageId(0));
        hub.connect(
            std::time::Instant::now(),
            confab_engine::Source(1),
            confab_engine::Protocol::CONFAB,
        )
    }

    fn busy() -> ProtocolError {
        ProtocolError::Busy { doing: "testing" }
    }

    #[test]
    fn a_refused_deletion_answers_its_request_naming_the_deleter_and_the_writers_own_jobs_answer_nothing(
    ) {
        let (c, ann) = (conn(), Name::new("ann").expect("valid"));
        let job = WriteJob::Delete {
            conn: c,
            reference: Ref(3),
            actor: ann,
            id: MessageId(9),
            reason: String::new(),
            within: None,
        };
        match job.refused(busy()) {
            Some(EffectResult::MessageDeleted {
                conn,
                reference,
                by,
                result: Err(ProtocolError::Busy { .. }),
            }) => assert_eq!((conn, reference, by), (c, Ref(3), ann)),
            other => panic!("{other:?}"),
        }
        let revoke = WriteJob::RevokeDevice {
            conn: c,
            reference: Ref(4),
            user: ann,
            device: ann,
        };
        assert!(matches!(
            revoke.refused(busy()),
            Some(EffectResult::DeviceRevoked {
                reference: Ref(4),
                result: Err(_),
                ..
            })
        ));
        assert!(WriteJob::Tick.refused(busy()).is_none());
    }
}
