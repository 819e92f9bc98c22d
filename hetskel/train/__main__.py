"""``python -m hetskel.train --config run.json``: one training process (torchrun starts N of them)."""
import sys

from hetskel.train.loop import main

sys.exit(main())
