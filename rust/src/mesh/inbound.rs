//! Inbound streams of the chat and request protocols, delivered as swarm events.
//!
//! libp2p-stream hands inbound streams over through a channel of one slot per
//! protocol and resets the stream when that slot is taken; a burst of peers
//! opening their chat streams at once (100 connecting together) loses streams
//! that way, and with them the frames the senders already wrote. Here every
//! negotiated inbound stream becomes a behaviour event the swarm loop takes in
//! the same poll, so none is dropped. (Outbound streams still come from
//! libp2p-stream's `Control::open_stream`, which has no such limit.)

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, InboundUpgrade, UpgradeInfo};
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

/// A negotiated inbound stream.
pub struct InboundStream {
    pub peer: PeerId,
    pub protocol: StreamProtocol,
    pub stream: Stream,
}

impl std::fmt::Debug for InboundStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InboundStream({}, {})", self.peer, self.protocol)
    }
}

pub struct Behaviour {
    protocols: Vec<StreamProtocol>,
    ready: VecDeque<InboundStream>,
}

impl Behaviour {
    pub fn new(protocols: Vec<StreamProtocol>) -> Self {
        Behaviour {
            protocols,
            ready: VecDeque::new(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = InboundStream;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.protocols.clone()))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.protocols.clone()))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        _: ConnectionId,
        (protocol, stream): THandlerOutEvent<Self>,
    ) {
        // At most what the handlers produced since the last poll: the swarm
        // polls us right after delivering these.
        self.ready.push_back(InboundStream {
            peer,
            protocol,
            stream,
        });
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<InboundStream, THandlerInEvent<Self>>> {
        match self.ready.pop_front() {
            Some(s) => Poll::Ready(ToSwarm::GenerateEvent(s)),
            None => Poll::Pending,
        }
    }
}

/// Accepts any of the protocols; the stream is handed over as it is.
pub struct Accept(Vec<StreamProtocol>);

impl UpgradeInfo for Accept {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Accept {
    type Output = (StreamProtocol, Stream);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((protocol, stream)))
    }
}

pub struct Handler {
    protocols: Vec<StreamProtocol>,
    ready: VecDeque<(StreamProtocol, Stream)>,
}

impl Handler {
    fn new(protocols: Vec<StreamProtocol>) -> Self {
        Handler {
            protocols,
            ready: VecDeque::new(),
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = (StreamProtocol, Stream);
    type InboundProtocol = Accept;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Accept> {
        SubstreamProtocol::new(Accept(self.protocols.clone()), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Self::ToBehaviour>> {
        match self.ready.pop_front() {
            Some(s) => Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(s)),
            None => Poll::Pending,
        }
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Accept, DeniedUpgrade>) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol, ..
        }) = event
        {
            // yamux bounds the streams a peer can open; the swarm polls us next
            self.ready.push_back(protocol);
        }
    }
}
