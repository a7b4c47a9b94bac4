"""Pools of connections.

``ClientPool`` keeps clients connected to a list of configured servers. Any
object with three coroutines can be pooled (the :class:`PoolClient`
protocol): ``connect()`` (dial and handshake; raise on failure), ``close()``
(idempotent) and ``wait_closed()`` (return once the connection has ended, for
any reason). Specialise the pool by passing ``client_factory`` (called with
``**client_kwargs(conn)``, by default ``address=<Address>``) or by overriding
its hooks; every hook receives a :class:`ConnectionInfo` whose id is
allocated before the dial::

    class DirectoryClientPool(ClientPool[DirectoryClient]):
        def client_kwargs(self, conn):
            return {"address": conn.address, "proxy": self.proxy, ...}

        async def on_connected(self, conn, client): ...
        async def on_disconnected(self, conn, client, cause): ...

    pool = DirectoryClientPool(["xxxx.onion:5222", ...])
    outcome = await pool.connect_all_with_retry(timeout=60, min_connected=2)
    pool.start_reconnect_task()
    ...
    await pool.close_all()

``NamedPools`` (with ``pool_budgets``) splits a connection budget across named
pools by ratio and keeps who is in which pool, with routing as a pluggable
policy; the mesh ``ConnectionPools`` is built on it.
"""

from peerpool.pool.budget import pool_budgets
from peerpool.pool.client_pool import ClientPool
from peerpool.pool.contract import ConnectionId, ConnectionInfo, ConnectOutcome, PoolClient
from peerpool.pool.named import AddOutcome, Changes, NamedPools, RoutingPolicy

__all__ = [
    "AddOutcome",
    "Changes",
    "ClientPool",
    "ConnectOutcome",
    "ConnectionId",
    "ConnectionInfo",
    "NamedPools",
    "PoolClient",
    "RoutingPolicy",
    "pool_budgets",
]
