"""The stock LangChain recipe as a baseline row: recursive character chunks, the same embedding model,
plain similarity search.

``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)`` (the LangChain
RAG tutorial's settings) over each corpus document, an ``InMemoryVectorStore`` over the embeddings, and
``similarity_search_with_score(question, k)``. There is no generator and no abstention: the answer cites
the ``k`` nearest chunks verbatim (located with ``start_index`` so grounding is measurable) and its text is
those chunks quoted. History is ignored (the stock recipe searches on the question alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.chunking import chunk_id
from bot.records import Answer, Citation, Document

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
BASELINE_K = 5  # LangChain's default is 4; 5 matches the bot's top_k and the nDCG@5 depth.
LABEL = (
    f"LangChain stock recipe: recursive character chunks ({CHUNK_SIZE}/{CHUNK_OVERLAP}) + the same model + "
    f"plain similarity search, k={BASELINE_K}"
)


class LangChainBaseline:
    """Recursive-character chunks in a LangChain in-memory vector store; ``ask`` never abstains."""

    def __init__(
        self,
        docs: Sequence[Document],
        embeddings: Any,
        chunk_size: int = CHUNK_SIZE,
        chunk_overlap: int = CHUNK_OVERLAP,
        k: int = BASELINE_K,
    ) -> None:
        from langchain_core.vectorstores import InMemoryVectorStore
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
        )
        self.k = k
        self.chunks = splitter.create_documents(
            [d.text for d in docs], metadatas=[{"source": d.source} for d in docs]
        )
        self.store = InMemoryVectorStore(embeddings)
        if self.chunks:
            self.store.add_documents(self.chunks)

    def ask(self, question: str, history: Sequence[str] = ()) -> Answer:
        found = self.store.similarity_search_with_score(question, k=self.k) if self.chunks else []
        citations = []
        for n, (doc, score) in enumerate(found, 1):
            start = int(doc.metadata.get("start_index", -1))
            source = str(doc.metadata.get("source", ""))
            text = doc.page_content
            end = start + len(text)
            citations.append(
                Citation(n, chunk_id(source, start, end, text), source, start, end, text, "", score)
            )
        body = [f"> {' '.join(c.text.split())} [{c.n}]" for c in citations]
        return Answer(question, "answer", "\n\n".join(body), citations=tuple(citations))
