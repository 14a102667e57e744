"""The book site: pages generated from results/, and the Jupyter Book build."""
