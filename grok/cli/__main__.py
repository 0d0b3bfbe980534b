"""`python -m grok.cli ...`: the `grok` command."""

import sys

from grok.cli import main

sys.exit(main())
