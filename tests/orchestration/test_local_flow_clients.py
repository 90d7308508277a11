"""Flows a warm dispatcher runs in its own process share one pair of Prefect clients per
event loop, instead of Prefect opening two new clients (and TLS contexts) for every run."""

from __future__ import annotations


async def test_local_flow_runs_share_one_pair_of_prefect_clients() -> None:
    from prefect.client.orchestration import get_client
    from prefect.context import AsyncClientContext, SyncClientContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from contexten.orchestration.orchestrator import _shared_prefect_clients

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        async with _shared_prefect_clients():
            first, first_sync = get_client(), get_client(sync_client=True)
        async with _shared_prefect_clients():
            assert get_client() is first
            assert get_client(sync_client=True) is first_sync
        assert AsyncClientContext.get() is None  # set for the flow call only
        assert SyncClientContext.get() is None
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:10/api"}):
        async with _shared_prefect_clients():
            assert get_client() is not first  # another server, other clients
