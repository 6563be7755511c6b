import sys

from machimori.cli import main

sys.exit(main())
