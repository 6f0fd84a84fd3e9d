"""The pygls wiring of `jaxdoctor server` (LSP over stdio).

- Diagnostics on open, on change (debounced: `--debounce` ms, or `initializationOptions.debounceMs`)
  and on save, for Python files and the code cells of notebook documents (LSP 3.17 notebook
  sync: one notebook is linted as one program, each cell gets its own diagnostics).
- Code actions: each fix (safe ones preferred, unsafe ones labelled), "ignore this finding",
  and "fix all safe fixes" (`source.fixAll.jaxdoctor`). Hover: the rule's doc.
- Configuration: each document uses its own file's nearest configuration, re-checked on every
  lint (an edited, created or removed `pyproject.toml`/`jaxdoctor.toml` is noticed); a change
  reported by the client's file watcher re-lints every open document at once.
- Never imports user code; a bug while linting one document is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from jaxdoctor import __version__
from jaxdoctor.config import CONFIG_FILES, Resolver
from jaxdoctor.lsp import documents
from jaxdoctor.lsp.documents import Cell, Linted
from jaxdoctor.static.plan import Planner

DEFAULT_DEBOUNCE_MS = 150
PYTHON_SUFFIXES = (".py", ".pyi")

log = logging.getLogger("jaxdoctor.server")


class JaxdoctorServer(LanguageServer):
    def __init__(self, debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> None:
        super().__init__(
            "jaxdoctor", __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            notebook_document_sync=lsp.NotebookDocumentSyncOptions(
                notebook_selector=[lsp.NotebookDocumentFilterWithNotebook(
                    notebook="*", cells=[lsp.NotebookCellLanguage(language="python")])],
                save=True,
            ),
        )
        self.debounce = max(0, debounce_ms) / 1000
        self.resolver = Resolver()
        self.planner = Planner(self.resolver)
        self.linted: dict[str, Linted] = {}  # document (file or cell) uri → its findings
        self.pending: dict[str, asyncio.TimerHandle] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def to_client(self) -> Callable:
        return self.workspace.position_codec.position_to_client_units

    def _safely(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a bug on one document must not end the server
            detail = "".join(traceback.format_exception(exc))
            log.error("jaxdoctor: %s failed: %s", what, detail)
            self.window_log_message(lsp.LogMessageParams(
                type=lsp.MessageType.Error, message=f"jaxdoctor: {what} failed: {type(exc).__name__}: {exc}"))
            return None

    def notebook_of(self, uri: str) -> Any:
        return self.workspace.get_notebook_document(cell_uri=uri)

    def publish(self, doc: Linted) -> None:
        diagnostics = [documents.diagnostic(f, doc, self.to_client) for f in doc.findings]
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=doc.uri, diagnostics=diagnostics, version=doc.version))

    # ------------------------------------------------------------------ linting
    def lint_uri(self, uri: str) -> None:
        self.pending.pop(uri, None)
        if self.workspace.get_notebook_document(notebook_uri=uri) is not None:
            self.lint_notebook(uri)
            return
        notebook = self.notebook_of(uri)
        if notebook is not None:
            self.lint_notebook(notebook.uri)
            return
        if uri not in self.workspace.text_documents:
            return
        doc = self.workspace.get_text_document(uri)
        path = _path(uri)
        if not _is_python(uri, doc.language_id):
            return
        display = str(path) if path is not None else uri
        linted = self._safely(f"linting {display}", lambda: documents.lint_file(
            uri, doc.source, doc.version, path, display, self.planner))
        if linted is not None:
            self.linted[uri] = linted
            self.publish(linted)

    def _cells(self, notebook: Any) -> list[Cell]:
        cells = []
        for cell in notebook.cells:
            if cell.kind != lsp.NotebookCellKind.Code or cell.document not in self.workspace.text_documents:
                continue
            doc = self.workspace.get_text_document(cell.document)
            if doc.language_id not in (None, "python"):
                continue
            cells.append(Cell(cell.document, doc.source, doc.version))
        return cells

    def lint_notebook(self, notebook_uri: str) -> None:
        notebook = self.workspace.get_notebook_document(notebook_uri=notebook_uri)
        if notebook is None:
            return
        self.pending.pop(notebook_uri, None)
        path = _path(notebook_uri)
        display = str(path) if path is not None else notebook_uri
        cells = self._cells(notebook)
        linted = self._safely(f"linting {display}", lambda: documents.lint_notebook(
            cells, path, display, self.planner))
        for doc in linted or ():
            self.linted[doc.uri] = doc
            self.publish(doc)

    def schedule(self, uri: str) -> None:
        """Lint after `debounce` seconds without further changes."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        if self.debounce <= 0:
            self.lint_uri(uri)
            return
        loop = asyncio.get_running_loop()
        self.pending[uri] = loop.call_later(self.debounce, self.lint_uri, uri)

    def relint_all(self) -> None:
        self.resolver.clear()
        notebooks = set()
        for uri in list(self.linted):
            notebook = self.notebook_of(uri)
            if notebook is not None:
                notebooks.add(notebook.uri)
            else:
                self.lint_uri(uri)
        for uri in notebooks:
            self.lint_notebook(uri)

    def forget(self, uri: str) -> None:
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        if self.linted.pop(uri, None) is not None:
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # ------------------------------------------------------------------ code actions, hover
    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
        uri = params.text_document.uri
        doc = self.linted.get(uri)
        if doc is None:
            return None
        notebook = self.notebook_of(uri)

        def fix_all() -> dict[str, list[lsp.TextEdit]] | None:
            if notebook is not None:
                path = _path(notebook.uri)
                return documents.fix_all_notebook(self._cells(notebook), path, str(path or notebook.uri),
                                                  self.planner, self.to_client)
            path = _path(uri)
            return documents.fix_all_file(doc, path, str(path or uri), self.planner, self.to_client)

        return documents.code_actions(doc, params.range, self.to_client,
                                      only=params.context.only, fix_all=fix_all)


