"""Sphinx configuration of fastsoft's documentation (API reference built from the numpydoc
docstrings, plus the Markdown pages of docs/). Build: ``python -m sphinx -b html -W docs
docs/_build/html`` (the ``docs`` extra installs what it needs)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from fastsoft import __version__  # noqa: E402

project = "fastsoft"
author = "fastsoft developers"
copyright = "2026, fastsoft developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "figures"]
root_doc = "index"

# numpydoc: no autosummary tables of members (the API pages list them), no
# cross-reference guessing for the free-form types of the Parameters sections.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections state the types
autodoc_default_options = {"members": True, "undoc-members": False}

myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]

html_theme = "alabaster"
html_title = f"fastsoft {version}"
