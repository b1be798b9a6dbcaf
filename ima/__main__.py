"""`python -m ima`: the `ima` command."""

import sys

from .cli import main

sys.exit(main())