def _path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    fs = to_fs_path(uri)
    return Path(fs) if fs else None


def _is_python(uri: str, language_id: str | None) -> bool:
    return language_id == "python" or uri.lower().endswith(PYTHON_SUFFIXES)


def _is_config(uri: str) -> bool:
    return uri.rsplit("/", 1)[-1] in CONFIG_FILES


def create_server(debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> JaxdoctorServer:
    server = JaxdoctorServer(debounce_ms)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: JaxdoctorServer, params: lsp.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get("debounceMs"), (int, float)):
            ls.debounce = max(0, options["debounceMs"]) / 1000

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: JaxdoctorServer, params: lsp.InitializedParams) -> None:
        caps = ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps is not None else None
        if watched is not None and watched.dynamic_registration:
            ls.client_register_capability(lsp.RegistrationParams(registrations=[lsp.Registration(
                id="jaxdoctor-config-files", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=lsp.DidChangeWatchedFilesRegistrationOptions(watchers=[
                    lsp.FileSystemWatcher(glob_pattern=f"**/{name}") for name in CONFIG_FILES]),
            )]))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: JaxdoctorServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.lint_uri(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: JaxdoctorServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri in ls.linted or _is_python(uri, None):
            ls.schedule(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: JaxdoctorServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if _is_config(uri):
            ls.relint_all()
        else:
            ls.lint_uri(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: JaxdoctorServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_open(ls: JaxdoctorServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
        ls.lint_notebook(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_change(ls: JaxdoctorServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
        change = params.change.cells
        if change is not None and change.structure is not None:
            for closed in change.structure.did_close or ():
                ls.forget(closed.uri)
        ls.schedule(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_save(ls: JaxdoctorServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
        ls.lint_notebook(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_close(ls: JaxdoctorServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
        for cell in params.cell_text_documents:
            ls.forget(cell.uri)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: JaxdoctorServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        if any(_is_config(change.uri) for change in params.changes):
            ls.relint_all()

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.SourceFixAll, documents.FIX_ALL_KIND]))
    def code_action(ls: JaxdoctorServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
        return ls._safely("code actions", lambda: ls.code_actions(params))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: JaxdoctorServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.linted.get(params.text_document.uri)
        if doc is None:
            return None
        return ls._safely("hover", lambda: documents.hover(doc, params.position, ls.to_client))

    return server


def serve(debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> None:
    """Run the server on stdin/stdout until the client says exit."""
    create_server(debounce_ms).start_io()
