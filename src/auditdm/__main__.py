"""``python -m auditdm``: the same as the ``auditdm`` command."""

import sys

from auditdm.cli import main

sys.exit(main())
