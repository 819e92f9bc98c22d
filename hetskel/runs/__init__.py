"""Batch runs of the notebooks with papermill: parameter grids x seeds, summaries, the demo sequence."""
