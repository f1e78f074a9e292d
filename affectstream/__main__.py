"""`python -m affectstream` is the `affectstream` command."""

import sys

from affectstream.pipeline.cli.main import main

sys.exit(main())
