"""`jaxdoctor server`: a Language Server (LSP over stdio) for editors, built on pygls.

`documents` turns editor buffers (a `.py` file, or the code cells of an LSP 3.17 notebook
document) into findings, diagnostics, code actions and hovers; `server` wires it to pygls. Only
the static pass runs: user code is never imported. pygls and lsprotocol are the optional
`server` extra; nothing else in jaxdoctor imports this package.
"""
