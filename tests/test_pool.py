"""The client pool: one client for a few runs, more (up to MAX_CLIENTS, taken in turn) as runs
pile up on one endpoint, each with its share of the connection limits; closed with the last run."""

from __future__ import annotations

import asyncio

from orchestrator.models.pool import (
    LIMITS,
    MAX_CLIENTS,
    RUNS_PER_CLIENT,
    ClientPool,
    shared_pool,
)


def limits_of(client: object) -> tuple[int | None, int | None]:
    transport = client._client._transport  # type: ignore[attr-defined]
    pool = transport._pool
    return pool._max_connections, pool._max_keepalive_connections


async def test_a_few_runs_share_one_client_per_endpoint() -> None:
    pool = ClientPool()
    pool.runs = RUNS_PER_CLIENT - 1
    first = pool.get("http://127.0.0.1:1/v1", "k")
    assert all(pool.get("http://127.0.0.1:1/v1", "k") is first for _ in range(20))
    assert pool.get("http://127.0.0.1:2/v1", "k") is not first  # another endpoint, its own
    assert pool.get("http://127.0.0.1:1/v1", "other key") is not first
    await pool.aclose()


async def test_many_runs_spread_over_more_clients_in_turn_each_with_a_share() -> None:
    pool = ClientPool()
    pool.runs = 3 * RUNS_PER_CLIENT  # four clients wanted
    got = [pool.get("http://127.0.0.1:1/v1", "k") for _ in range(40)]
    clients = {id(c): c for c in got}
    assert len(clients) == 4
    assert all(got.count(c) >= 9 for c in clients.values())  # in turn, not all on one
    pool.runs = 100 * RUNS_PER_CLIENT
    more = {id(pool.get("http://127.0.0.1:1/v1", "k")) for _ in range(100)}
    assert len(more) == MAX_CLIENTS
    # the SDK's limits for an endpoint, split: no more sockets in all than one client had
    share = limits_of(got[0])
    assert share == (LIMITS.max_connections, LIMITS.max_keepalive_connections)
    assert share[0] is not None and share[0] * MAX_CLIENTS <= 1000
    await pool.aclose()


async def test_shared_pool_counts_the_runs_on_its_loop_and_closes_with_the_last() -> None:
    seen: list[ClientPool] = []
    release = asyncio.Event()

    async def run() -> None:
        async with shared_pool() as pool:
            seen.append(pool)
            await release.wait()

    tasks = [asyncio.create_task(run()) for _ in range(3)]
    while len(seen) < 3:
        await asyncio.sleep(0)
    assert seen[0] is seen[1] is seen[2] and seen[0].runs == 3
    client = seen[0].get("http://127.0.0.1:1/v1", "k")
    release.set()
    await asyncio.gather(*tasks)
    assert seen[0].runs == 0 and client.is_closed()
    async with shared_pool() as fresh:
        assert fresh is not seen[0]
