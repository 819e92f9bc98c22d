"""``python -m hetskel.runs NOTEBOOK -p NAME VALUE ...``: a grid of papermill runs (see hetskel.runs.grid)."""
import sys

from hetskel.runs.grid import main

sys.exit(main())
