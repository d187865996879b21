"""`python -m assistant.launcher` (what `make run` runs)."""

import sys

from assistant.launcher.supervisor import main

sys.exit(main())
