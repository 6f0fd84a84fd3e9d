"""`jaxdoctor server` end to end: pygls's own LSP client starts the real server process and talks
JSON-RPC to it over its stdin/stdout (initialize → didOpen → publishDiagnostics → codeAction →
didChange → hover → shutdown), on real files on disk. No mocks."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path


import lsprotocol.types as lsp  # the `server` extra is part of the test extra: missing is a failure
from pygls.lsp.client import LanguageClient

SOURCE = textwrap.dedent("""\
    import jax
    import jax.numpy as jnp


    @jax.jit
    def f(x, i):
        y = x
        if x.sum() > 0:
            s = "😀"; x[i] = 0.0  # a wide character before the finding: UTF-16 columns differ
        return x
    """)
TIMEOUT = 60


class Session:
    """A real server process and pygls's client; diagnostics collected per uri."""

    def __init__(self, root: Path, capabilities: lsp.ClientCapabilities | None = None) -> None:
        self.root = root
        self.client = LanguageClient("jaxdoctor-tests", "1")
        self.capabilities = capabilities or lsp.ClientCapabilities(
            notebook_document=lsp.NotebookDocumentClientCapabilities(
                synchronization=lsp.NotebookDocumentSyncClientCapabilities()))
        self.published: asyncio.Queue = asyncio.Queue()

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.put_nowait(params)

        @self.client.feature(lsp.WINDOW_LOG_MESSAGE)
        def on_log(params: lsp.LogMessageParams) -> None:
            pass

    async def start(self) -> lsp.InitializeResult:
        await self.client.start_io(sys.executable, "-m", "jaxdoctor", "server", "--debounce", "20")
        result = await asyncio.wait_for(self.client.initialize_async(lsp.InitializeParams(
            capabilities=self.capabilities, root_uri=self.root.as_uri(), process_id=None,
            workspace_folders=[lsp.WorkspaceFolder(uri=self.root.as_uri(), name="w")],
        )), TIMEOUT)
        self.client.initialized(lsp.InitializedParams())
        return result

    async def diagnostics(self, uri: str) -> list[lsp.Diagnostic]:
        while True:
            params = await asyncio.wait_for(self.published.get(), TIMEOUT)
            if params.uri == uri:
                return list(params.diagnostics)

    def open(self, path: Path, text: str, version: int = 1) -> str:
        uri = path.as_uri()
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))
        return uri

    async def stop(self) -> None:
        await asyncio.wait_for(self.client.shutdown_async(None), TIMEOUT)
        self.client.exit(None)
        await self.client.stop()


def by_code(diagnostics):
    return {d.code: d for d in diagnostics}


def run(coro):
    return asyncio.run(coro)


def test_diagnostics_actions_change_hover_and_shutdown(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(SOURCE)

    async def scenario():
        s = Session(tmp_path)
        init = await s.start()
        caps = init.capabilities
        assert caps.code_action_provider and caps.hover_provider and caps.notebook_document_sync
        uri = s.open(path, SOURCE)
        found = by_code(await s.diagnostics(uri))
        assert set(found) == {"JD101", "JD104"}, found
        jd101 = found["JD101"]
        assert jd101.severity == lsp.DiagnosticSeverity.Error and jd101.source == "jaxdoctor"
        assert jd101.code_description.href.startswith("file://") and jd101.code_description.href.endswith("JD101.md")
        assert (jd101.range.start.line, jd101.range.start.character) == (7, 7)
        # column 17 in code points; the emoji before it is two UTF-16 code units (LSP's default)
        jd104 = found["JD104"]
        assert init.capabilities.position_encoding in (None, "utf-16")
        assert (jd104.range.start.line, jd104.range.start.character) == (8, 18)

        actions = await asyncio.wait_for(s.client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri), range=jd104.range,
            context=lsp.CodeActionContext(diagnostics=[jd104]))), TIMEOUT)
        titles = [a.title for a in actions]
        quick = [a for a in actions if a.kind == lsp.CodeActionKind.QuickFix and "JD104" in a.title
                 and "Ignore" not in a.title]
        assert len(quick) == 1 and quick[0].is_preferred, titles
        (edit,) = quick[0].edit.changes[uri]
        assert edit.new_text == "x = x.at[i].set(0.0)" and edit.range.start.character == 18
        ignore = [a for a in actions if a.title.startswith("Ignore JD104")]
        assert ignore and ignore[0].edit.changes[uri][0].new_text == "  # jaxdoctor: ignore[JD104]"
        fix_all = [a for a in actions if a.kind == "source.fixAll.jaxdoctor"]
        assert fix_all and "x = x.at[i].set(0.0)" in fix_all[0].edit.changes[uri][0].new_text

        # only the fix-all kind, as editors ask on save
        only = await asyncio.wait_for(s.client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri), range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
            context=lsp.CodeActionContext(diagnostics=[], only=[lsp.CodeActionKind.SourceFixAll]))), TIMEOUT)
        assert [a.kind for a in only] == ["source.fixAll.jaxdoctor"]

        # hover on the finding shows the rule doc
        hover = await asyncio.wait_for(s.client.text_document_hover_async(lsp.HoverParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(7, 9))), TIMEOUT)
        assert hover.contents.value.startswith("# python-control-flow-on-tracer (JD101)")

        # an incremental edit: the Python `if` becomes a comment; JD101 goes, JD104 stays
        s.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            [lsp.TextDocumentContentChangePartial(
                range=lsp.Range(lsp.Position(7, 4), lsp.Position(7, 4)), text="# ")]))
        after = await s.diagnostics(uri)
        # `# if ...:` leaves an indented block with no header: a syntax error, reported as JD001
        assert [d.code for d in after] == ["JD001"]
        s.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
            [lsp.TextDocumentContentChangeWholeDocument(text=SOURCE.replace("if x.sum() > 0:", "if True:"))]))
        assert [d.code for d in await s.diagnostics(uri)] == ["JD104"]
        # the server is still there and answers
        s.client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
        assert [d.code for d in await s.diagnostics(uri)] == ["JD104"]
        await s.stop()

    run(scenario())


