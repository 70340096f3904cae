"""`python -m nextslot.cli`, as the tests and the benchmarks start it."""
import sys

from nextslot.cli import main

sys.exit(main())
