"""amqp_actor_present against a real clu actor (another connection's exclusive queue)."""

from bridge.amqp.presence import amqp_actor_present
from tests.amqp.helpers import amqp_connection, clu_actor, endpoint
from tests.support.aio import aio_test


@aio_test
async def test_presence_of_clu_actors_and_our_own_endpoints(amqp_url):
    async with amqp_connection(amqp_url) as conn:
        assert not await amqp_actor_present(conn, "shutter")
        async with clu_actor(amqp_url, "shutter"):
            assert await amqp_actor_present(conn, "shutter")  # locked by its connection
        assert not await amqp_actor_present(conn, "shutter")
        async with endpoint(amqp_url, "ours"):
            assert await amqp_actor_present(conn, "ours")
        assert conn.connected  # the probes never close our long-lived channels
