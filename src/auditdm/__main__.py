"""``python -m auditdm``: the same as the ``auditdm`` command."""

from auditdm.cli import main

main()
