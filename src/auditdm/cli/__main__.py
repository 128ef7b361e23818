"""``python -m auditdm.cli``."""

import sys

from auditdm.cli import main

sys.exit(main())
