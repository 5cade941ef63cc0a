"""`embeddings` in the Python library: the in-process Router (sync and async) and the gateway
clients, against simulated providers on loopback; routed, measured and failed over as on the
gateway's `/v1/embeddings`."""

from __future__ import annotations

import pytest

from tokenlane import AsyncClient, Client, ModelNotFound, Router
from tokenlane.client import Embeddings
from tokenlane.sim.embeddings_wire import embedding_vector

from ..harness import MASTER_KEY, SIM_KEY
from ..server.test_passthrough import passthrough_stack


@pytest.fixture
def gw():
    with passthrough_stack() as s:
        yield s


def test_router_embeds_in_process_and_measures(gw) -> None:
    with Router(gw.settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}) as router:
        gw.sim.update("vec1", fault="http_503")
        result = router.embeddings(model="embed", input=["a", "b"], dimensions=4)
        assert isinstance(result, Embeddings)
        assert result.vectors == [pytest.approx(embedding_vector("a", 4)),
                                  pytest.approx(embedding_vector("b", 4))]
        assert result.deployment == "vec2/vec2-embed" and result.model == "embed"
        assert result.decision is not None and result.decision.chosen == "vec1/vec1-embed"
        assert result.observation.ttft_s is not None and result.observation.cost > 0
        assert result.usage.prompt_tokens == result.observation.prompt_tokens
        assert result.to_openai().data[1].embedding == result.vectors[1]
        stats = router.stats().models["embed"].deployments
        assert {d.deployment: d.samples for d in stats} == {"vec1/vec1-embed": 1,
                                                            "vec2/vec2-embed": 1}
        with pytest.raises(ModelNotFound):
            router.embeddings(model="llama", input="x")


async def test_router_aembeddings(gw) -> None:
    async with Router(gw.settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY}) as r:
        result = await r.aembeddings(model="embed", input="async",
                                     provider={"order": ["vec2", "vec1"]})
    assert result.deployment == "vec2/vec2-embed"
    assert result.vectors == [pytest.approx(embedding_vector("async", 16))]


def test_gateway_clients_embed(gw) -> None:
    with Client(gw.url, api_key=MASTER_KEY) as client:
        result = client.embeddings(model="embed", input="over http")
    assert result.vectors == [pytest.approx(embedding_vector("over http", 16))]
    assert result.deployment == "vec1/vec1-embed" and result.decision.policy == "order"
    assert result.observation is None


async def test_async_gateway_client_embeds(gw) -> None:
    async with AsyncClient(gw.url, api_key=MASTER_KEY) as client:
        result = await client.embeddings(model="embed", input=[[1, 2, 3]])
    assert result.vectors == [pytest.approx(embedding_vector([1, 2, 3], 16))]
