"""Pools of connections: ``ClientPool`` (configured servers, retry, reconnect, hooks)."""

from peerpool.pool.client_pool import ClientPool
from peerpool.pool.contract import ConnectionId, ConnectionInfo, ConnectOutcome, PoolClient

__all__ = ["ClientPool", "ConnectOutcome", "ConnectionId", "ConnectionInfo", "PoolClient"]
