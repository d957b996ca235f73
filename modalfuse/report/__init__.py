"""Reports of a run: matplotlib plots, one self-contained HTML file and a Markdown summary."""
