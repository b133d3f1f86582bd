"""`python -m data_prep ...` runs the data tools in `data_prep.cli`."""

import sys

from data_prep.cli import main

sys.exit(main())
