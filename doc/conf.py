"""Sphinx settings for the Traffic manual (`make docs`). Nothing here needs the network."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

project = "Traffic"
author = "The Traffic authors"
release = re.search(r'__version__ = "([^"]+)"',
                    (ROOT / "traffic" / "__init__.py").read_text()).group(1)
version = release

extensions: list[str] = []
root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []
highlight_language = "none"
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = f"Traffic {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_show_copyright = False
html_theme_options = {
    "description": "Counts what goes over a metered mobile-broadband link.",
    "show_powered_by": False,
}
