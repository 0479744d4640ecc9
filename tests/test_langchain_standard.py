"""LangChain's own standard suite for retrievers (``langchain-tests``), run on faqbot's retriever over the
real model and index: k in the constructor and in ``invoke``, sync and async, Document results."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from bot.retrieval import make_retriever

pytestmark = pytest.mark.slow


class TestFaqRetrieverStandard(RetrieversIntegrationTests):
    bot: Any = None

    @pytest.fixture(autouse=True)
    def _bot(self, real_bot: Any) -> None:
        type(self).bot = real_bot

    @property
    def retriever_constructor(self) -> Any:
        bot = type(self).bot
        return lambda **params: make_retriever(bot.searcher, bot.embed_query, **params)

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"k": 5}

    @property
    def retriever_query_example(self) -> str:
        return "When should CPK be measured?"


def test_invoke_k_overrides_the_constructor_for_one_call(real_bot: Any) -> None:
    retriever = make_retriever(real_bot.searcher, real_bot.embed_query, k=4)
    assert len(retriever.invoke("grade 2 rash", k=2)) == 2
    assert len(retriever.invoke("grade 2 rash")) == 4  # the override does not stick
    dense = retriever.invoke("grade 2 rash", k=3, mode="dense")
    assert [d.metadata["lexical"] for d in dense] == [0.0, 0.0, 0.0]