def test_configuration_follows_the_file_and_reloads(tmp_path):
    (tmp_path / "pkg").mkdir()
    config = tmp_path / "pkg" / "pyproject.toml"
    config.write_text('[tool.jaxdoctor]\nignore = ["JD101"]\n')
    path = tmp_path / "pkg" / "model.py"
    path.write_text(SOURCE)
    other = tmp_path / "other.py"
    other.write_text(SOURCE)

    async def scenario():
        s = Session(tmp_path)
        await s.start()
        uri = s.open(path, SOURCE)
        assert [d.code for d in await s.diagnostics(uri)] == ["JD104"]
        other_uri = s.open(other, SOURCE)
        assert sorted(d.code for d in await s.diagnostics(other_uri)) == ["JD101", "JD104"]
        config.write_text('[tool.jaxdoctor]\nselect = ["JD101"]\n')
        s.client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
            [lsp.FileEvent(config.as_uri(), lsp.FileChangeType.Changed)]))
        seen = {}
        while len(seen) < 2:
            params = await asyncio.wait_for(s.published.get(), TIMEOUT)
            seen[params.uri] = sorted(d.code for d in params.diagnostics)
        assert seen == {uri: ["JD101"], other_uri: ["JD101", "JD104"]}
        # a broken configuration is logged, never fatal: the server keeps answering
        config.write_text("[tool.jaxdoctor\n")
        s.client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
        s.client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(other_uri)))
        assert sorted(d.code for d in await s.diagnostics(other_uri)) == ["JD101", "JD104"]
        await s.stop()

    run(scenario())


def test_notebook_document_cells_get_cell_accurate_diagnostics(tmp_path):
    nb_path = tmp_path / "nb.ipynb"
    nb_path.write_text("{}")
    cells = ["import jax\n%timeit 1\n", "@jax.jit\ndef f(x):\n    if x > 0:\n        return x\n    return -x\n",
             "# markdown-like code cell\ny = 1  # noqa: JD101\n"]
    nb_uri = nb_path.as_uri()
    cell_uris = [f"vscode-notebook-cell:{nb_path}#cell{i}" for i in range(3)]

    async def scenario():
        s = Session(tmp_path)
        await s.start()
        s.client.notebook_document_did_open(lsp.DidOpenNotebookDocumentParams(
            notebook_document=lsp.NotebookDocument(
                uri=nb_uri, notebook_type="jupyter-notebook", version=1,
                cells=[lsp.NotebookCell(kind=lsp.NotebookCellKind.Code, document=u) for u in cell_uris]),
            cell_text_documents=[lsp.TextDocumentItem(uri=u, language_id="python", version=1, text=t)
                                 for u, t in zip(cell_uris, cells)]))
        got = {}
        while len(got) < 3:
            params = await asyncio.wait_for(s.published.get(), TIMEOUT)
            got[params.uri] = list(params.diagnostics)
        assert got[cell_uris[0]] == []
        (jd101,) = got[cell_uris[1]]
        assert jd101.code == "JD101" and (jd101.range.start.line, jd101.range.start.character) == (2, 7)
        (jd002,) = got[cell_uris[2]]
        assert jd002.code == "JD002" and jd002.range.start.line == 1
        actions = await asyncio.wait_for(s.client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(cell_uris[2]), range=jd002.range,
            context=lsp.CodeActionContext(diagnostics=[jd002]))), TIMEOUT)
        fix = [a for a in actions if a.kind == lsp.CodeActionKind.QuickFix]
        assert fix and fix[0].edit.changes[cell_uris[2]][0].new_text == ""
        # edit cell 2: the finding goes away there
        s.client.notebook_document_did_change(lsp.DidChangeNotebookDocumentParams(
            notebook_document=lsp.VersionedNotebookDocumentIdentifier(version=2, uri=nb_uri),
            change=lsp.NotebookDocumentChangeEvent(cells=lsp.NotebookDocumentCellChanges(
                text_content=[lsp.NotebookDocumentCellContentChanges(
                    document=lsp.VersionedTextDocumentIdentifier(uri=cell_uris[1], version=2),
                    changes=[lsp.TextDocumentContentChangeWholeDocument(text="@jax.jit\ndef f(x):\n    return -x\n")])]))))
        got = {}
        while len(got) < 3:
            params = await asyncio.wait_for(s.published.get(), TIMEOUT)
            got[params.uri] = list(params.diagnostics)
        assert got[cell_uris[1]] == [] and [d.code for d in got[cell_uris[2]]] == ["JD002"]
        await s.stop()

    run(scenario())
