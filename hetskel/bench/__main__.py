"""``python -m hetskel.bench [--quick] --out F.json``: the performance benchmark (see hetskel.bench.performance)."""
import sys

from hetskel.bench.performance import main

sys.exit(main())
