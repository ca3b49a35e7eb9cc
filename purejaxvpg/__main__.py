import sys

from purejaxvpg.cli import main

sys.exit(main())
