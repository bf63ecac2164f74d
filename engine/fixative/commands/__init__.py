"""One module per CLI verb; see fixative.cli."""
