import sys

from anycost.cli import main

sys.exit(main())
