import sys

from ausynth.cli import main

sys.exit(main())
