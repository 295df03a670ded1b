"""``python -m tools.run_course``: the command line of :mod:`tools.run_course.cli`."""
import sys

from tools.run_course.cli import main

sys.exit(main())
