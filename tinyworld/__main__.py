import sys

from tinyworld.build import main

sys.exit(main())
