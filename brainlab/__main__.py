"""``python -m brainlab`` runs the same command line as ``brainlab``."""
from brainlab.cli import main

raise SystemExit(main())
