import sys

from affectstream.pipeline.cli.main import main

sys.exit(main())
