"""``python -m mllm_protector.client`` runs the ``mllm-protector`` command line."""

import sys

from .cli import main

sys.exit(main())
