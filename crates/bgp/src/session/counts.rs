//! Per-peer message counters, by type and direction: the numbers MetalLB's FRR-mode
//! speaker exports (`metallb_bgp_opens_sent`, `..._keepalives_received`, ...), which FRR
//! keeps per neighbour (`show bgp neighbors json`, `messageStats`).
//!
//! Counted at the session's edge: every `Action::Send` buffer is a run of complete
//! messages (RFC 4271 §4.1 header: 16-octet marker, 2-octet length, 1-octet type), and
//! every `Input::Message` is one decoded message. So nothing inside the FSM has to
//! remember to count.

use crate::packet::{HEADER_LEN, Message, message_type};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub opens_sent: u64,
    pub opens_received: u64,
    pub notifications_sent: u64,
    pub updates_received: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    pub route_refresh_sent: u64,
    pub total_sent: u64,
    pub total_received: u64,
}

impl MessageCounts {
    pub(crate) fn received(&mut self, message: &Message) {
        self.total_received += 1;
        match message {
            Message::Open(_) => self.opens_received += 1,
            Message::Update(_) => self.updates_received += 1,
            Message::Keepalive => self.keepalives_received += 1,
            Message::Notification(_) | Message::RouteRefresh { .. } => {}
        }
    }

    /// Counts the messages in one outgoing buffer; a truncated tail (never produced by
    /// our encoder) ends the walk instead of being guessed at.
    pub(crate) fn sent(&mut self, mut bytes: &[u8]) {
        while bytes.len() >= HEADER_LEN {
            let len = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
            if len < HEADER_LEN || len > bytes.len() {
                return;
            }
            self.total_sent += 1;
            match bytes[18] {
                message_type::OPEN => self.opens_sent += 1,
                message_type::NOTIFICATION => self.notifications_sent += 1,
                message_type::KEEPALIVE => self.keepalives_sent += 1,
                message_type::ROUTE_REFRESH => self.route_refresh_sent += 1,
                _ => {}
            }
            bytes = &bytes[len..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Context, Notification};

    #[test]
    fn counts_every_message_of_a_packed_buffer_by_type() {
        let ctx = Context {
            four_octet_as: true,
        };
        let mut bytes = Message::Keepalive.to_bytes(ctx);
        bytes.extend(Message::Keepalive.to_bytes(ctx));
        bytes.extend(Message::Notification(Notification::new(6, 2, vec![])).to_bytes(ctx));
        bytes.extend(
            Message::RouteRefresh {
                afi: 1,
                safi: 1,
                subtype: crate::packet::RefreshSubtype::Request,
            }
            .to_bytes(ctx),
        );
        let mut counts = MessageCounts::default();
        counts.sent(&bytes);
        assert_eq!(counts.keepalives_sent, 2);
        assert_eq!(counts.notifications_sent, 1);
        assert_eq!(counts.route_refresh_sent, 1);
        assert_eq!(counts.total_sent, 4);
        // A cut-off buffer counts only its complete messages.
        let mut cut = MessageCounts::default();
        cut.sent(&bytes[..HEADER_LEN + 3]);
        assert_eq!(cut.total_sent, 1);
        counts.received(&Message::Keepalive);
        assert_eq!((counts.keepalives_received, counts.total_received), (1, 1));
    }
}
