import sys

from realshape.build import main

sys.exit(main())
