import sys

from purejaxvpg.tools.cli import main

sys.exit(main())
