import sys

from jetmq.cli.jet import main

sys.exit(main())
