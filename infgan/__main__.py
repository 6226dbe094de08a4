"""Allow `python -m infgan`."""

from infgan.cli import main

raise SystemExit(main())
